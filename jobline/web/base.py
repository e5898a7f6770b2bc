"""What every page shares: the template engine, assets, access rules and flash messages."""

from __future__ import annotations

import functools
import hashlib
import mimetypes
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.template.backends.django import DjangoTemplates
from django.urls import NoReverseMatch, reverse

from jobline.api.auth import user_can_read, user_can_write
from jobline.input_guard import nul_refusal
from jobline.services import database

HERE = Path(__file__).resolve().parent
# The UI loads its own scripts, styles and images only, with no inline code: injected markup
# can neither run nor send data elsewhere. SVG charts are inline elements, not data: URLs.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self';"
    " connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self';"
    " frame-ancestors 'none'"
)
ASSETS = HERE / "static" / "jobline"


@functools.cache
def engine() -> DjangoTemplates:
    """The UI's own template engine, independent of the project's TEMPLATES setting."""
    return DjangoTemplates(
        {
            "NAME": "jobline-web",
            "DIRS": [HERE / "templates"],
            "APP_DIRS": False,
            "OPTIONS": {
                "context_processors": [
                    "django.template.context_processors.request",
                    "django.template.context_processors.csrf",
                ],
                "builtins": ["jobline.web.filters"],
            },
        }
    )


@functools.cache
def asset_version(name: str) -> str:
    """A content hash for the asset's URL, so browsers may cache it for good."""
    return hashlib.sha256((ASSETS / name).read_bytes()).hexdigest()[:12]


def asset(request: HttpRequest, name: str) -> FileResponse:
    path = (ASSETS / name).resolve()
    if not path.is_relative_to(ASSETS) or not path.is_file():
        raise Http404(name)
    response = FileResponse(path.open("rb"), content_type=mimetypes.guess_type(name)[0])
    if request.GET.get("v") == asset_version(name):
        response["Cache-Control"] = "public, max-age=31536000, immutable"
    else:
        response["Cache-Control"] = "no-cache"
    return response


def flash(request: HttpRequest, message: str, level: str = "success") -> None:
    """A message shown (as a toast) on the next page this browser renders."""
    request.session["jobline_flash"] = [
        *request.session.get("jobline_flash", []),
        {"level": level, "message": message},
    ]


def admin_url() -> str | None:
    """The Django admin's index, if the project has the admin."""
    try:
        return reverse("admin:index")
    except NoReverseMatch:
        return None


def render(
    request: HttpRequest, template: str, context: dict[str, Any] | None = None, status: int = 200
) -> HttpResponse:
    user = request.user
    # Partials (``_name.html``, fetched by live updates) leave the messages to the next page.
    full_page = not template.rsplit("/", 1)[-1].startswith("_")
    base = {
        "user": user,
        "can_write": user.is_authenticated and user_can_write(user),
        "admin_url": admin_url(),
        "flashes": request.session.pop("jobline_flash", []) if full_page else [],
    }
    html = engine().get_template(template).render({**base, **(context or {})}, request)
    response = HttpResponse(html, status=status)
    response["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return response


def wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def page(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Pages need a login, and a user who may read jobs (staff or ``jobline.view_job``)."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path(), reverse("jobline:login"))
            if not user_can_read(request.user):
                return render(request, "jobline/denied.html", status=403)
            return nul_refusal(request) or view(request, *args, **kwargs)
        except Exception as exc:
            return unavailable(request, exc)

    return wrapper


def unavailable(request: HttpRequest, exc: Exception) -> HttpResponse:
    """A 503 page (JSON for scripts) when the database is locked, read-only or away; any
    other error raises as it was."""
    explained = database.explain(exc)
    if explained is None:
        raise exc
    if wants_json(request):
        response: HttpResponse = JsonResponse({"detail": str(explained)}, status=503)
    else:
        html = engine().get_template("jobline/unavailable.html").render({"reason": explained})
        response = HttpResponse(html, status=503)
        response["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response["Retry-After"] = str(getattr(explained, "retry_after", 5))
    return response


def action(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Changes: POST only (CSRF-checked by the middleware), by users who may change jobs."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method != "POST":
            return HttpResponse(status=405, headers={"Allow": "POST"})
        if not user_can_write(request.user):
            if wants_json(request):
                return JsonResponse({"detail": "you may only read"}, status=403)
            return render(request, "jobline/denied.html", status=403)
        return view(request, *args, **kwargs)

    return page(wrapper)
