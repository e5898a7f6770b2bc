"""``GET /api/v1/health``: is the database reachable, are workers alive, how deep is the queue."""

from __future__ import annotations

import logging

from django.db import DatabaseError
from django.http import HttpRequest
from django.utils import timezone
from ninja import Router, Schema, Status

from jobline.models import Job, Worker

router = Router(tags=["health"])
log = logging.getLogger("jobline.api")


class Health(Schema):
    status: str  #: "ok", or "error" when the database cannot be reached
    database: bool
    workers: int  #: workers whose lease is live
    queue_depth: int  #: jobs waiting to run now or later
    running: int
    error: str | None = None  #: the database's own message for staff; a summary for others


@router.get("/health", response={200: Health, 503: Health}, auth=None)
def health(request: HttpRequest):
    try:
        workers = Worker.objects.filter(lease_expires_at__gt=timezone.now()).count()
        queued = Job.objects.filter(status="queued").count()
        running = Job.objects.filter(status="running").count()
    except DatabaseError as exc:
        log.warning("health: the database cannot be reached: %s", exc)
        return Status(
            503,
            Health(
                status="error",
                database=False,
                workers=0,
                queue_depth=0,
                running=0,
                # The driver's text names hosts, users and paths: for staff eyes only.
                error=str(exc).strip() if _is_staff(request) else "the database cannot be reached",
            ),
        )
    return Health(status="ok", database=True, workers=workers, queue_depth=queued, running=running)


def _is_staff(request: HttpRequest) -> bool:
    try:  # sessions and users live in the database that just failed
        user = getattr(request, "user", None)
        return bool(user is not None and user.is_active and user.is_staff)
    except DatabaseError:
        return False
