"""SQLite driver: WAL, one-statement ``UPDATE ... RETURNING`` claims, ``BEGIN IMMEDIATE``.

SQLite has no LISTEN: an idle worker watches ``PRAGMA data_version``, which changes when
another connection commits, so a new job is seen within one short poll without a query
on the jobs table.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from itertools import groupby
from typing import Any, TypeVar

from jobline.core.pipelines import plan
from jobline.core.pipelines.plan import RunUpdate, run_updates_json
from jobline.core.states import FINISHED, after_lost
from jobline.core.values import (
    ClaimedJob,
    ClaimFilter,
    Completion,
    HeartbeatReply,
    NewJob,
    Reports,
    ScheduleOutlook,
    WorkerInfo,
    batched,
)
from jobline.exceptions import JoblineError
from jobline.store import outbox
from jobline.store import sqlite_flow as flow
from jobline.store.port import QueueRulesCache, SqlPipelines, explain_chain, run_plan
from jobline.store.sqlite_control import watch_terminate_requests
from jobline.store.sqlite_errors import recognise

T = TypeVar("T")

POLL_SECONDS = 0.02  #: how often an idle worker checks for commits by other processes

INSERT_COLUMNS = (
    "type, queue, priority, status, inputs, error, traceback, attempts, max_attempts, timeout,"
    " requires, idempotency_key, run_at, created_at, cancel_requested, trace_context"
)
ROW_PLACEHOLDERS = "(?, ?, ?, 'queued', ?, '', '', 0, ?, ?, ?, ?, ?, ?, 0, ?)"
PARAMS_PER_ROW = 11
MAX_PARAMS = 32_766  # SQLite's limit of host parameters per statement

CLAIM = """
UPDATE jobline_job
SET status = 'running', attempts = attempts + 1, started_at = :now, worker_id = :worker
WHERE id IN (
    SELECT id FROM jobline_job
    WHERE status = 'queued' AND run_at <= :now
      AND (:queues IS NULL OR queue IN (SELECT value FROM json_each(:queues)))
      AND type IN (SELECT value FROM json_each(:types))
      AND NOT EXISTS (SELECT 1 FROM json_each(jobline_job.requires) r
                      WHERE r.value NOT IN (SELECT value FROM json_each(:tags)))
      AND flow_key IS NULL  -- limited and rate-limited jobs: sqlite_flow.FLOW_CLAIM
      AND queue NOT IN (SELECT name FROM jobline_queue WHERE paused
          OR concurrency_limit IS NOT NULL OR rate_limit IS NOT NULL)
    ORDER BY priority DESC, run_at, id
    LIMIT :limit
)
RETURNING id, type, queue, inputs, attempts, max_attempts, timeout, pipeline_run_id, created_at,
    -- only fired jobs pay for the lookup of their schedule's name (kafka messages carry it)
    CASE WHEN schedule_id IS NOT NULL
         THEN (SELECT s.name FROM jobline_schedule s WHERE s.id = schedule_id) END,
    trace_context
"""

# The earliest delayed job this worker could run, so it wakes just in time.
NEXT_DUE = """
SELECT MIN(run_at) FROM jobline_job
WHERE status = 'queued' AND run_at > :now
  AND (:queues IS NULL OR queue IN (SELECT value FROM json_each(:queues)))
  AND type IN (SELECT value FROM json_each(:types))
"""

COMPLETE = """
UPDATE jobline_job
SET status = :status, outputs = :outputs, error = :error, traceback = :tb,
    finished_at = CASE WHEN :status = 'queued' THEN NULL ELSE :now END,
    run_at = CASE WHEN :status = 'queued' THEN :retry_at ELSE run_at END,
    -- a kafka message the broker acknowledged is with its executors now (jobline.dispatch)
    dispatch = COALESCE(:dispatch, dispatch),
    worker_id = NULL
WHERE id = :id AND worker_id = :worker AND status = 'running'
"""
# For pipeline steps: whether the completion applied, to advance their runs.
COMPLETE_RETURNING = COMPLETE + "RETURNING status, pipeline_run_id"

# Reports of running jobs (jobline.core.values.Reports): only while this worker runs them.
REPORT_PROGRESS = """
UPDATE jobline_job
SET progress = COALESCE(?2, progress), progress_message = COALESCE(?3, progress_message),
    log_lines = COALESCE(?4, log_lines)
WHERE id = ?1 AND worker_id = ?5 AND status = 'running'
"""
INSERT_LOG_LINE = """
INSERT INTO jobline_joblog (job_id, attempt, seq, level, text, created_at)
VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING
"""
TRIM_LOG = "DELETE FROM jobline_joblog WHERE job_id = ? AND attempt = ? AND seq < ?"

PUT_BACK = """
UPDATE jobline_job SET status = 'queued', attempts = attempts - 1, worker_id = NULL, run_at = ?
WHERE id IN (SELECT value FROM json_each(?)) AND worker_id = ? AND status = 'running'
"""

# Running jobs whose worker's lease has lapsed; jobline.core.states.after_lost decides.
LOST = """
SELECT id, attempts, max_attempts, cancel_requested, pipeline_run_id FROM jobline_job
WHERE status = 'running'
  AND (worker_id IS NULL OR worker_id NOT IN (
      SELECT id FROM jobline_worker WHERE lease_expires_at > :now))
"""
RESCUE = """
UPDATE jobline_job
SET status = :status,
    error = 'worker lost: its lease expired while attempt ' || attempts || ' was running',
    finished_at = CASE WHEN :status = 'queued' THEN NULL ELSE :now END,
    worker_id = NULL, run_at = :now
WHERE id = :id
"""

SCHEDULE_OUTLOOK = """
SELECT (SELECT MIN(next_run_at) FROM jobline_schedule WHERE is_active),
    COUNT(s.id),
    COUNT(CASE WHEN j.id IS NULL OR j.status IN (SELECT value FROM json_each(?)) THEN 1 END)
FROM jobline_schedule s LEFT JOIN jobline_job j ON j.id = s.last_job_id
WHERE s.is_active AND s.reschedule_after_finish AND s.next_run_at IS NULL
"""
ADVANCE_SCHEDULE = """
UPDATE jobline_schedule
SET next_run_at = ?, last_run_at = ?, last_job_id = ?, run_count = ?, is_active = ?
WHERE id = ?
"""


def _now() -> datetime:
    return datetime.now(UTC)


def utc_text(dt: datetime) -> str:
    """A UTC datetime as SQLite text, in the format Django writes (sortable as text)."""
    return dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def insert_jobs(db: sqlite3.Connection, rows: Iterable[NewJob]) -> list[tuple[int, str | None]]:
    """Insert jobs on the caller's connection; returns ``(id, idempotency_key)`` of new rows.

    Several statements need the caller's transaction to be all or nothing.
    """
    now = _now()
    created = utc_text(now)
    inserted: list[tuple[int, str | None]] = []
    for chunk in _chunks(rows):
        flowing = chunk[0].flow is not None  # only such chunks carry the flow columns
        params: list[Any] = []
        for r in chunk:
            run_at = created if r.delay <= 0 else utc_text(now + timedelta(seconds=r.delay))
            params += (
                r.type,
                r.queue,
                r.priority,
                json.dumps(r.inputs),
                r.max_attempts,
                r.timeout,
                json.dumps(r.requires),
                r.idempotency_key,
                run_at,
                created,
                _json_or_null(r.trace_context),
            )
            if flowing:
                params += flow.flow_params(r)
        columns, values = INSERT_COLUMNS, ROW_PLACEHOLDERS
        if flowing:
            columns += ", " + flow.FLOW_COLUMNS
            values = values[:-1] + ", ?" * flow.FLOW_PARAMS + ")"
        inserted += db.execute(
            f"INSERT INTO jobline_job ({columns}) VALUES "
            + ", ".join([values] * len(chunk))
            + " ON CONFLICT DO NOTHING RETURNING id, idempotency_key",
            params,
        ).fetchall()
    return inserted


def _json_or_null(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


def _chunks(rows: Iterable[NewJob]) -> Iterator[list[NewJob]]:
    """Rows in order, in statements of one shape: with flow keys or without."""
    for flowing, group in groupby(rows, key=lambda r: r.flow is not None):
        size = MAX_PARAMS // (PARAMS_PER_ROW + (flow.FLOW_PARAMS if flowing else 0))
        yield from batched(group, size)


def connect(path: str, busy_timeout_ms: int) -> sqlite3.Connection:
    """A connection of our own: autocommit (we BEGIN ourselves), WAL, waits for the write lock."""
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
    return db


class SqliteListener:
    """SQLite has no LISTEN: ``PRAGMA data_version`` on a connection of our own changes when
    any other connection commits, so a short poll of it wakes every channel."""

    def __init__(self, path: str, channels: Iterable[str]):
        self._path = path
        self._events = {channel: asyncio.Event() for channel in channels}
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="jobline-sqlite-watch")
        self._task: asyncio.Task[None] | None = None

    def event(self, channel: str) -> asyncio.Event:
        return self._events[channel]

    async def _call(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn)

    async def open(self) -> None:
        db = await self._call(lambda: connect(self._path, 1000))
        seen = await self._call(lambda: db.execute("PRAGMA data_version").fetchone()[0])
        self._task = asyncio.create_task(self._watch(db, seen), name="jobline-sqlite-watch")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._thread.shutdown(wait=False)

    async def _watch(self, db: sqlite3.Connection, seen: int) -> None:
        try:
            while True:
                await asyncio.sleep(POLL_SECONDS)
                with contextlib.suppress(sqlite3.Error):  # locked or gone: the next look tells
                    version = await self._call(
                        lambda: db.execute("PRAGMA data_version").fetchone()[0]
                    )
                    if version != seen:
                        seen = version
                        for event in self._events.values():
                            event.set()
        finally:
            await self._call(db.close)


class SqliteSession:
    """A worker's SQLite connection, driven from one dedicated thread."""

    def __init__(self, path: str, *, busy_timeout_ms: int = 10_000):
        self._path = path
        self._busy_timeout_ms = busy_timeout_ms
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="jobline-sqlite")
        self._db: sqlite3.Connection | None = None
        self._control = asyncio.Event()
        self._data_version = -1
        self._worker_id: str | None = None  # whose terminate requests the watcher looks for
        self._watcher: asyncio.Task[None] | None = None
        self._queue_rules = QueueRulesCache()

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        db = self._db
        assert db is not None, "store is not open"
        return await self._explained(fn, db)

    async def _explained(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in the session's thread; a locked or read-only file raises
        ``DatabaseLocked`` / ``DatabaseReadOnly`` (the worker logs them as they are)."""
        try:
            return await asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)
        except sqlite3.Error as exc:
            explained = recognise(exc, self._path, self._busy_timeout_ms / 1000)
            if explained is None:
                raise
            raise explained from exc

    async def open(self) -> None:
        self._db = await self._explained(connect, self._path, self._busy_timeout_ms)
        self._watcher = asyncio.create_task(
            watch_terminate_requests(self._run, lambda: self._worker_id, self._control),
            name="jobline-sqlite-control",
        )

    async def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        if self._db is not None:
            await self._run(lambda db: db.close())
            self._db = None
        self._thread.shutdown(wait=False)

    async def register_worker(self, info: WorkerInfo, lease: float) -> None:
        now = _now()
        self._worker_id = info.id

        def register(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT INTO jobline_worker (id, hostname, pid, queues, tags, concurrency, running,"
                " processed, stats, started_at, last_heartbeat_at, lease_expires_at)"
                " VALUES (?, ?, ?, ?, ?, ?, 0, 0, '{}', ?, ?, ?)",
                (
                    info.id,
                    info.hostname,
                    info.pid,
                    json.dumps(info.queues),
                    json.dumps(info.tags),
                    info.concurrency,
                    utc_text(now),
                    utc_text(now),
                    utc_text(now + timedelta(seconds=lease)),
                ),
            )

        await self._run(register)

    async def heartbeat(
        self, worker_id: str, lease: float, *, running: int, processed: int, stats: str
    ) -> HeartbeatReply:
        now = _now()

        def beat(db: sqlite3.Connection) -> HeartbeatReply:
            alive = db.execute(
                "UPDATE jobline_worker SET last_heartbeat_at = ?, lease_expires_at = ?,"
                " running = ?, processed = ?, stats = ? WHERE id = ? AND lease_expires_at > ?"
                " RETURNING id",
                (
                    utc_text(now),
                    utc_text(now + timedelta(seconds=lease)),
                    running,
                    processed,
                    stats,
                    worker_id,
                    utc_text(now),
                ),
            ).fetchall()
            if not alive:
                return HeartbeatReply(alive=False)
            rows = db.execute(
                "SELECT id FROM jobline_job WHERE worker_id = ? AND status = 'running'"
                " AND cancel_requested",
                (worker_id,),
            ).fetchall()
            return HeartbeatReply(alive=True, cancel=[r[0] for r in rows])

        return await self._run(beat)

    async def deregister_worker(self, worker_id: str) -> None:
        await self._run(
            lambda db: db.execute("DELETE FROM jobline_worker WHERE id = ?", (worker_id,))
        )

    async def claim(
        self, worker_id: str, limit: int, where: ClaimFilter, *, done: Sequence[Completion] = ()
    ) -> list[ClaimedJob]:
        if done:
            await self.complete(worker_id, list(done))
        params = {
            "now": utc_text(_now()),
            "worker": worker_id,
            "queues": None if where.queues is None else json.dumps(where.queues),
            "types": json.dumps(where.types),
            "tags": json.dumps(where.tags),
            "limit": limit,
        }

        params["queue_rules"] = await self._queue_rules.any(
            lambda: self._run(lambda db: db.execute(flow.QUEUE_RULES).fetchone()[0])
        )
        flowing = where.flow or params["queue_rules"]

        def claim(db: sqlite3.Connection) -> list[Any]:
            if flowing:
                rows = _flow_claim(db, params)
            else:
                rows = [(*r, False) for r in db.execute(CLAIM, params).fetchall()]
            self._data_version = db.execute("PRAGMA data_version").fetchone()[0]
            return rows

        return [
            ClaimedJob(
                id=r[0],
                type=r[1],
                queue=r[2],
                inputs=json.loads(r[3]),
                attempt=r[4],
                max_attempts=r[5],
                timeout=r[6],
                pipeline_run_id=r[7],
                created_at=datetime.fromisoformat(r[8]).replace(tzinfo=UTC),
                schedule=r[9],
                trace_context=None if r[10] is None else json.loads(r[10]),
                flow=r[11],
            )
            for r in await self._run(claim)
        ]

    async def complete(self, worker_id: str, done: list[Completion]) -> None:
        now = _now()
        now_text = utc_text(now)
        params = [
            {
                "id": c.id,
                "status": c.status.value,
                "outputs": c.outputs,
                "error": c.error,
                "tb": c.traceback,
                "now": now_text,
                "worker": worker_id,
                "retry_at": utc_text(now + timedelta(seconds=c.retry_in)),
                "dispatch": c.dispatch,
            }
            for c in done
        ]
        runs = {c.pipeline_run_id for c in done if c.pipeline_run_id is not None}
        frees = any(c.flow for c in done)  # limits' slots: look again (others see the commit)
        plain, steps = params, []
        if runs:
            pairs = list(zip(done, params, strict=True))
            plain = [p for c, p in pairs if c.pipeline_run_id is None]
            steps = [(COMPLETE_RETURNING, p) for c, p in pairs if c.pipeline_run_id is not None]

        def complete(db: sqlite3.Connection) -> int:
            db.execute("BEGIN IMMEDIATE")
            added = 0
            try:
                db.executemany(COMPLETE, plain)
                if steps:  # pipeline steps: their runs advance in this same transaction
                    added = run_plan(db, plan.after_completion(PIPELINE_SQL, runs, steps)).inserted
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            return added

        if await self._run(complete) or frees:
            self._data_version = -1  # our own commit does not change data_version: wake up

    async def write_reports(self, worker_id: str, reports: Reports) -> None:
        jobs = [(*row, worker_id) for row in reports.job_updates()]
        lines = [
            (r.job_id, r.attempt, r.seq, r.level, r.text, utc_text(r.created))
            for r in reports.lines
        ]
        trims = [(t.job_id, t.attempt, t.keep_from) for t in reports.trims]

        def write(db: sqlite3.Connection) -> None:
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany(INSERT_LOG_LINE, lines)
                db.executemany(TRIM_LOG, trims)
                db.executemany(REPORT_PROGRESS, jobs)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

        await self._run(write)

    async def put_back(self, worker_id: str, ids: list[int]) -> None:
        now = utc_text(_now())
        await self._run(lambda db: db.execute(PUT_BACK, (now, json.dumps(ids), worker_id)))

    async def running(self, worker_id: str) -> list[int]:
        sql = "SELECT id FROM jobline_job WHERE worker_id = ? AND status = 'running'"
        rows = await self._run(lambda db: db.execute(sql, (worker_id,)).fetchall())
        return [r[0] for r in rows]

    async def rescue_lost(self) -> list[int]:
        now = utc_text(_now())

        def rescue(db: sqlite3.Connection) -> list[int]:
            db.execute("BEGIN IMMEDIATE")
            try:
                lost = db.execute(LOST, {"now": now}).fetchall()
                rows = [
                    (job_id, after_lost(attempt=a, max_attempts=m, cancel_requested=c).value, run)
                    for job_id, a, m, c, run in lost
                ]
                db.executemany(RESCUE, [{"id": i, "status": st, "now": now} for i, st, _ in rows])
                db.execute("DELETE FROM jobline_worker WHERE lease_expires_at <= ?", (now,))
                if runs := plan.finished_runs(rows):  # steps out of attempts move their runs on
                    run_plan(db, plan.advance_runs(PIPELINE_SQL, runs))
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            return [r[0] for r in rows]

        return await self._run(rescue)

    async def next_due_in(self, where: ClaimFilter) -> float | None:
        now = _now()
        params = {
            "now": utc_text(now),
            "queues": None if where.queues is None else json.dumps(where.queues),
            "types": json.dumps(where.types),
        }
        (run_at,) = await self._run(lambda db: db.execute(NEXT_DUE, params).fetchone())
        due = None
        if run_at is not None:
            due = (datetime.fromisoformat(run_at).replace(tzinfo=UTC) - now).total_seconds()
        if where.rate_window > 0:  # a rate's window opens: jobs held by it may start
            opens = await self._run(
                lambda db: flow.rate_opens_in(db, now, where.rate_window, params["types"])
            )
            due = opens if due is None else due if opens is None else min(due, opens)
        return due

    async def wait_for_jobs(self, timeout: float) -> None:
        """Return once another connection has committed, or after ``timeout`` seconds."""
        deadline = asyncio.get_running_loop().time() + timeout

        def version(db: sqlite3.Connection) -> int:
            return db.execute("PRAGMA data_version").fetchone()[0]

        while asyncio.get_running_loop().time() < deadline:
            if await self._run(version) != self._data_version:
                return
            await asyncio.sleep(POLL_SECONDS)

    def control_event(self) -> asyncio.Event:
        return self._control


def _flow_claim(db: sqlite3.Connection, params: dict[str, Any]) -> list[Any]:
    """Flow-controlled jobs first (their limits bound them), then the rest, under the write
    lock taken before the clock is read: start times grow in claim order."""
    db.execute("BEGIN IMMEDIATE")
    try:
        params = {**params, "now": utc_text(_now())}
        rows = [(*r, True) for r in db.execute(flow.FLOW_CLAIM, params).fetchall()]
        if (left := params["limit"] - len(rows)) > 0:
            rows += [(*r, False) for r in db.execute(CLAIM, {**params, "limit": left})]
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    return rows


class PipelineSQL:
    """The statements that advance pipeline runs (``jobline.core.pipelines.plan.Dialect``).

    Lists travel as JSON; JSON values inside them are JSON text, so ``->>`` returns them as
    stored text. The runs are "locked" by a write: it takes SQLite's write lock at once.
    """

    LOCK_RUNS = """
    UPDATE jobline_pipelinerun SET id = id WHERE id IN (SELECT value FROM json_each(?))
    RETURNING id, status, definition, inputs, step_states, trace_context
    """
    PROGRESS = """
    SELECT pipeline_run_id, pipeline_step, status, count(*), max(error) FROM jobline_job
    WHERE pipeline_run_id IN (SELECT value FROM json_each(?)) GROUP BY 1, 2, 3
    """
    OUTPUTS = """
    SELECT j.pipeline_run_id, j.pipeline_step, j.pipeline_index, j.outputs
    FROM json_each(?) AS w JOIN jobline_job AS j
        ON j.pipeline_run_id = w.value ->> 0 AND j.pipeline_step = w.value ->> 1
    WHERE j.pipeline_run_id IS NOT NULL  -- the partial index of steps serves the lookup
      AND +j.status = 'succeeded'  -- "+": never look succeeded jobs up by status
    ORDER BY 1, 2, 3
    """
    INSERT_JOBS = f"""
    INSERT INTO jobline_job ({INSERT_COLUMNS}, pipeline_run_id, pipeline_step, pipeline_index,
        {flow.FLOW_COLUMNS})
    SELECT value ->> 't', value ->> 'q', value ->> 'p', 'queued', value ->> 'i', '', '', 0,
        value ->> 'm', value ->> 'o', value ->> 'r', NULL, ?, ?, 0, value ->> 'tc',
        value ->> 'pr', value ->> 'ps', value ->> 'pi', value ->> 'fk', value ->> 'lk',
        value ->> 'ln', value ->> 'rk', value ->> 'rn', value ->> 'rp', value ->> 'uk'
    FROM json_each(?) WHERE true ORDER BY key
    ON CONFLICT DO NOTHING
    """
    UPDATE_RUNS = """
    UPDATE jobline_pipelinerun
    SET status = v.value ->> 'status', step_states = v.value ->> 'states',
        outputs = v.value ->> 'outputs', error = v.value ->> 'error',
        finished_at = CASE WHEN v.value ->> 'status' = 'running' THEN NULL ELSE ? END
    FROM json_each(?) AS v WHERE jobline_pipelinerun.id = v.value ->> 'id'
    """

    def lock_runs(self, ids: list[int]) -> tuple[str, Any]:
        return self.LOCK_RUNS, (json.dumps(ids),)

    def progress(self, ids: list[int]) -> tuple[str, Any]:
        return self.PROGRESS, (json.dumps(ids),)

    def outputs(self, pairs: list[tuple[int, str]]) -> tuple[str, Any]:
        return self.OUTPUTS, (json.dumps(pairs),)

    def insert_jobs(self, rows: list[NewJob]) -> Iterator[tuple[str, Any]]:
        now = utc_text(_now())
        batch = [
            {
                "t": r.type,
                "q": r.queue,
                "p": r.priority,
                "i": json.dumps(r.inputs),
                "m": r.max_attempts,
                "o": r.timeout,
                "r": json.dumps(r.requires),
                "pr": r.pipeline_run_id,
                "ps": r.pipeline_step,
                "pi": r.pipeline_index,
                "tc": _json_or_null(r.trace_context),
                **(
                    dict(
                        zip(
                            ("fk", "lk", "ln", "rk", "rn", "rp", "uk"),
                            flow.flow_params(r),
                            strict=True,
                        )
                    )
                    if r.flow is not None
                    else {}
                ),
            }
            for r in rows
        ]
        yield self.INSERT_JOBS, (now, now, json.dumps(batch))

    def update_runs(self, rows: list[RunUpdate]) -> tuple[str, Any]:
        return self.UPDATE_RUNS, (utc_text(_now()), run_updates_json(rows))


PIPELINE_SQL = PipelineSQL()


def _utc(value: str | datetime | None) -> datetime | None:
    """A UTC datetime kept as text (Django's connection may have parsed it, naive)."""
    if value is None:
        return None
    parsed = datetime.fromisoformat(value) if isinstance(value, str) else value
    return parsed.replace(tzinfo=UTC)


def _text(value: Any) -> Any:
    return utc_text(value) if isinstance(value, datetime) else value


class SqliteStore(SqlPipelines):
    """The queue's tables in an SQLite file (see :class:`jobline.store.port.Store`).

    One writer at a time: a transaction that means to write takes the database's write lock
    first (``lock_for_write``), so concurrent schedulers and workers queue up, not collide.
    """

    name = "sqlite"
    supports_listen = False
    supports_skip_locked = False
    supports_returning = True
    supports_pipelines = True
    pipeline_sql = PIPELINE_SQL
    supports_async_insert = False  #: sqlite3 blocks: callers use a thread and Django's connection

    def __init__(self, settings_dict: dict[str, Any]):
        self.path = str(settings_dict["NAME"])
        #: seconds a writer waits for the lock: Django's ``OPTIONS["timeout"]`` (sqlite3's
        #: default 5 s), set from JOBLINE_SQLITE_BUSY_TIMEOUT by ``jobline.database``
        self.busy_timeout = float((settings_dict.get("OPTIONS") or {}).get("timeout", 5.0))

    def session(self, *, deadline: float = 10.0) -> SqliteSession:
        """A waiting writer gives up after ``deadline`` seconds, or the busy timeout if
        shorter (SQLite's busy timeout)."""
        wait = min(deadline, self.busy_timeout)
        return SqliteSession(self.path, busy_timeout_ms=round(wait * 1000))

    def listener(self, channels: Iterable[str]) -> SqliteListener:
        return SqliteListener(self.path, channels)

    def explain(self, exc: BaseException) -> JoblineError | None:
        return explain_chain(exc, lambda e: recognise(e, self.path, self.busy_timeout))

    def insert_jobs(self, connection: Any, rows: Iterable[NewJob]) -> list[tuple[int, str | None]]:
        return insert_jobs(connection, rows)

    def insert_unique(self, connection: Any, rows: Sequence[NewJob]) -> list[tuple[int, bool]]:
        return flow.insert_unique(connection, rows, insert_jobs, _now())

    async def ainsert_jobs(self, rows: Sequence[NewJob]) -> list[tuple[int, str | None]]:
        """On a connection of its own, in a thread (sqlite3 blocks), in one transaction."""

        def insert() -> list[tuple[int, str | None]]:
            db = connect(self.path, round(self.busy_timeout * 1000))
            try:
                db.execute("BEGIN IMMEDIATE")
                inserted = insert_jobs(db, rows)
                db.execute("COMMIT")
                return inserted
            finally:
                db.close()

        return await asyncio.to_thread(insert)

    async def afind_keys(self, keys: Iterable[str]) -> dict[str, int]:
        def find() -> dict[str, int]:
            db = connect(self.path, round(self.busy_timeout * 1000))
            try:
                return self.find_keys(db, keys)
            finally:
                db.close()

        return await asyncio.to_thread(find)

    def find_keys(self, connection: Any, keys: Iterable[str]) -> dict[str, int]:
        rows = connection.execute(
            "SELECT idempotency_key, id FROM jobline_job"
            " WHERE idempotency_key IN (SELECT value FROM json_each(?))",
            (json.dumps(list(keys)),),
        ).fetchall()
        return dict(rows)

    def notify(self, connection: Any, channel: str) -> None:
        """Listeners poll ``data_version``: the commit itself wakes them."""

    def now(self, connection: Any) -> datetime:
        return _now()

    def try_lock(self, connection: Any, key: int) -> bool:
        """One writer at a time already: whatever the lock would guard re-checks its rows."""
        return True

    def unlock(self, connection: Any, key: int) -> None:
        """Nothing was taken."""

    def take_events(self, connection: Any, limit: int) -> list[dict[str, Any]]:
        rows = connection.execute(outbox.TAKE_SQLITE, (limit,)).fetchall()
        events = outbox.rows_to_events(rows)
        for event in events:
            for name in ("created_at", "started_at", "finished_at", "at"):
                event[name] = _utc(event[name])
        return events

    def lock_for_write(self, connection: Any) -> None:
        """A write takes SQLite's one write lock, even one that changes nothing."""
        connection.execute("UPDATE jobline_schedule SET id = id WHERE 0")

    def schedule_writes(self, connection: Any, *, durable: bool) -> None:
        """No triggers to quiet: schedulers see commits through ``data_version``."""

    def schedule_outlook(self, connection: Any) -> ScheduleOutlook:
        finished = json.dumps([s.value for s in FINISHED])
        next_due, waiting, ready = connection.execute(SCHEDULE_OUTLOOK, (finished,)).fetchone()
        if isinstance(next_due, str):  # SQLite keeps UTC datetimes as text
            next_due = datetime.fromisoformat(next_due).replace(tzinfo=UTC)
        return ScheduleOutlook(now=_now(), next_due=next_due, waiting=waiting > 0, rearm=ready > 0)

    def advance_schedules(self, connection: Any, rows: Sequence[tuple[Any, ...]]) -> None:
        connection.executemany(ADVANCE_SCHEDULE, [tuple(map(_text, row)) for row in rows])

    def link_jobs(self, connection: Any, links: Sequence[tuple[int, int]]) -> None:
        connection.executemany("UPDATE jobline_job SET schedule_id = ? WHERE id = ?", links)
