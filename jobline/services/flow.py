"""What flow control is doing now: why a job waits, each limit's use, each queue's rules.

Read through the models (the UI, the API, ``/metrics``); the claim itself enforces the
same rules in the store (``jobline.store.*_flow``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db import DEFAULT_DB_ALIAS
from django.db.models import Count, Q
from django.utils import timezone

from jobline.core.flow import FlowKeys, QueueRules, key_label, waiting_reason
from jobline.core.states import JobStatus
from jobline.models import Job, Queue

RUNNING, QUEUED = JobStatus.RUNNING.value, JobStatus.QUEUED.value


def queue_rules(name: str, using: str = DEFAULT_DB_ALIAS) -> QueueRules | None:
    queue = Queue.objects.using(using).filter(name=name).first()
    return queue.rules if queue is not None and queue.rules.active else None


def waiting(job: Job) -> str | None:
    """Why a due queued job is held back ("waiting: 2 of 2 running for account_id=42"), or
    None when nothing holds it."""
    now = timezone.now()
    if job.status != QUEUED or job.run_at > now:
        return None
    using = job._state.db or DEFAULT_DB_ALIAS
    rules = queue_rules(job.queue, using)
    if job.flow_key is None and rules is None:
        return None
    jobs = Job.objects.using(using)
    keys = FlowKeys(
        limit_key=job.limit_key,
        limit_n=job.limit_n,
        rate_key=job.rate_key,
        rate_n=job.rate_n,
        rate_per=job.rate_per,
    )
    limit_used = (
        jobs.filter(status=RUNNING, limit_key=job.limit_key).count() if job.limit_key else 0
    )
    rate_used = 0
    if job.rate_key:
        since = now - timedelta(seconds=job.rate_per or 1.0)
        rate_used = jobs.filter(rate_key=job.rate_key, started_at__gt=since).count()
    queue_running = queue_starts = 0
    if rules is not None:
        in_queue = jobs.filter(queue=job.queue)
        queue_running = in_queue.filter(status=RUNNING).count()
        since = now - timedelta(seconds=rules.per)
        queue_starts = in_queue.filter(started_at__gt=since).count()
    return waiting_reason(
        keys,
        limit_used=limit_used,
        rate_used=rate_used,
        queue=rules,
        queue_running=queue_running,
        queue_starts=queue_starts,
    )


def limits_in_use(using: str = DEFAULT_DB_ALIAS, type: str | None = None) -> list[dict[str, Any]]:
    """Each limit key with jobs queued or running: ``{"key", "label", "type", "limit",
    "running", "waiting"}`` (waiting: queued and due, so held back by the limit or a rate)."""
    jobs = Job.objects.using(using).filter(limit_key__isnull=False, status__in=[QUEUED, RUNNING])
    if type is not None:
        jobs = jobs.filter(type=type)
    now = timezone.now()
    rows = (
        jobs.values("limit_key", "type")
        .annotate(
            running=Count("id", filter=Q(status=RUNNING)),
            waiting=Count("id", filter=Q(status=QUEUED, run_at__lte=now)),
        )
        .order_by("limit_key")
    )
    caps = dict(jobs.values_list("limit_key", "limit_n").distinct())
    return [
        {
            "key": r["limit_key"],
            "label": key_label(r["limit_key"]),
            "type": r["type"],
            "limit": caps.get(r["limit_key"]),
            "running": r["running"],
            "waiting": r["waiting"],
        }
        for r in rows
    ]
