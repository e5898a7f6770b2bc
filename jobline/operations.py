"""Changes to jobs and queues made by people (admin, API, UI, CLI), through the ORM.

The worker's hot path lives in ``jobline.store``; these are the rare, deliberate writes.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models import QuerySet
from django.utils import timezone

from jobline.core.states import FINISHED, JobStatus
from jobline.models import Job, Queue
from jobline.pipelines import runs as pipeline_runs
from jobline.store import driver_for


def _driver(using: str):
    return driver_for(connections[using].vendor)


def _ids(ids: Iterable[int] | QuerySet[Job]) -> list[int] | QuerySet[Job]:
    # A QuerySet stays a subquery, so "every failed job" is one statement, not a list of ids.
    return ids.values("id") if isinstance(ids, QuerySet) else list(ids)


def cancel_jobs(ids: Iterable[int] | QuerySet[Job], *, using: str = DEFAULT_DB_ALIAS) -> int:
    """Terminate jobs: queued ones are cancelled now, running ones are asked to stop."""
    ids = _ids(ids)
    with transaction.atomic(using=using):
        jobs = Job.objects.using(using).filter(id__in=ids)
        runs = pipeline_runs.lock_runs_of(jobs, using)  # before the jobs, as workers do
        queued = jobs.filter(status=JobStatus.QUEUED).update(
            status=JobStatus.CANCELLED, finished_at=timezone.now(), error="terminated on request"
        )
        running = jobs.filter(status=JobStatus.RUNNING).update(cancel_requested=True)
        if running:
            with connections[using].cursor() as cursor:
                _driver(using).notify_control(cursor)
        if queued and runs:  # a cancelled step cancels the steps that depend on it
            pipeline_runs.advance(runs, using)
    return queued + running


def retry_jobs(ids: Iterable[int] | QuerySet[Job], *, using: str = DEFAULT_DB_ALIAS) -> int:
    """Queue finished jobs again, with a fresh set of attempts."""
    with transaction.atomic(using=using):
        jobs = Job.objects.using(using).filter(
            id__in=_ids(ids), status__in=[s.value for s in FINISHED]
        )
        runs = pipeline_runs.lock_runs_of(jobs, using)  # before the jobs, as workers do
        n = jobs.update(
            status=JobStatus.QUEUED,
            attempts=0,
            run_at=timezone.now(),
            finished_at=None,
            cancel_requested=False,
            error="",
            traceback="",
            dispatch="",
            dispatch_outputs=None,
        )
        if n:
            with connections[using].cursor() as cursor:
                _driver(using).notify_jobs(cursor)
        if n and runs:  # a retried step puts its finished run back to running
            pipeline_runs.reopen(runs, using)
    return n


def pause_queue(name: str, *, using: str = DEFAULT_DB_ALIAS) -> None:
    """Workers stop claiming from the queue; running jobs finish."""
    Queue.objects.using(using).update_or_create(name=name, defaults={"paused": True})


def resume_queue(name: str, *, using: str = DEFAULT_DB_ALIAS) -> None:
    with transaction.atomic(using=using):
        Queue.objects.using(using).update_or_create(name=name, defaults={"paused": False})
        with connections[using].cursor() as cursor:
            _driver(using).notify_jobs(cursor)
