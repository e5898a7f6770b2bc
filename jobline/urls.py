"""jobline's URLs: ``path("", include("jobline.urls"))`` in a project's URLconf.

The web UI takes ``/`` (dashboard), ``/jobs/`` and the other pages; ``/api/v1/events``
(server-sent events, async) is matched before the rest of the API.
"""

from __future__ import annotations

from django.urls import include, path

from jobline.api.app import api
from jobline.api.metrics import metrics
from jobline.web.events import events

urlpatterns = [
    path("api/v1/events", events, name="jobline-events"),
    path("api/v1/", api.urls),
    path("metrics", metrics, name="jobline-metrics"),
    path("", include("jobline.web.urls")),
]
