from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from jobline.web.login_throttle import AdminLoginForm

admin.site.login_form = AdminLoginForm  # wrong passwords are throttled here as on /login/

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("jobline.urls")),
]
