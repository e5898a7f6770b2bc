"""Jobs that may be stuck, as ``/metrics``, the API and the UI show them, so alerts can fire.

* **past timeout**: running longer than their ``timeout``. The worker stops an attempt at its
  timeout, so one that stays past it means a worker that no longer gets to run its loop
  (blocked, or cut off from the database and not yet noticed).
* **worker lost**: running, but no live worker owns them: their worker's lease lapsed. Any
  live worker's next heartbeat puts them back in the queue; with no live worker left they
  stay ``running`` until one starts.
* **rescued**: jobs whose last attempt was lost with its worker (the rescue wrote
  ``worker lost: ...`` as their error): queued or running again, or out of attempts.
* **oldest due job** per queue: how long the head of each queue has waited to start.

Reads through the ORM (the Django face); running jobs are few (at most every worker's
concurrency), so marking them is done here rather than in SQL, alike on both databases.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Count, Min, Q, QuerySet
from django.utils import timezone

from jobline.models import Job, Worker

PAST_TIMEOUT = "past timeout"
WORKER_LOST = "worker lost"
KINDS = {"past_timeout": PAST_TIMEOUT, "worker_lost": WORKER_LOST}  #: filter value -> label
LOST_ERROR = "worker lost:"  #: how the lease rescue's error starts
RESCUED_WINDOW = timedelta(hours=1)  #: finished rescued jobs count this long


def running_marks(now: datetime | None = None) -> dict[int, str]:
    """``{job id: PAST_TIMEOUT or WORKER_LOST}`` for running jobs that look stuck."""
    now = now or timezone.now()
    live = set(Worker.objects.filter(lease_expires_at__gt=now).values_list("id", flat=True))
    marks = {}
    running = Job.objects.filter(status="running").values_list(
        "id", "worker_id", "started_at", "timeout"
    )
    for job_id, worker_id, started_at, timeout in running:
        if worker_id not in live:
            marks[job_id] = WORKER_LOST
        elif timeout and started_at and now - started_at > timedelta(seconds=timeout):
            marks[job_id] = PAST_TIMEOUT
    return marks


def only(jobs: QuerySet[Job], kind: str, now: datetime | None = None) -> QuerySet[Job]:
    """``jobs`` narrowed to one kind of stuck job (a key of ``KINDS``)."""
    label = KINDS[kind]
    return jobs.filter(id__in=[i for i, mark in running_marks(now).items() if mark == label])


def oldest_due(now: datetime | None = None) -> dict[str, float]:
    """Seconds the oldest job that is due has waited, per queue (queues with one)."""
    now = now or timezone.now()
    rows = (
        Job.objects.filter(status="queued", run_at__lte=now)
        .values("queue")
        .annotate(oldest=Min("run_at"))
        .order_by()
    )
    return {r["queue"]: max(0.0, (now - r["oldest"]).total_seconds()) for r in rows}


def lapsed_workers(now: datetime | None = None) -> list[Worker]:
    """Workers whose lease lapsed and whose rows no heartbeat has removed yet."""
    return list(Worker.objects.filter(lease_expires_at__lte=now or timezone.now()))


def rescued(now: datetime | None = None) -> dict[tuple[str, str], int]:
    """``{(queue, status): n}`` of jobs whose last attempt was lost with its worker."""
    now = now or timezone.now()
    recent = Q(status__in=["queued", "running"]) | Q(finished_at__gte=now - RESCUED_WINDOW)
    rows = (
        Job.objects.filter(recent, error__startswith=LOST_ERROR)
        .values("queue", "status")
        .annotate(n=Count("id"))
        .order_by()
    )
    return {(r["queue"], r["status"]): r["n"] for r in rows}
