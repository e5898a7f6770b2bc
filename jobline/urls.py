"""jobline's URLs: ``path("", include("jobline.urls"))`` in a project's URLconf."""

from __future__ import annotations

from django.urls import path

from jobline.api.app import api
from jobline.api.metrics import metrics

urlpatterns = [
    path("api/v1/", api.urls),
    path("metrics", metrics, name="jobline-metrics"),
]
