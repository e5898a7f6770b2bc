"""Firing due schedules: each occurrence enqueues its job exactly once, with no leader.

One transaction claims due schedules, enqueues their jobs (on the same connection, through
``jobline.services.enqueue``), writes the history and advances ``next_run_at``: all of it
commits or none does. Concurrent schedulers never fire the same occurrence:

* a store that skips locked rows (PostgreSQL): the claim is ``SELECT ... FOR UPDATE SKIP
  LOCKED``, so schedulers split the due schedules; a row committed meanwhile is re-checked
  and is no longer due;
* a single-writer store (SQLite): the transaction takes the write lock before it reads.

The unique ``(schedule, scheduled_for)`` history row is the last line of defence: a second
firing of one occurrence would fail and roll back whole. ``now`` is a parameter throughout
(on PostgreSQL it defaults to the database clock, so hosts with skewed clocks agree).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, transaction
from django.db.models import QuerySet

from jobline import tracing
from jobline.core.jobtypes import registry
from jobline.core.schedules import Firing, ScheduleError
from jobline.core.states import FINISHED
from jobline.core.values import NewJob, ScheduleOutlook
from jobline.models import Job, Schedule, ScheduleRun
from jobline.services import database
from jobline.services.enqueue import build_row, insert

log = logging.getLogger("jobline.scheduler")

BATCH = 100  #: schedules claimed per transaction (and occurrences one schedule fires in one)
MAX_BATCHES = 50  #: per tick, so one tick ends even if something is due again at once
HISTORY_DEFAULT = 100  #: runs kept per schedule (``JOBLINE_SCHEDULE_HISTORY``)
PRUNE_EVERY = 20  #: runs between prunings of a schedule's history
FINISHED_VALUES = [s.value for s in FINISHED]


@dataclass(frozen=True, slots=True, kw_only=True)
class Fired:
    """One history entry written by a firing: a job, an error, or skipped runs."""

    schedule: str
    scheduled_for: datetime
    job_id: int | None
    skipped: int = 0
    error: str = ""

    def __str__(self) -> str:
        when = self.scheduled_for.isoformat(" ", "seconds")
        what = f"job {self.job_id}" if self.job_id else f"error: {self.error}" if self.error else ""
        skipped = f"skipped {self.skipped} missed runs" if self.skipped else ""
        return f"{self.schedule} @ {when}: {', '.join(p for p in (what, skipped) if p)}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Tick:
    """What one pass of the scheduler did and saw."""

    now: datetime
    fired: list[Fired]
    next_due: datetime | None  #: the earliest pending run of an active schedule
    waiting: bool  #: a schedule waits for its job to finish (re-armed by a later tick)


def database_now(using: str = DEFAULT_DB_ALIAS) -> datetime:
    """Now, by the database's clock where it has one (shared by all hosts), else this host's."""
    return database.store(using).now(database.connection(using))


def tick(using: str = DEFAULT_DB_ALIAS, now: datetime | None = None) -> Tick:
    """Re-arm schedules whose job finished, fire everything due at ``now``, look ahead.

    A pass with nothing to do is one read, so idle schedulers cost little.
    """
    seen = _outlook(using)
    now = now or seen.now
    fired: list[Fired] = []
    if seen.rearm:
        rearm_finished(using, now)
    if seen.rearm or (seen.next_due is not None and seen.next_due <= now):
        for _ in range(MAX_BATCHES):
            batch, more = fire_due(using, now)
            fired += batch
            if not more:
                break
        seen = _outlook(using)
    return Tick(now=now, fired=fired, next_due=seen.next_due, waiting=seen.waiting)


def _outlook(using: str) -> ScheduleOutlook:
    return database.store(using).schedule_outlook(database.connection(using))


def _locked(queryset: QuerySet[Schedule], using: str, *, skip_locked: bool) -> list[Schedule]:
    """Rows of ``queryset`` that this transaction alone may change until it ends."""
    store = database.store(using)
    if not store.supports_skip_locked:  # one writer at a time: take the write lock first
        store.lock_for_write(database.connection(using))
        return list(queryset)
    return list(queryset.select_for_update(skip_locked=skip_locked, of=("self",)))


def _scheduler_writes(using: str, *, durable: bool) -> None:
    """The scheduler's own writes wake no scheduler; ``durable=False`` may skip the WAL
    flush (see the store's ``schedule_writes``)."""
    database.store(using).schedule_writes(database.connection(using), durable=durable)


def fire_due(
    using: str = DEFAULT_DB_ALIAS, now: datetime | None = None, *, limit: int = BATCH
) -> tuple[list[Fired], bool]:
    """Fire up to ``limit`` due schedules in one transaction; True if more may be due."""
    now = now or database_now(using)
    with transaction.atomic(using=using):
        _scheduler_writes(using, durable=False)
        due = Schedule.objects.using(using).filter(is_active=True, next_run_at__lte=now)
        claimed = _locked(due.order_by("next_run_at", "id")[:limit], using, skip_locked=True)
        work: list[tuple[Schedule, Firing]] = []
        for schedule in claimed:
            try:
                firing = schedule.timing().due(
                    schedule.next_run_at, now, run_count=schedule.run_count, limit=limit
                )
            except ScheduleError as exc:  # stored by something that skipped validation
                firing = _broken(schedule, exc)
            work.append((schedule, firing))
        fired = _apply(work, now, using)
    more = len(claimed) == limit or any(
        f.next_run_at is not None and f.next_run_at <= now for _, f in work
    )
    return fired, more


def _broken(schedule: Schedule, exc: ScheduleError) -> Firing:
    log.error("schedule %s is invalid and was switched off: %s", schedule.name, exc)
    schedule.is_active = False
    return Firing(fire=(), next_run_at=None)


def rearm_finished(using: str = DEFAULT_DB_ALIAS, now: datetime | None = None) -> int:
    """Re-arm ``reschedule_after_finish`` schedules whose last job has ended; how many."""
    now = now or database_now(using)
    with transaction.atomic(using=using):
        _scheduler_writes(using, durable=False)
        waiting = Schedule.objects.using(using).filter(
            is_active=True, reschedule_after_finish=True, next_run_at__isnull=True
        )
        schedules = _locked(waiting, using, skip_locked=True)
        jobs = dict(
            Job.objects.using(using)
            .filter(pk__in=[s.last_job_id for s in schedules if s.last_job_id])
            .values_list("id", "finished_at")
            .filter(status__in=FINISHED_VALUES)
        )
        ready = [s for s in schedules if s.last_job_id is None or s.last_job_id in jobs]
        for s in ready:
            ended = jobs.get(s.last_job_id) or now  # a deleted job re-arms from now
            try:
                s.next_run_at = s.timing().after_finish(ended, run_count=s.run_count)
            except ScheduleError as exc:
                _broken(s, exc)
                continue
            s.is_active = s.next_run_at is not None
        Schedule.objects.using(using).bulk_update(ready, ["next_run_at", "is_active"])
    return len(ready)


def run_now(
    ids: Iterable[int], *, using: str = DEFAULT_DB_ALIAS, now: datetime | None = None
) -> list[Fired]:
    """Enqueue a job for each schedule now, by hand; its pending runs stay as they are."""
    now = now or database_now(using)
    with transaction.atomic(using=using):
        _scheduler_writes(using, durable=True)  # a person was told: the job must not vanish
        schedules = _locked(
            Schedule.objects.using(using).filter(pk__in=list(ids)), using, skip_locked=False
        )
        work = [
            (
                s,
                Firing(
                    fire=(now,),
                    next_run_at=None if s.reschedule_after_finish else s.next_run_at,
                    waiting=s.reschedule_after_finish,
                ),
            )
            for s in schedules
        ]
        return _apply(work, now, using, manual=True)


def _job_row(schedule: Schedule, spans: contextlib.ExitStack) -> NewJob:
    """The job a firing enqueues, in a trace of its own (or the current span's)."""
    row = build_row(
        registry.get(schedule.job_type),
        schedule.inputs,
        queue=schedule.queue or None,
        priority=schedule.priority,
    )
    span = tracing.enqueue_span(row.type, row.queue, schedule=schedule.name)
    spans.enter_context(span)  # ended once the jobs are in
    return row if span.context is None else replace(row, trace_context=span.context)


def _apply(
    work: Sequence[tuple[Schedule, Firing]], now: datetime, using: str, *, manual: bool = False
) -> list[Fired]:
    """Enqueue jobs, write history and advance the schedules, in the caller's transaction."""
    if not work:
        return []
    rows: list[NewJob] = []
    runs: list[tuple[ScheduleRun, bool]] = []  # each history row, and whether it gets a job
    with contextlib.ExitStack() as spans:
        for schedule, firing in work:
            row, error = None, ""
            if firing.fire:
                try:
                    row = _job_row(schedule, spans)
                except (ValueError, LookupError) as exc:  # inputs, unknown type, bad priority
                    error = str(exc)
                    log.error("schedule %s cannot enqueue its job: %s", schedule.name, error)
            if firing.skipped and not firing.fire:  # recorded at the first run it dropped
                runs.append(
                    (_run(schedule, schedule.next_run_at, now, skipped=firing.skipped), False)
                )
            for i, occurrence in enumerate(firing.fire):
                skipped = firing.skipped if i == 0 else 0
                run = _run(schedule, occurrence, now, skipped=skipped, manual=manual, error=error)
                runs.append((run, row is not None))
                if row is not None:
                    rows.append(row)
            _advance(schedule, firing, now, failed=bool(error), manual=manual)
        job_ids = iter([job.id for job in insert(rows, using)] if rows else [])
    for run, gets_job in runs:
        if gets_job:
            run.job_id = next(job_ids)
            run.schedule.last_job_id = run.job_id
            run.schedule.run_count += 1
    created = ScheduleRun.objects.using(using).bulk_create([run for run, _ in runs])
    store, connection = database.store(using), database.connection(using)
    # Plain statements, not the ORM: this is the scheduler's hot path.
    links = [(run.schedule_id, run.job_id) for run, _ in runs if run.job_id]
    if links:
        store.link_jobs(connection, links)
    store.advance_schedules(
        connection,
        [
            (s.next_run_at, s.last_run_at, s.last_job_id, s.run_count, s.is_active, s.pk)
            for s, _ in work
        ],
    )
    _prune({run.schedule_id for run in created if run.pk and run.pk % PRUNE_EVERY == 0}, using)
    return [
        Fired(
            schedule=run.schedule.name,
            scheduled_for=run.scheduled_for,
            job_id=run.job_id,
            skipped=run.skipped,
            error=run.error,
        )
        for run, _ in runs
    ]


def _run(schedule: Schedule, at: datetime | None, now: datetime, **fields: Any) -> ScheduleRun:
    return ScheduleRun(schedule=schedule, scheduled_for=at, fired_at=now, **fields)


def _advance(
    schedule: Schedule, firing: Firing, now: datetime, *, failed: bool, manual: bool
) -> None:
    schedule.next_run_at = firing.next_run_at
    if firing.fire:
        schedule.last_run_at = now
    if firing.waiting and failed:  # no job to wait for: count from now instead
        schedule.next_run_at = schedule.timing().after_finish(now, run_count=schedule.run_count)
    elif schedule.next_run_at is None and not firing.waiting and not manual:
        schedule.is_active = False  # nothing left to run


def _prune(schedule_ids: set[int], using: str) -> None:
    """Keep the newest JOBLINE_SCHEDULE_HISTORY runs of each schedule (about every 20 runs)."""
    keep = getattr(settings, "JOBLINE_SCHEDULE_HISTORY", HISTORY_DEFAULT)
    runs = ScheduleRun.objects.using(using)
    for schedule_id in schedule_ids:
        oldest_kept = runs.filter(schedule_id=schedule_id).order_by("-id").values_list("id")
        cut = list(oldest_kept[keep : keep + 1])
        if cut:
            runs.filter(schedule_id=schedule_id, id__lte=cut[0][0]).delete()
