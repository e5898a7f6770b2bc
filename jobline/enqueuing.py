"""Enqueue: validate inputs, then insert on the caller's database connection.

The insert runs on Django's connection for ``using``, so inside ``transaction.atomic()``
the job is part of the caller's transaction: a rollback leaves no job behind.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from asgiref.sync import sync_to_async
from django.db import DEFAULT_DB_ALIAS, connections
from django.utils import timezone

from jobline.definitions import JobType, registry
from jobline.store import driver_for
from jobline.store.base import NewJob

PRIORITY_RANGE = range(-100, 101)  # the range django.tasks uses


@dataclass(frozen=True, slots=True)
class EnqueuedJob:
    """What enqueue returns. ``created`` is False when an idempotency key matched a job."""

    id: int
    type: str
    queue: str
    created: bool = True

    def get(self, using: str | None = None) -> Any:
        """The job's current row (a ``jobline.models.Job``)."""
        from jobline.models import Job

        return Job.objects.using(using or DEFAULT_DB_ALIAS).get(pk=self.id)


def _delay_seconds(delay: float | timedelta | None, run_at: datetime | None) -> float:
    if delay is not None and run_at is not None:
        raise ValueError("pass either delay or run_at, not both")
    if run_at is not None:
        if timezone.is_naive(run_at):
            raise ValueError("run_at must be timezone-aware (e.g. datetime.now(UTC))")
        return max(0.0, (run_at - timezone.now()).total_seconds())
    if isinstance(delay, timedelta):
        delay = delay.total_seconds()
    if delay is not None and delay < 0:
        raise ValueError("delay must be >= 0 seconds")
    return float(delay or 0.0)


def build_row(
    job_type: JobType,
    inputs: Any,
    *,
    queue: str | None = None,
    priority: int | None = None,
    delay: float | timedelta | None = None,
    run_at: datetime | None = None,
    max_attempts: int | None = None,
    timeout: float | None = None,
    idempotency_key: str | None = None,
) -> NewJob:
    """Validate one job's inputs and options into a row; raises before anything is written."""
    value = job_type.inputs.validate(inputs)
    priority = job_type.priority if priority is None else priority
    if priority not in PRIORITY_RANGE:
        raise ValueError(f"priority must be between -100 and 100, got {priority}")
    max_attempts = job_type.max_attempts if max_attempts is None else max_attempts
    if max_attempts < 1:
        raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
    timeout = job_type.timeout if timeout is None else timeout
    if timeout is not None and timeout <= 0:
        raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
    queue = queue or job_type.queue
    if len(queue) > 100:
        raise ValueError("queue names are at most 100 characters")
    if idempotency_key is not None and not 0 < len(idempotency_key) <= 200:
        raise ValueError("idempotency_key must be 1 to 200 characters")
    return NewJob(
        type=job_type.name,
        queue=queue,
        priority=priority,
        inputs=json.dumps(job_type.inputs.to_json(value)),
        max_attempts=max_attempts,
        timeout=timeout,
        requires=json.dumps(sorted(job_type.requires)),
        idempotency_key=idempotency_key,
        delay=_delay_seconds(delay, run_at),
    )


def insert(rows: Sequence[NewJob], using: str | None = None) -> list[EnqueuedJob]:
    """Insert validated rows; jobs whose idempotency key exists resolve to the existing job."""
    from jobline.models import Job

    alias = using or DEFAULT_DB_ALIAS
    connection = connections[alias]
    with connection.cursor() as cursor:
        inserted = driver_for(connection.vendor).insert_jobs(cursor, rows)
    fresh = iter([job_id for job_id, key in inserted if key is None])
    by_key = {key: job_id for job_id, key in inserted if key is not None}
    wanted = {r.idempotency_key for r in rows if r.idempotency_key is not None}
    existing = {}
    if wanted - by_key.keys():
        existing = dict(
            Job.objects.using(alias)
            .filter(idempotency_key__in=wanted - by_key.keys())
            .values_list("idempotency_key", "id")
        )
    result, seen = [], set()
    for r in rows:
        key = r.idempotency_key
        if key is None:
            result.append(EnqueuedJob(next(fresh), r.type, r.queue))
        elif key in by_key:  # inserted now; a key repeated in one batch gets the first row
            result.append(EnqueuedJob(by_key[key], r.type, r.queue, created=key not in seen))
            seen.add(key)
        else:
            result.append(EnqueuedJob(existing[key], r.type, r.queue, created=False))
    return result


def enqueue(
    job_type: JobType | str, inputs: Any = None, *, using: str | None = None, **options: Any
) -> EnqueuedJob:
    """Enqueue one job; options are those of :func:`build_row`."""
    row = build_row(registry.get(job_type), inputs, **options)
    return insert([row], using)[0]


def enqueue_many(
    job_type: JobType | str,
    inputs_list: Iterable[Any],
    *,
    using: str | None = None,
    **options: Any,
) -> list[EnqueuedJob]:
    """Enqueue many jobs of one type in one round trip per few thousand rows."""
    if "idempotency_key" in options:
        raise ValueError("enqueue_many takes no idempotency_key; enqueue keyed jobs one by one")
    jt = registry.get(job_type)
    rows = [build_row(jt, inputs, **options) for inputs in inputs_list]
    return insert(rows, using) if rows else []


aenqueue = sync_to_async(enqueue)
aenqueue_many = sync_to_async(enqueue_many)
