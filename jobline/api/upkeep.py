"""``/api/v1/retention`` (how long finished rows are kept) and ``/api/v1/stuck`` (what may be)."""

from __future__ import annotations

from datetime import datetime

from django.http import HttpRequest
from django.utils import timezone
from ninja import Router, Schema

from jobline.api.errors import responses
from jobline.models import Job
from jobline.services import stuck
from jobline.services.retention import Retention

router = Router(tags=["operations"])
STUCK_LIMIT = 1000  #: most stuck jobs listed


class RetentionOut(Schema):
    """Days each kind of finished row is kept (null: forever), and how pruning runs."""

    succeeded_days: float | None
    failed_days: float | None
    cancelled_days: float | None
    schedule_runs_days: float | None
    interval_seconds: float | None  #: between a scheduler's prune passes; null: never
    batch: int  #: rows removed per transaction


class StuckJob(Schema):
    id: int
    type: str
    queue: str
    reason: str  #: "past timeout" or "worker lost"
    worker_id: str | None
    started_at: datetime | None
    timeout: float | None


class LapsedWorker(Schema):
    id: str
    hostname: str
    pid: int
    lease_expires_at: datetime


class StuckOut(Schema):
    jobs: list[StuckJob]  #: running jobs past their timeout or without a live worker
    oldest_due_seconds: dict[str, float]  #: per queue: how long its oldest due job has waited
    rescued: int  #: jobs whose last attempt was lost with its worker (see jobline.services.stuck)
    lapsed_workers: list[LapsedWorker]


@router.get("/retention", response=responses({200: RetentionOut}))
def retention(request: HttpRequest):
    """How long finished jobs, pipeline runs and schedule history are kept (`jobline prune`)."""
    return Retention.from_settings().as_dict()


@router.get("/stuck", response=responses({200: StuckOut}))
def stuck_jobs(request: HttpRequest):
    """Jobs that may be stuck and queues whose head waits: what an alert looks at."""
    now = timezone.now()
    marks = stuck.running_marks(now)
    ids = sorted(marks)[:STUCK_LIMIT]
    jobs = Job.objects.filter(id__in=ids).only(
        "id", "type", "queue", "worker_id", "started_at", "timeout"
    )
    return {
        "jobs": [
            {
                "id": j.id,
                "type": j.type,
                "queue": j.queue,
                "reason": marks[j.id],
                "worker_id": j.worker_id,
                "started_at": j.started_at,
                "timeout": j.timeout,
            }
            for j in sorted(jobs, key=lambda j: j.id)
        ],
        "oldest_due_seconds": stuck.oldest_due(now),
        "rescued": sum(stuck.rescued(now).values()),
        "lapsed_workers": stuck.lapsed_workers(now),
    }
