from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import include, path

from jobline.web.filters import asset
from jobline.web.login_throttle import AdminLoginForm

admin.site.login_form = AdminLoginForm  # wrong passwords are throttled here as on /login/


def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers ask every site for /favicon.ico, and the admin's pages name no icon: the
    UI's logo, at its versioned (cached for good) URL."""
    return redirect(asset("logo.svg"))


urlpatterns = [
    path("admin/", admin.site.urls),
    path("favicon.ico", favicon, name="favicon"),
    path("", include("jobline.urls")),
]
