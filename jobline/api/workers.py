"""``/api/v1/workers``: live worker processes, their queues, load and last heartbeat."""

from __future__ import annotations

from datetime import datetime

from django.http import HttpRequest
from django.utils import timezone
from ninja import Router, Schema

from jobline.api.errors import responses
from jobline.models import Worker

router = Router(tags=["workers"])


class WorkerOut(Schema):
    id: str
    hostname: str
    pid: int
    queues: list[str] | None  #: null: every queue
    tags: list[str]
    concurrency: int
    running: int
    load: float  #: running / concurrency
    processed: int
    started_at: datetime
    last_heartbeat_at: datetime
    lease_expires_at: datetime

    @staticmethod
    def resolve_load(worker: Worker) -> float:
        return round(worker.running / worker.concurrency, 4) if worker.concurrency else 0.0


@router.get("/workers", response=responses({200: list[WorkerOut]}))
def list_workers(request: HttpRequest):
    """Workers whose lease is live (a dead worker's lease lapses within JOBLINE_LEASE_SECONDS)."""
    live = Worker.objects.filter(lease_expires_at__gt=timezone.now())
    return live.order_by("hostname", "pid")
