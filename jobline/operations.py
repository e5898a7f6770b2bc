"""Changes to jobs and queues made by people (admin, API, UI, CLI), through the ORM.

The worker's hot path lives in ``jobline.store``; these are the rare, deliberate writes.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.utils import timezone

from jobline.core.states import FINISHED, JobStatus
from jobline.models import Job, Queue
from jobline.store import driver_for


def _driver(using: str):
    return driver_for(connections[using].vendor)


def cancel_jobs(ids: Iterable[int], *, using: str = DEFAULT_DB_ALIAS) -> int:
    """Terminate jobs: queued ones are cancelled now, running ones are asked to stop."""
    ids = list(ids)
    with transaction.atomic(using=using):
        jobs = Job.objects.using(using).filter(id__in=ids)
        queued = jobs.filter(status=JobStatus.QUEUED).update(
            status=JobStatus.CANCELLED, finished_at=timezone.now(), error="terminated on request"
        )
        running = jobs.filter(status=JobStatus.RUNNING).update(cancel_requested=True)
        if running:
            with connections[using].cursor() as cursor:
                _driver(using).notify_control(cursor)
    return queued + running


def retry_jobs(ids: Iterable[int], *, using: str = DEFAULT_DB_ALIAS) -> int:
    """Queue finished jobs again, with a fresh set of attempts."""
    with transaction.atomic(using=using):
        n = (
            Job.objects.using(using)
            .filter(id__in=list(ids), status__in=[s.value for s in FINISHED])
            .update(
                status=JobStatus.QUEUED,
                attempts=0,
                run_at=timezone.now(),
                finished_at=None,
                cancel_requested=False,
                error="",
                traceback="",
            )
        )
        if n:
            with connections[using].cursor() as cursor:
                _driver(using).notify_jobs(cursor)
    return n


def pause_queue(name: str, *, using: str = DEFAULT_DB_ALIAS) -> None:
    """Workers stop claiming from the queue; running jobs finish."""
    Queue.objects.using(using).update_or_create(name=name, defaults={"paused": True})


def resume_queue(name: str, *, using: str = DEFAULT_DB_ALIAS) -> None:
    with transaction.atomic(using=using):
        Queue.objects.using(using).update_or_create(name=name, defaults={"paused": False})
        with connections[using].cursor() as cursor:
            _driver(using).notify_jobs(cursor)
