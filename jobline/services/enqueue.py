"""Enqueue: validate inputs, then insert through the store on the caller's connection.

The insert runs on Django's connection for ``using``, so inside ``transaction.atomic()``
the job is part of the caller's transaction: a rollback leaves no job behind.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from asgiref.sync import sync_to_async
from django.apps import apps
from django.db import DEFAULT_DB_ALIAS
from django.utils import timezone

from jobline import tracing
from jobline.core import input_rules
from jobline.core.jobtypes import JobType, registry
from jobline.core.tracecontext import TraceContext
from jobline.core.values import NewJob
from jobline.exceptions import InputsError
from jobline.services import database

PRIORITY_RANGE = range(-100, 101)  # the range django.tasks uses


@dataclass(frozen=True, slots=True)
class EnqueuedJob:
    """What enqueue returns. ``created`` is False when an idempotency key or a unique key
    (``jobline.Unique``) matched an existing job, which is the one returned."""

    id: int
    type: str
    queue: str
    created: bool = True

    def get(self, using: str | None = None) -> Any:
        """The job's current row (a ``jobline.models.Job``)."""
        # By name: ``import jobline`` must work before Django's apps are loaded.
        return (
            apps.get_model("jobline", "Job")
            .objects.using(using or DEFAULT_DB_ALIAS)
            .get(pk=self.id)
        )


def _delay_seconds(delay: float | timedelta | None, run_at: datetime | None) -> float:
    if delay is not None and run_at is not None:
        raise ValueError("pass either delay or run_at, not both")
    if run_at is not None:
        if timezone.is_naive(run_at):
            raise ValueError("run_at must be timezone-aware (e.g. datetime.now(UTC))")
        if problem := input_rules.datetime_problem(run_at):
            raise ValueError(f"run_at {problem}")
        return max(0.0, (run_at - timezone.now()).total_seconds())
    if isinstance(delay, timedelta):
        delay = delay.total_seconds()
    if delay is not None and not 0 <= delay <= input_rules.MAX_DELAY:
        raise ValueError(f"delay must be between 0 and {input_rules.MAX_DELAY} seconds")
    return float(delay or 0.0)


@dataclass(frozen=True, slots=True)
class _Options:
    """Options shared by the jobs of one enqueue call, checked once."""

    queue: str
    priority: int
    max_attempts: int
    timeout: float | None
    delay: float
    requires: tuple[str, ...]
    trace_context: TraceContext | None  #: the enqueueing span's (jobline.tracing)

    @classmethod
    def resolve(
        cls,
        job_type: JobType,
        *,
        queue: str | None = None,
        priority: int | None = None,
        delay: float | timedelta | None = None,
        run_at: datetime | None = None,
        max_attempts: int | None = None,
        timeout: float | None = None,
        trace_context: TraceContext | None = None,
    ) -> _Options:
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
        if problem := input_rules.queue_problem(queue):
            raise ValueError(problem)
        delay_s = _delay_seconds(delay, run_at)
        return cls(
            queue,
            priority,
            max_attempts,
            timeout,
            delay_s,
            tuple(sorted(job_type.requires)),
            trace_context,
        )

    def row(self, job_type: JobType, inputs: Any, idempotency_key: str | None = None) -> NewJob:
        if idempotency_key is not None and not 0 < len(idempotency_key) <= 200:
            raise ValueError("idempotency_key must be 1 to 200 characters")
        if errors := input_rules.nul_errors(inputs):  # no database stores them; PostgreSQL errs
            raise InputsError(job_type.name, errors)
        schema = job_type.inputs
        data = schema.to_json(schema.validate(inputs), keep_secrets=True)
        flow = job_type.flow.keys(job_type.name, data)
        if idempotency_key is not None and flow is not None and flow.unique_key is not None:
            raise ValueError(
                f"{job_type.name} is unique by its inputs (jobline.Unique): it takes no"
                " idempotency_key"
            )
        return NewJob(
            type=job_type.name,
            queue=self.queue,
            priority=self.priority,
            inputs=data,
            max_attempts=self.max_attempts,
            timeout=self.timeout,
            requires=self.requires,
            idempotency_key=idempotency_key,
            delay=self.delay,
            flow=flow,
            trace_context=self.trace_context,
        )


def build_row(
    job_type: JobType, inputs: Any, *, idempotency_key: str | None = None, **options: Any
) -> NewJob:
    """Validate one job's inputs and options into a row; raises before anything is written.

    Options: ``queue``, ``priority``, ``delay``, ``run_at``, ``max_attempts``, ``timeout``,
    ``trace_context`` (the span the job's run continues: ``jobline.tracing``).
    """
    return _Options.resolve(job_type, **options).row(job_type, inputs, idempotency_key)


def _insert(rows: Iterable[NewJob], alias: str) -> list[tuple[int, str | None]]:
    return database.store(alias).insert_jobs(database.connection(alias), rows)


def _is_unique(row: NewJob) -> bool:
    return row.flow is not None and row.flow.unique_key is not None


def insert(rows: Sequence[NewJob], using: str | None = None) -> list[EnqueuedJob]:
    """Insert validated rows; jobs whose idempotency key exists resolve to the existing job,
    unique jobs (``jobline.Unique``) to the live job with their key."""
    alias = using or DEFAULT_DB_ALIAS
    if not any(_is_unique(r) for r in rows):
        return _insert_keyed(rows, alias)
    # The unique keys stay locked until the transaction ends: a concurrent enqueue of the
    # same key waits for it, then finds this job.
    with database.atomic(alias):
        plain = _insert_keyed([r for r in rows if not _is_unique(r)], alias)
        unique = [r for r in rows if _is_unique(r)]
        found = database.store(alias).insert_unique(database.connection(alias), unique)
    answers = iter(
        EnqueuedJob(i, r.type, r.queue, created)
        for r, (i, created) in zip(unique, found, strict=True)
    )
    others = iter(plain)
    return [next(answers) if _is_unique(r) else next(others) for r in rows]


def _insert_keyed(rows: Sequence[NewJob], alias: str) -> list[EnqueuedJob]:
    if not rows:
        return []
    inserted = _insert(rows, alias)
    missing = _missing_keys(rows, inserted)
    existing = {}
    if missing:
        existing = database.store(alias).find_keys(database.connection(alias), missing)
    return _enqueued(rows, inserted, existing)


async def ainsert(rows: Sequence[NewJob], using: str | None = None) -> list[EnqueuedJob]:
    """:func:`insert` from an event loop: on the store's own async connection (no thread),
    unless the connection of this context (thread or event loop) is in a transaction, which
    the rows then join (async code is only there if it used the sync ORM on its loop)."""
    alias = using or DEFAULT_DB_ALIAS
    if database.in_transaction(alias):
        return insert(rows, alias)
    store = database.store(alias)
    if not store.supports_async_insert:
        return await sync_to_async(insert)(rows, alias)
    inserted = await store.ainsert_jobs(rows)
    missing = _missing_keys(rows, inserted)
    existing = await store.afind_keys(missing) if missing else {}
    return _enqueued(rows, inserted, existing)


def _missing_keys(rows: Sequence[NewJob], inserted: list[tuple[int, str | None]]) -> set[str]:
    """Idempotency keys asked for that matched an existing job instead of a new one."""
    wanted = {r.idempotency_key for r in rows if r.idempotency_key is not None}
    return wanted - {key for _, key in inserted} if wanted else set()


def _enqueued(
    rows: Sequence[NewJob], inserted: list[tuple[int, str | None]], existing: dict[str, int]
) -> list[EnqueuedJob]:
    if len(rows) == 1 and rows[0].idempotency_key is None:  # the common enqueue
        return [EnqueuedJob(inserted[0][0], rows[0].type, rows[0].queue)]
    fresh = iter([job_id for job_id, key in inserted if key is None])
    by_key = {key: job_id for job_id, key in inserted if key is not None}
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
    jt = registry.get(job_type)
    with tracing.enqueue_span(jt.name, options.get("queue") or jt.queue) as span:
        row = build_row(jt, inputs, trace_context=span.context, **options)
        job = insert([row], using)[0]
        span.enqueued([job])
    return job


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
    with tracing.enqueue_span(jt.name, options.get("queue") or jt.queue) as span:
        shared = _Options.resolve(jt, trace_context=span.context, **options)
        jobs = _insert_many(jt, shared, inputs_list, using or DEFAULT_DB_ALIAS)
        span.enqueued(jobs)
    return jobs


def _insert_many(
    jt: JobType, shared: _Options, inputs_list: Iterable[Any], alias: str
) -> list[EnqueuedJob]:
    if jt.flow.unique is not None:  # each row may resolve to a job that exists
        return insert([shared.row(jt, inputs) for inputs in inputs_list], alias)
    # Rows are validated lazily, batch by batch, while the previous batch is inserted;
    # the transaction makes a bad input anywhere leave nothing behind.
    with database.atomic(alias):
        inserted = _insert((shared.row(jt, inputs) for inputs in inputs_list), alias)
    return [EnqueuedJob(job_id, jt.name, shared.queue) for job_id, _ in inserted]


async def aenqueue(
    job_type: JobType | str, inputs: Any = None, *, using: str | None = None, **options: Any
) -> EnqueuedJob:
    """:func:`enqueue` for async code: the insert runs on the event loop (see :func:`ainsert`)."""
    jt = registry.get(job_type)
    with tracing.enqueue_span(jt.name, options.get("queue") or jt.queue) as span:
        row = build_row(jt, inputs, trace_context=span.context, **options)
        job = (await ainsert([row], using))[0]
        span.enqueued([job])
    return job


async def aenqueue_many(
    job_type: JobType | str,
    inputs_list: Iterable[Any],
    *,
    using: str | None = None,
    **options: Any,
) -> list[EnqueuedJob]:
    """:func:`enqueue_many` for async code: every input is checked before anything is sent,
    then the rows go in at once (a bad input anywhere leaves nothing behind)."""
    if "idempotency_key" in options:
        raise ValueError("enqueue_many takes no idempotency_key; enqueue keyed jobs one by one")
    alias = using or DEFAULT_DB_ALIAS
    if database.in_transaction(alias):
        return enqueue_many(job_type, inputs_list, using=alias, **options)
    if not database.store(alias).supports_async_insert:
        return await sync_to_async(enqueue_many)(job_type, inputs_list, using=alias, **options)
    jt = registry.get(job_type)
    with tracing.enqueue_span(jt.name, options.get("queue") or jt.queue) as span:
        shared = _Options.resolve(jt, trace_context=span.context, **options)
        rows = [shared.row(jt, inputs) for inputs in inputs_list]
        inserted = await database.store(alias).ainsert_jobs(rows) if rows else []
        jobs = [EnqueuedJob(job_id, jt.name, shared.queue) for job_id, _ in inserted]
        span.enqueued(jobs)
    return jobs
