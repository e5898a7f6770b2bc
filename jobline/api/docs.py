"""Swagger UI at ``/api/v1/docs``, its files served from the installed django-ninja package.

No CDN and no ``collectstatic``: the page and its assets work offline, in service and
library mode alike, without adding ``ninja`` to ``INSTALLED_APPS``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import ninja
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.utils.html import escape, json_script
from ninja import Router
from ninja.openapi.docs import DocsBase

if TYPE_CHECKING:
    from ninja import NinjaAPI

ASSETS = Path(ninja.__file__).parent / "static" / "ninja"
CONTENT_TYPES = {
    "swagger-ui.css": "text/css",
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui-init.js": "text/javascript",
    "favicon.png": "image/png",
}

router = Router()

PAGE = """<!DOCTYPE html>
<html>
<head>
  <meta charset="utf-8">
  <title>{title}</title>
  <link rel="stylesheet" href="{assets}swagger-ui.css">
  <link rel="icon" type="image/png" href="{assets}favicon.png">
</head>
<body data-csrf-token="{csrf}" data-api-csrf="{api_csrf}">
  {settings}
  <div id="swagger-ui"></div>
  <script src="{assets}swagger-ui-bundle.js"></script>
  <script src="{assets}swagger-ui-init.js"></script>
</body>
</html>
"""


class OfflineSwagger(DocsBase):
    """ninja's Swagger page, pointing at assets served by :func:`asset` below."""

    def render_page(self, request: HttpRequest, api: NinjaAPI, **kwargs: Any) -> HttpResponse:
        openapi_url = self.get_openapi_url(api, kwargs)
        settings = {"url": openapi_url, "layout": "BaseLayout", "deepLinking": True}
        # A logged-in browser calls the API with its session, so it needs the CSRF token.
        user = getattr(request, "user", None)
        csrf = get_token(request) if user is not None and user.is_authenticated else ""
        html = PAGE.format(
            title=escape(api.title),
            assets=escape(openapi_url.rsplit("/", 1)[0] + "/docs/assets/"),
            csrf=escape(csrf),
            api_csrf="true" if csrf else "",
            settings=json_script(settings, "swagger-settings"),
        )
        return HttpResponse(html)


@router.get("/docs/assets/{name}", auth=None, include_in_schema=False)
def asset(request: HttpRequest, name: str) -> FileResponse:
    if name not in CONTENT_TYPES:
        raise Http404(name)
    response = FileResponse((ASSETS / name).open("rb"), content_type=CONTENT_TYPES[name])
    response["Cache-Control"] = "public, max-age=86400"
    return response
