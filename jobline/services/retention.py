"""Retention: finished jobs, schedule history and finished pipeline runs go once old enough.

How long each is kept is a setting in days per status (``JOBLINE_RETENTION_*``; 0 keeps
forever). ``prune()`` removes what is past it in small batches, one transaction each, so
workers and the UI only ever wait for one short batch. Each batch picks its rows through an
index (finished jobs by ``finished_at``, runs by status and id, history by id) and the
``DELETE`` checks their state again, so a job retried meanwhile is never removed. Step jobs
of pipelines go with their run, never alone (a running run counts its steps' jobs). Jobs'
captured log lines go with them.

One pruner at a time across the fleet: the store's advisory lock, taken without waiting
(a second pruner skips its pass; SQLite has a single writer anyway).

Runs in ``jobline prune [--dry-run]`` and periodically in every scheduler process
(``Pruner``, which ``jobline scheduler`` and ``jobline up`` start). The statements are the
same on both databases (Django's cursor adapts times and placeholders); the clock and the
lock come from the store.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, transaction

from jobline import conf
from jobline.services import database

log = logging.getLogger("jobline.services.retention")

FINISHED = ("succeeded", "failed", "cancelled")  #: job and pipeline run statuses that end
LOCK_KEY = 0x6A6F626C696E65  #: the advisory lock of pruning ("jobline" in ASCII)
#: The background pruner rests this many times as long as each batch took before the next:
#: it keeps a fifth of one connection busy at most, so the hot path keeps its pace.
PACE = 4.0


@dataclass(frozen=True)
class Retention:
    """Days to keep each kind of finished row; 0 (or less) keeps it forever."""

    succeeded: float
    failed: float
    cancelled: float
    schedule_runs: float

    @classmethod
    def from_settings(cls) -> Retention:
        return cls(
            succeeded=float(conf.get("JOBLINE_RETENTION_SUCCEEDED")),
            failed=float(conf.get("JOBLINE_RETENTION_FAILED")),
            cancelled=float(conf.get("JOBLINE_RETENTION_CANCELLED")),
            schedule_runs=float(conf.get("JOBLINE_RETENTION_SCHEDULE_RUNS")),
        )

    def days(self, status: str) -> float:
        return getattr(self, status)

    def as_dict(self) -> dict[str, Any]:
        """What the API and UI show: days per status, null for forever."""
        return {
            "succeeded_days": self.succeeded or None,
            "failed_days": self.failed or None,
            "cancelled_days": self.cancelled or None,
            "schedule_runs_days": self.schedule_runs or None,
            "interval_seconds": float(conf.get("JOBLINE_PRUNE_INTERVAL")) or None,
            "batch": int(conf.get("JOBLINE_PRUNE_BATCH")),
        }


@dataclass
class Pruned:
    """Rows removed (or, dry, that would be) per kind."""

    jobs: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FINISHED, 0))
    pipeline_runs: int = 0
    pipeline_jobs: int = 0  #: step jobs removed with their runs
    schedule_runs: int = 0
    skipped: bool = False  #: another process holds the lock: nothing was done

    def lines(self, dry_run: bool) -> list[str]:
        verb = "would remove" if dry_run else "removed"
        by_status = ", ".join(f"{s} {n}" for s, n in self.jobs.items())
        return [
            f"jobline_job: {verb} {sum(self.jobs.values())} finished jobs ({by_status})",
            f"jobline_pipelinerun: {verb} {self.pipeline_runs} finished runs "
            f"and their {self.pipeline_jobs} jobs",
            f"jobline_schedulerun: {verb} {self.schedule_runs} history entries",
        ]


# -- the same SQL on both (cutoffs are parameters, adapted by Django) ------------------------

OLD_JOBS = """
FROM jobline_job WHERE finished_at < %s AND status = %s AND pipeline_run_id IS NULL
"""
OLD_RUNS = "FROM jobline_pipelinerun WHERE status = %s AND finished_at < %s"
OLD_HISTORY = "FROM jobline_schedulerun WHERE fired_at < %s"


def _ids(cursor) -> list[int]:
    return [row[0] for row in cursor.fetchall()]


def _marks(ids: list[int]) -> str:
    return ", ".join(["%s"] * len(ids))


def _forget_jobs(cursor, ids: list[int]) -> None:
    """Clear references to removed jobs (foreign keys are checked at commit) and remove their
    log lines (``jobline_joblog`` has no constraint that would)."""
    if ids:
        cursor.execute(f"DELETE FROM jobline_joblog WHERE job_id IN ({_marks(ids)})", ids)
        cursor.execute(
            f"UPDATE jobline_schedulerun SET job_id = NULL WHERE job_id IN ({_marks(ids)})", ids
        )
        cursor.execute(
            f"UPDATE jobline_schedule SET last_job_id = NULL WHERE last_job_id IN ({_marks(ids)})",
            ids,
        )


def _delete_jobs(cursor, status: str, cutoff: Any, batch: int) -> int:
    cursor.execute(
        f"DELETE FROM jobline_job WHERE id IN (SELECT id {OLD_JOBS} ORDER BY finished_at LIMIT %s)"
        " AND status = %s AND finished_at < %s RETURNING id",
        [cutoff, status, batch, status, cutoff],
    )
    ids = _ids(cursor)
    _forget_jobs(cursor, ids)
    return len(ids)


def _delete_runs(cursor, status: str, cutoff: Any, batch: int, out: Pruned) -> int:
    """Finished runs and their step jobs (counted in ``out``); returns the runs removed."""
    cursor.execute(
        f"DELETE FROM jobline_pipelinerun WHERE id IN (SELECT id {OLD_RUNS} ORDER BY id LIMIT %s)"
        " AND status = %s AND finished_at < %s RETURNING id",
        [status, cutoff, batch, status, cutoff],
    )
    runs = _ids(cursor)
    if runs:
        cursor.execute(
            f"DELETE FROM jobline_job WHERE pipeline_run_id IN ({_marks(runs)}) RETURNING id", runs
        )
        jobs = _ids(cursor)
        _forget_jobs(cursor, jobs)
        out.pipeline_jobs += len(jobs)
    return len(runs)


def _delete_history(cursor, cutoff: Any, batch: int) -> int:
    cursor.execute(
        "DELETE FROM jobline_schedulerun"
        f" WHERE id IN (SELECT id {OLD_HISTORY} ORDER BY id LIMIT %s)"
        " AND fired_at < %s RETURNING id",
        [cutoff, batch, cutoff],
    )
    return len(_ids(cursor))


def _count(cursor, sql: str, params: list[Any]) -> int:
    cursor.execute(f"SELECT count(*) {sql}", params)
    return cursor.fetchone()[0]


def _count_run_jobs(cursor, status: str, cutoff: Any) -> int:
    cursor.execute(
        f"SELECT count(*) FROM jobline_job WHERE pipeline_run_id IN (SELECT id {OLD_RUNS})",
        [status, cutoff],
    )
    return cursor.fetchone()[0]


# -- pruning ----------------------------------------------------------------------------------


def prune(
    using: str = DEFAULT_DB_ALIAS,
    *,
    dry_run: bool = False,
    retention: Retention | None = None,
    batch: int | None = None,
    pace: float = 0.0,
    stopping: Callable[[], bool] = lambda: False,
) -> Pruned:
    """Remove (or count, ``dry_run``) what is past its retention; see the module's doc."""
    retention = retention or Retention.from_settings()
    batch = batch or int(conf.get("JOBLINE_PRUNE_BATCH"))
    store, raw = database.store(using), database.connection(using)
    conn = connections[using]
    out = Pruned()
    with conn.cursor() as cursor:
        if not store.try_lock(raw, LOCK_KEY):
            out.skipped = True
            return out
        try:
            now = store.now(raw)
            for_db = conn.ops.adapt_datetimefield_value

            def cutoff(days: float) -> Any:
                return for_db(now - timedelta(days=days))

            for status in FINISHED:
                days = retention.days(status)
                if days <= 0:
                    continue
                when = cutoff(days)
                if dry_run:
                    out.jobs[status] = _count(cursor, OLD_JOBS, [when, status])
                    out.pipeline_runs += _count(cursor, OLD_RUNS, [status, when])
                    out.pipeline_jobs += _count_run_jobs(cursor, status, when)
                    continue
                jobs = partial(_delete_jobs, cursor, status, when, batch)
                out.jobs[status] = _batches(using, jobs, batch, pace, stopping)
                runs_batch = max(1, batch // 20)  # a run may have many step jobs
                runs = partial(_delete_runs, cursor, status, when, runs_batch, out)
                out.pipeline_runs += _batches(using, runs, runs_batch, pace, stopping)
            if retention.schedule_runs > 0:
                when = cutoff(retention.schedule_runs)
                if dry_run:
                    out.schedule_runs = _count(cursor, OLD_HISTORY, [when])
                else:
                    history = partial(_delete_history, cursor, when, batch)
                    out.schedule_runs = _batches(using, history, batch, pace, stopping)
        finally:
            store.unlock(raw, LOCK_KEY)
    return out


def _batches(
    using: str, step: Callable[[], int], batch: int, pace: float, stopping: Callable[[], bool]
) -> int:
    """Run ``step`` (one batch) in a transaction of its own until it removes less than asked,
    resting ``pace`` times as long as each batch took."""
    total = 0
    while not stopping():
        started = time.monotonic()
        with transaction.atomic(using=using):
            n = step()
        total += n
        if n < batch:
            break
        time.sleep(pace * (time.monotonic() - started))
    return total


class Pruner:
    """Prunes every ``JOBLINE_PRUNE_INTERVAL`` seconds (0: never) until stopped.

    Started beside each scheduler. Its database work runs in a thread of its own with its own
    connection, closed after each pass, so it shares an event loop with a server or scheduler.
    """

    def __init__(self, using: str = DEFAULT_DB_ALIAS, *, interval: float | None = None):
        self.using = using
        self.interval = float(conf.get("JOBLINE_PRUNE_INTERVAL") if interval is None else interval)
        self._stopping = threading.Event()  # seen between batches, in the pruner's thread
        self._stopped = asyncio.Event()
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="jobline-pruner")

    def stop(self) -> None:
        self._stopping.set()
        self._stopped.set()

    async def run(self) -> None:
        if self.interval <= 0:
            return
        loop = asyncio.get_running_loop()
        try:
            while not self._stopping.is_set():
                await loop.run_in_executor(self._thread, self._pass)
                try:
                    await asyncio.wait_for(self._stopped.wait(), self.interval)
                except TimeoutError:
                    pass
        finally:
            self._thread.shutdown(wait=False)

    def _pass(self) -> None:
        try:
            pruned = prune(self.using, pace=PACE, stopping=self._stopping.is_set)
        except Exception as exc:
            explained = database.explain(exc, self.using)
            if explained is None:
                log.exception("pruning failed; next try in %.0f s", self.interval)
            else:  # the database's state, not a bug: no traceback
                log.warning("pruning failed: %s; next try in %.0f s", explained, self.interval)
            return
        finally:
            connections[self.using].close()  # this thread's own; none held between passes
        if pruned.skipped:
            log.debug("pruning skipped: another process is pruning")
        elif sum(pruned.jobs.values()) or pruned.pipeline_runs or pruned.schedule_runs:
            log.info("pruned %s", "; ".join(pruned.lines(dry_run=False)))
