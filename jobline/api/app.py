"""The REST API under ``/api/v1/`` (django-ninja): OpenAPI at ``openapi.json``, Swagger at ``docs``.

Every endpoint needs a bearer token or a logged-in session (``jobline.api.auth``), except
``/health`` and the docs. Errors are ``{"detail": ...}``; see ``jobline.api.errors``.
"""

from __future__ import annotations

from jobline.api import (
    docs,
    errors,
    health,
    job_types,
    jobs,
    pipelines,
    queues,
    schedules,
    subscriptions,
    templates,
    timer,
    upkeep,
    workers,
)
from jobline.api.auth import API_AUTH

api = errors.JoblineAPI(
    title="jobline",
    version="1",
    description=(
        "Jobs, queues, workers, schedules, templates, timers, pipelines and event "
        "subscriptions of a jobline "
        "deployment. "
        "Authenticate with `Authorization: Bearer <token>` (`jobline token create NAME`) "
        "or a logged-in browser session."
    ),
    urls_namespace="jobline-api",
    docs=docs.OfflineSwagger(),
    docs_url="/docs",
    auth=API_AUTH,
    parser=errors.StrictJSON(),
)
api.add_router("", health.router)
api.add_router("", docs.router)
for resource in (
    jobs,
    job_types,
    queues,
    workers,
    schedules,
    templates,
    timer,
    upkeep,
    pipelines,
    subscriptions,
):
    api.add_router("", resource.router)
