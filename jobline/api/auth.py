"""Who may call the API: bearer tokens, browser sessions (with CSRF), optionally anyone for reads.

Reads are GET, HEAD and OPTIONS; every other method writes. No credentials: 401.
Credentials that may not do this: 403. A web UI reuses :func:`user_can_read` and
:func:`user_can_write` for the same rules on its own pages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from ninja.errors import AuthenticationError, AuthorizationError
from ninja.security import APIKeyCookie, HttpBearer
from ninja.utils import check_csrf

from jobline.api import conf
from jobline.models.api import ApiToken

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling; set as ``request.auth`` on every authenticated API request."""

    name: str  #: "token:NAME", "user:USERNAME" or "anonymous"
    can_write: bool
    token: ApiToken | None = None
    user: Any = None


def user_can_read(user: Any) -> bool:
    """Staff, or users with the ``jobline.view_job`` permission."""
    return bool(user.is_active and (user.is_staff or user.has_perm("jobline.view_job")))


def user_can_write(user: Any) -> bool:
    """Staff, or users with the ``jobline.change_job`` permission."""
    return bool(user.is_active and (user.is_staff or user.has_perm("jobline.change_job")))


def _authorize(request: HttpRequest, principal: Principal) -> Principal:
    if request.method not in SAFE_METHODS and not principal.can_write:
        raise AuthorizationError(message=f"{principal.name} may only read")
    return principal


class BearerToken(HttpBearer):
    """``Authorization: Bearer <token>`` with a token from ``jobline token create``."""

    def authenticate(self, request: HttpRequest, token: str) -> Principal:
        found = ApiToken.find(token)
        if found is None:  # a wrong token is an error, not a fall-through to other methods
            raise AuthenticationError(message="invalid or revoked API token")
        found.touch()
        principal = Principal(f"token:{found.name}", can_write=not found.read_only, token=found)
        return _authorize(request, principal)


class Session(APIKeyCookie):
    """A logged-in browser (Django session); writes need the CSRF token."""

    param_name = settings.SESSION_COOKIE_NAME

    def __call__(self, request: HttpRequest) -> Principal | None:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return None  # checked before CSRF, so a request without credentials gets 401
        if not getattr(request, "_ninja_csrf_exempt", False) and check_csrf(request):
            raise AuthorizationError(message="CSRF check failed: send the X-CSRFToken header")
        return self.authenticate(request, None)

    def authenticate(self, request: HttpRequest, key: str | None) -> Principal:
        user = request.user
        if not user_can_read(user):
            raise AuthorizationError(message=f"user {user.get_username()!r} may not use the API")
        principal = Principal(
            f"user:{user.get_username()}", can_write=user_can_write(user), user=user
        )
        return _authorize(request, principal)


def public_read(request: HttpRequest) -> Principal | None:
    """Anyone may read when ``JOBLINE_API_PUBLIC_READ`` is on."""
    if conf.get("JOBLINE_API_PUBLIC_READ") and request.method in SAFE_METHODS:
        return Principal("anonymous", can_write=False)
    return None


API_AUTH = [BearerToken(), Session(), public_read]
