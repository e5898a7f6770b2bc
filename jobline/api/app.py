from __future__ import annotations

from ninja import NinjaAPI

from jobline.api import health

api = NinjaAPI(
    title="jobline",
    version="1",
    description="Jobs, queues and workers of a jobline deployment.",
    urls_namespace="jobline-api",
    docs_url="/docs",
)
api.add_router("", health.router)
