"""Static files (the admin's CSS and scripts) under ``jobline web`` / ``jobline up``.

``runserver`` serves them itself when ``DEBUG`` is on; uvicorn does not, so a project using
jobline as a library got the admin without its CSS (404 on ``/static/admin/...``). Service
mode has WhiteNoise. Any other project whose ``STATIC_URL`` is a local path gets Django's
own static files handler, which finds the files in the installed apps as ``runserver`` does
(no ``collectstatic`` needed), whatever ``DEBUG`` says.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.apps import apps
from django.conf import settings


def serves_static_itself() -> bool:
    """Whether the project serves its static files already (WhiteNoise) or elsewhere (a CDN)."""
    if not apps.is_installed("django.contrib.staticfiles"):
        return True  # no static files to serve
    if any("whitenoise" in middleware.lower() for middleware in settings.MIDDLEWARE):
        return True
    url = urlsplit(str(settings.STATIC_URL or ""))
    return not url.path or bool(url.netloc)


def with_static_files(application: Any) -> Any:
    """The ASGI ``application``, serving ``STATIC_URL`` too unless the project does."""
    if serves_static_itself():
        return application
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

    return ASGIStaticFilesHandler(application)
