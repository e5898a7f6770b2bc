"""PostgreSQL driver: batched claims with FOR UPDATE SKIP LOCKED, LISTEN/NOTIFY wake-ups.

Times come from the database clock (``now()``), so hosts with skewed clocks agree on
leases and run times.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import weakref
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

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
from jobline.store import postgres_flow as flow
from jobline.store.pg_link import Link, recognise
from jobline.store.pg_options import TCP_OPTIONS
from jobline.store.port import (
    CONTROL,
    JOBS,
    QueueRulesCache,
    SqlPipelines,
    arun_plan,
    explain_chain,
)
from jobline.store.reconnect import Backoff

log = logging.getLogger("jobline.store")
# Rows per INSERT statement. Small enough that the server inserts one batch while the next
# is validated here (pipeline mode): 1,000-row enqueue_many calls went from about 25,000 to
# 35,000 rows/s at 200 rows against 5,000; below 100 the statements' own cost shows.
BATCH_ROWS = 200

# The batch travels as one JSON document: cheaper to build and to bind than nine arrays.
INSERT_JOBS = """
INSERT INTO jobline_job (type, queue, priority, status, inputs, error, traceback, attempts,
    max_attempts, timeout, requires, idempotency_key, run_at, created_at, cancel_requested,
    pipeline_run_id, pipeline_step, pipeline_index, flow_key, limit_key, limit_n, rate_key,
    rate_n, rate_per, unique_key, trace_context)
SELECT v.t, v.q, v.p, 'queued', v.i, '', '', 0, v.m, v.o, v.r, v.k,
    now() + v.d * interval '1 second', now(), false, v.pr, v.ps, v.pi, v.fk, v.lk, v.ln, v.rk,
    v.rn, v.rp, v.uk, v.tc
FROM ROWS FROM (jsonb_to_recordset(%s::jsonb) AS (t text, q text, p int, i jsonb, m int,
    o float8, r jsonb, k text, d float8, pr bigint, ps text, pi int, fk text, lk text, ln int,
    rk text, rn int, rp float8, uk text, tc jsonb))
    WITH ORDINALITY AS v(t, q, p, i, m, o, r, k, d, pr, ps, pi, fk, lk, ln, rk, rn, rp, uk, tc,
        ord)
ORDER BY v.ord
{on_conflict}
RETURNING id, idempotency_key
"""

FIND_KEYS = "SELECT idempotency_key, id FROM jobline_job WHERE idempotency_key = ANY(%s)"

# The worker's filter is written into the text once per worker (``_claim_sql``), so a
# claim binds two scalars: dumping its arrays on every call cost more client CPU than the
# rest of the call (measured: 197 µs against 104 µs for SELECT 1).
CLAIM = """
WITH picked AS (
    SELECT id FROM jobline_job
    WHERE status = 'queued' AND run_at <= now()
      AND ({all_queues} OR queue = ANY({queues}::text[]))
      AND type = ANY({types}::text[])
      AND requires <@ {tags}::jsonb
      AND flow_key IS NULL  -- limited and rate-limited jobs: FLOW_CLAIM
      AND NOT EXISTS (SELECT 1 FROM jobline_queue q WHERE q.name = queue
          AND (q.paused OR q.concurrency_limit IS NOT NULL OR q.rate_limit IS NOT NULL))
    ORDER BY priority DESC, run_at, id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE jobline_job j
SET status = 'running', attempts = j.attempts + 1, started_at = now(), worker_id = %(worker)s
FROM picked WHERE j.id = picked.id
RETURNING j.id, j.type, j.queue, j.inputs, j.attempts, j.max_attempts, j.timeout,
    j.pipeline_run_id, j.created_at,
    -- only fired jobs pay for the lookup of their schedule's name (kafka messages carry it)
    CASE WHEN j.schedule_id IS NOT NULL
         THEN (SELECT s.name FROM jobline_schedule s WHERE s.id = j.schedule_id) END,
    j.trace_context
"""

# Seconds until the earliest delayed job this worker could run, so it wakes just in time.
NEXT_DUE = """
SELECT EXTRACT(EPOCH FROM MIN(run_at) - now())::float8 FROM jobline_job
WHERE status = 'queued' AND run_at > now()
  AND (%(all_queues)s OR queue = ANY(%(queues)s::text[]))
  AND type = ANY(%(types)s::text[])
"""

COMPLETE = """
UPDATE jobline_job j
SET status = v.status,
    outputs = v.outputs::jsonb,
    error = v.error,
    traceback = v.tb,
    finished_at = CASE WHEN v.status = 'queued' THEN NULL ELSE now() END,
    run_at = CASE WHEN v.status = 'queued' THEN now() + v.delay * interval '1 second'
                  ELSE j.run_at END,
    dispatch = COALESCE(v.dispatch, j.dispatch),
    worker_id = NULL
FROM jsonb_to_recordset(%(done)s::jsonb) AS v(id bigint, status text, outputs text,
    error text, tb text, delay float8, dispatch text)
WHERE j.id = v.id AND j.worker_id = %(worker)s AND j.status = 'running'
"""
# For a batch with pipeline steps: which completions applied, to advance their runs.
COMPLETE_RETURNING = COMPLETE + "RETURNING j.status, j.pipeline_run_id"
# For a batch that frees limits' slots: the workers waiting for them look again at commit.
COMPLETE_NOTIFY = f"WITH done AS ({COMPLETE} RETURNING 1) SELECT pg_notify('{JOBS}', '')"

# Reports of running jobs (jobline.core.values.Reports): only while this worker runs them.
REPORT_PROGRESS = """
UPDATE jobline_job j
SET progress = COALESCE(u.fraction, j.progress),
    progress_message = COALESCE(u.message, j.progress_message),
    log_lines = COALESCE(u.lines, j.log_lines)
FROM unnest(%s::bigint[], %s::float8[], %s::text[], %s::int[]) AS u(id, fraction, message, lines)
WHERE j.id = u.id AND j.worker_id = %s AND j.status = 'running'
"""
INSERT_LOG_LINES = """
INSERT INTO jobline_joblog (job_id, attempt, seq, level, text, created_at)
SELECT * FROM unnest(%s::bigint[], %s::int[], %s::int[], %s::text[], %s::text[],
    %s::timestamptz[])
ON CONFLICT DO NOTHING
"""
TRIM_LOG = """
DELETE FROM jobline_joblog l
USING unnest(%s::bigint[], %s::int[], %s::int[]) AS t(job_id, attempt, keep_from)
WHERE l.job_id = t.job_id AND l.attempt = t.attempt AND l.seq < t.keep_from
"""

PUT_BACK = """
UPDATE jobline_job SET status = 'queued', attempts = attempts - 1, worker_id = NULL,
    run_at = now()
WHERE id = ANY(%s::bigint[]) AND worker_id = %s AND status = 'running'
"""

REGISTER_WORKER = """
INSERT INTO jobline_worker (id, hostname, pid, queues, tags, concurrency, running, processed,
    stats, started_at, last_heartbeat_at, lease_expires_at)
VALUES (%s, %s, %s, %s::jsonb, %s::jsonb, %s, 0, 0, '{}', now(), now(),
    now() + %s * interval '1 second')
"""

HEARTBEAT = """
UPDATE jobline_worker
SET last_heartbeat_at = now(), lease_expires_at = now() + %s * interval '1 second',
    running = %s, processed = %s, stats = %s::jsonb
WHERE id = %s AND lease_expires_at > now()
RETURNING id
"""

RUNNING = "SELECT id FROM jobline_job WHERE worker_id = %s AND status = 'running'"

CANCEL_REQUESTED = """
SELECT id FROM jobline_job WHERE worker_id = %s AND status = 'running' AND cancel_requested
"""

# Running jobs whose worker's lease has lapsed; jobline.core.states.after_lost decides.
LOST = """
SELECT id, attempts, max_attempts, cancel_requested, pipeline_run_id FROM jobline_job
WHERE status = 'running'
  AND (worker_id IS NULL OR worker_id NOT IN (
      SELECT id FROM jobline_worker WHERE lease_expires_at > now()))
FOR UPDATE SKIP LOCKED
"""
RESCUE = """
UPDATE jobline_job j
SET status = v.status,
    error = 'worker lost: its lease expired while attempt ' || j.attempts || ' was running',
    finished_at = CASE WHEN v.status = 'queued' THEN NULL ELSE now() END,
    worker_id = NULL, run_at = now()
FROM unnest(%s::bigint[], %s::text[]) AS v(id, status)
WHERE j.id = v.id
"""

DELETE_DEAD_WORKERS = "DELETE FROM jobline_worker WHERE lease_expires_at <= now()"

# The earliest pending run (from the partial index), and the schedules waiting for their job.
SCHEDULE_OUTLOOK = """
SELECT (SELECT MIN(next_run_at) FROM jobline_schedule WHERE is_active),
    COUNT(s.id),
    COUNT(s.id) FILTER (WHERE j.id IS NULL OR j.status = ANY(%s::text[])),
    clock_timestamp()
FROM jobline_schedule s LEFT JOIN jobline_job j ON j.id = s.last_job_id
WHERE s.is_active AND s.reschedule_after_finish AND s.next_run_at IS NULL
"""
ADVANCE_SCHEDULE = """
UPDATE jobline_schedule
SET next_run_at = %s, last_run_at = %s, last_job_id = %s, run_count = %s, is_active = %s
WHERE id = %s
"""


# One plain job (the common ``enqueue``): a prepared statement with its values bound, no
# JSON document to build and parse, no pipeline to enter and leave.
INSERT_ONE = """
INSERT INTO jobline_job (type, queue, priority, status, inputs, error, traceback, attempts,
    max_attempts, timeout, requires, idempotency_key, run_at, created_at, cancel_requested,
    trace_context)
VALUES (%s::text, %s::text, %s::int, 'queued', %s::jsonb, '', '', 0, %s::int, %s::float8,
    %s::jsonb, %s::text, now() + %s::float8 * interval '1 second', now(), false, %s::jsonb)
{on_conflict}
RETURNING id, idempotency_key
"""
_INSERT_ONE = {
    keyed: INSERT_ONE.format(on_conflict="ON CONFLICT DO NOTHING" if keyed else "")
    for keyed in (False, True)
}


def insert_jobs(conn: Any, rows: Iterable[NewJob]) -> list[tuple[int, str | None]]:
    """Insert jobs on a psycopg connection; returns ``(id, idempotency_key)`` of new rows.

    One plain row is one prepared ``INSERT ... VALUES``: one round trip, the values bound
    (the server parses and plans it once per connection). Otherwise rows may be a lazy
    iterable: batches are sent in pipeline mode, so the server inserts one batch while the
    next is validated here. Several batches need the caller's transaction to be all or
    nothing.
    """
    if isinstance(rows, list | tuple) and len(rows) == 1 and _plain(rows[0]):
        return _insert_one(conn, rows[0])
    sent = []
    with conn.pipeline():
        for chunk in batched(rows, BATCH_ROWS):
            sent.append(conn.cursor())
            sent[-1].execute(_insert_batch_sql(chunk), [_batch_json(chunk)])
    return [row for cur in sent for row in cur.fetchall()]


def _insert_one(conn: Any, r: NewJob) -> list[tuple[int, str | None]]:
    # A server-side binding cursor whatever the connection's cursor_factory (Django's is
    # client-side binding): ``prepare=True`` makes it a prepared statement, unless the
    # connection turned them off (``prepare_threshold=None``, e.g. behind PgBouncer).
    cur = psycopg.Cursor(conn)
    try:
        cur.execute(_INSERT_ONE[r.idempotency_key is not None], _one_params(r), prepare=True)
        return cur.fetchall()
    finally:
        cur.close()


def _plain(r: NewJob) -> bool:
    """A row the one-row statement can write: no pipeline step, no flow control columns."""
    return r.pipeline_run_id is None and r.flow is None


def _one_params(r: NewJob) -> tuple[Any, ...]:
    return (
        r.type,
        r.queue,
        r.priority,
        json.dumps(r.inputs),
        r.max_attempts,
        r.timeout,
        json.dumps(r.requires),
        r.idempotency_key,
        r.delay,
        None if r.trace_context is None else json.dumps(r.trace_context),
    )


def _insert_batch_sql(chunk: list[NewJob]) -> str:
    # ON CONFLICT costs a speculative insert per row: pay it only when keys are present.
    keyed = any(r.idempotency_key is not None for r in chunk)
    return INSERT_JOBS.format(on_conflict="ON CONFLICT DO NOTHING" if keyed else "")


@contextlib.asynccontextmanager
async def _no_transaction() -> Any:
    yield


def _batch_json(chunk: list[NewJob]) -> str:
    batch = []
    for r in chunk:
        row = {
            "t": r.type,
            "q": r.queue,
            "p": r.priority,
            "i": r.inputs,
            "m": r.max_attempts,
            "o": r.timeout,
            "r": r.requires,
            "k": r.idempotency_key,
            "d": r.delay,
        }
        if r.pipeline_run_id is not None:  # absent keys read as NULL: plain jobs pay nothing
            row.update(pr=r.pipeline_run_id, ps=r.pipeline_step, pi=r.pipeline_index)
        if r.flow is not None:
            row.update(flow.flow_columns(r))
        if r.trace_context is not None:
            row["tc"] = r.trace_context
        batch.append(row)
    return json.dumps(batch)


def conninfo(settings_dict: dict[str, Any]) -> str:
    """A libpq connection string from a Django ``DATABASES`` entry."""
    django_only = {"pool", "server_side_binding", "isolation_level", "assume_role", "context"}
    options = {k: v for k, v in settings_dict.get("OPTIONS", {}).items() if k not in django_only}
    return make_conninfo(
        dbname=settings_dict.get("NAME") or "postgres",
        user=settings_dict.get("USER") or None,
        password=settings_dict.get("PASSWORD") or None,
        host=settings_dict.get("HOST") or None,
        port=str(settings_dict["PORT"]) if settings_dict.get("PORT") else None,
        **(TCP_OPTIONS | options),
    )


class PostgresListener:
    """A connection that LISTENs; it reconnects with backoff when the server goes away."""

    def __init__(self, dsn: str, channels: Iterable[str]):
        self._dsn = dsn
        self._events = {channel: asyncio.Event() for channel in channels}
        self._task: asyncio.Task[None] | None = None
        self._backoff = Backoff("LISTEN connection")
        self.connected = asyncio.Event()

    def event(self, channel: str) -> asyncio.Event:
        return self._events[channel]

    async def open(self) -> None:
        """Start listening; returns once the first connection listens (or raises why not)."""
        conn = await self._connect()
        self._task = asyncio.create_task(self._run(conn), name="jobline-listen")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        conn = await psycopg.AsyncConnection.connect(self._dsn, autocommit=True)
        await conn.execute("; ".join(f"LISTEN {channel}" for channel in self._events))
        self.connected.set()
        return conn

    async def _run(self, conn: psycopg.AsyncConnection[Any] | None) -> None:
        while True:
            try:
                if conn is None:
                    conn = await self._connect()
                    self._backoff.succeeded()
                    for event in self._events.values():  # changes meanwhile were not announced
                        event.set()
                async with conn:
                    async for note in conn.notifies():
                        self._events[note.channel].set()
            except (OSError, psycopg.OperationalError, psycopg.InterfaceError) as exc:
                self.connected.clear()
                conn = None
                await self._backoff.fail(exc)


class PostgresSession:
    """A worker's connections: one for claims, one for writes, one that listens.

    Each call has a deadline; a broken or silent connection raises ``StoreUnavailable`` and
    is opened again on the next call (``pg_link``), so a restart or a failover of the server
    costs the worker an outage, not its life.
    """

    def __init__(self, dsn: str, *, deadline: float = 10.0):
        self._claims = Link(dsn, "claim connection", deadline=deadline)
        self._writes = Link(dsn, "write connection", deadline=deadline)
        self._write_lock = asyncio.Lock()
        self._listener = PostgresListener(dsn, (JOBS, CONTROL))
        self._queue_rules = QueueRulesCache()

    async def open(self) -> None:
        await self._claims.connection()
        await self._writes.connection()
        await self._listener.open()

    async def close(self) -> None:
        await self._listener.close()
        await self._claims.close()
        await self._writes.close()

    async def _write(self, sql: str, params: Any) -> list[Any]:
        async def run(conn: psycopg.AsyncConnection[Any]) -> list[Any]:
            cur = await conn.execute(sql, params, prepare=True)
            return await cur.fetchall() if cur.description else []

        async with self._write_lock:
            return await self._writes.run(run)

    async def _transaction(self, work: Any) -> Any:
        """``work(connection)`` in one transaction on the write connection."""

        async def run(conn: psycopg.AsyncConnection[Any]) -> Any:
            async with conn.transaction():
                return await work(conn)

        async with self._write_lock:
            return await self._writes.run(run)

    async def _read(self, sql: str, params: Any) -> list[Any]:
        async def run(conn: psycopg.AsyncConnection[Any]) -> list[Any]:
            cur = await conn.execute(sql, params, prepare=True)
            return await cur.fetchall()

        return await self._claims.run(run)

    async def register_worker(self, info: WorkerInfo, lease: float) -> None:
        await self._write(
            REGISTER_WORKER,
            (
                info.id,
                info.hostname,
                info.pid,
                json.dumps(info.queues),
                json.dumps(info.tags),
                info.concurrency,
                lease,
            ),
        )

    async def heartbeat(
        self, worker_id: str, lease: float, *, running: int, processed: int, stats: str
    ) -> HeartbeatReply:
        alive = await self._write(HEARTBEAT, (lease, running, processed, stats, worker_id))
        if not alive:
            return HeartbeatReply(alive=False)
        rows = await self._write(CANCEL_REQUESTED, (worker_id,))
        return HeartbeatReply(alive=True, cancel=[r[0] for r in rows])

    async def deregister_worker(self, worker_id: str) -> None:
        await self._write("DELETE FROM jobline_worker WHERE id = %s", (worker_id,))

    async def claim(
        self, worker_id: str, limit: int, where: ClaimFilter, *, done: Sequence[Completion] = ()
    ) -> list[ClaimedJob]:
        self._listener.event(JOBS).clear()
        claimed: list[ClaimedJob] = []
        queue_rules = await self._queue_rules.any(self._queues_limited)
        if done and (where.flow or queue_rules or not _plain_completions(done)):
            await self.complete(worker_id, list(done))  # its own transaction: see complete
            done = ()
        if where.flow or queue_rules:
            params = {
                **_filter_params(where),
                "tags": _tags_json(where),
                "limit": limit,
                "worker": worker_id,
                "queue_rules": queue_rules,
            }

            # Flow-controlled jobs first: their limits bound them, so they never starve the
            # rest, while a backlog of other jobs would starve them if they came second.
            # One round trip: BEGIN, the lock, the claim and COMMIT go out together.
            async def flow_claim(conn: psycopg.AsyncConnection[Any]) -> list[Any]:
                async with conn.pipeline():
                    async with conn.transaction():
                        await conn.execute(flow.FLOW_LOCK)
                        # Not prepared: a generic plan cannot see how few keys and slots there
                        # are (measured: drains 58 to 84 % of unlimited prepared, 113 to 133 %
                        # not).
                        cur = await conn.execute(flow.FLOW_CLAIM, params, prepare=False)
                return await cur.fetchall()

            claimed = [_claimed(r, flow=True) for r in await self._claims.run(flow_claim)]
            limit -= len(claimed)
            if limit <= 0:
                return claimed
        plain = {"limit": limit, "worker": worker_id}
        if done:  # one statement: one round trip and one commit (WAL flush) for both
            plain["done"] = _completions_json(done)
        rows = await self._read(_claim_sql(where, completing=bool(done)), plain)
        return claimed + [_claimed(r) for r in rows]

    async def _queues_limited(self) -> bool:
        return (await self._read(flow.QUEUE_RULES, None))[0][0]

    async def complete(self, worker_id: str, done: list[Completion]) -> None:
        params = {"done": _completions_json(done), "worker": worker_id}
        runs = {c.pipeline_run_id for c in done if c.pipeline_run_id is not None}
        frees = any(c.flow for c in done)  # limits' slots: workers waiting for them look again
        if not runs:
            await self._write(COMPLETE_NOTIFY if frees else COMPLETE, params)
            return
        # Pipeline steps: their runs advance (children enqueued) in the same transaction.
        steps = plan.after_completion(PIPELINE_SQL, runs, [(COMPLETE_RETURNING, params)])

        async def work(conn: psycopg.AsyncConnection[Any]) -> None:
            await arun_plan(conn, steps)
            if frees:
                await conn.execute(f"SELECT pg_notify('{JOBS}', '')")

        await self._transaction(work)

    async def write_reports(self, worker_id: str, reports: Reports) -> None:
        lines = [(r.job_id, r.attempt, r.seq, r.level, r.text, r.created) for r in reports.lines]
        trims = [(t.job_id, t.attempt, t.keep_from) for t in reports.trims]
        steps = (
            (INSERT_LOG_LINES, lines, ()),
            (TRIM_LOG, trims, ()),
            (REPORT_PROGRESS, reports.job_updates(), (worker_id,)),
        )

        async def work(conn: psycopg.AsyncConnection[Any]) -> None:
            for statement, rows, scalars in steps:
                if rows:  # one statement per kind: arrays of the rows' columns (unnest)
                    columns = [list(column) for column in zip(*rows, strict=True)]
                    await conn.execute(statement, (*columns, *scalars), prepare=True)

        await self._transaction(work)

    async def put_back(self, worker_id: str, ids: list[int]) -> None:
        await self._write(PUT_BACK, (ids, worker_id))

    async def running(self, worker_id: str) -> list[int]:
        return [r[0] for r in await self._read(RUNNING, (worker_id,))]

    async def rescue_lost(self) -> list[int]:
        async def rescue(conn: psycopg.AsyncConnection[Any]) -> list[int]:
            lost = await (await conn.execute(LOST)).fetchall()
            if lost:
                statuses = [
                    after_lost(attempt=a, max_attempts=m, cancel_requested=c).value
                    for _, a, m, c, _ in lost
                ]
                await conn.execute(RESCUE, ([r[0] for r in lost], statuses))
                rows = [(r[0], st, r[4]) for r, st in zip(lost, statuses, strict=True)]
                if runs := plan.finished_runs(rows):  # steps out of attempts move runs on
                    await arun_plan(conn, plan.advance_runs(PIPELINE_SQL, runs))
            await conn.execute(DELETE_DEAD_WORKERS)
            return [r[0] for r in lost]

        return await self._transaction(rescue)

    async def next_due_in(self, where: ClaimFilter) -> float | None:
        due = (await self._read(NEXT_DUE, _filter_params(where)))[0][0]
        if where.rate_window > 0:  # a rate's window opens: jobs held by it may start
            params = {"window": where.rate_window, "types": list(where.types)}
            opens = (await self._read(flow.RATE_DUE, params))[0][0]
            due = opens if due is None else due if opens is None else min(due, opens)
        return due

    async def wait_for_jobs(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._listener.event(JOBS).wait(), timeout)

    def control_event(self) -> asyncio.Event:
        return self._listener.event(CONTROL)


class PipelineSQL:
    """The statements that advance pipeline runs (``jobline.core.pipelines.plan.Dialect``)."""

    LOCK_RUNS = """
    SELECT id, status, definition::text, inputs::text, step_states::text, trace_context::text
    FROM jobline_pipelinerun WHERE id = ANY(%s::bigint[]) ORDER BY id FOR UPDATE
    """
    PROGRESS = """
    SELECT pipeline_run_id, pipeline_step, status, count(*), max(error) FROM jobline_job
    WHERE pipeline_run_id = ANY(%s::bigint[]) GROUP BY 1, 2, 3
    """
    OUTPUTS = """
    SELECT j.pipeline_run_id, j.pipeline_step, j.pipeline_index, j.outputs::text
    FROM jobline_job j JOIN unnest(%s::bigint[], %s::text[]) AS w(run, step)
        ON j.pipeline_run_id = w.run AND j.pipeline_step = w.step
    WHERE j.pipeline_run_id IS NOT NULL AND j.status = 'succeeded'
    ORDER BY 1, 2, 3
    """
    UPDATE_RUNS = """
    UPDATE jobline_pipelinerun r
    SET status = v.status, step_states = v.states::jsonb, outputs = v.outputs::jsonb,
        error = v.error, finished_at = CASE WHEN v.status = 'running' THEN NULL ELSE now() END
    FROM jsonb_to_recordset(%s::jsonb)
        AS v(id bigint, status text, states text, outputs text, error text)
    WHERE r.id = v.id
    """

    def lock_runs(self, ids: list[int]) -> tuple[str, Any]:
        return self.LOCK_RUNS, [ids]

    def progress(self, ids: list[int]) -> tuple[str, Any]:
        return self.PROGRESS, [ids]

    def outputs(self, pairs: list[tuple[int, str]]) -> tuple[str, Any]:
        return self.OUTPUTS, [[r for r, _ in pairs], [s for _, s in pairs]]

    def insert_jobs(self, rows: list[NewJob]) -> Iterator[tuple[str, Any]]:
        sql = INSERT_JOBS.format(on_conflict="ON CONFLICT DO NOTHING")  # never a step twice
        for chunk in batched(rows, BATCH_ROWS):
            yield sql, [_batch_json(chunk)]

    def update_runs(self, rows: list[RunUpdate]) -> tuple[str, Any]:
        return self.UPDATE_RUNS, [run_updates_json(rows)]


PIPELINE_SQL = PipelineSQL()


class AsyncConnections:
    """A few idle autocommit connections per event loop, for ``aenqueue`` outside a caller's
    transaction: an insert is one round trip on the loop, no thread, no connect."""

    def __init__(self, dsn: str, *, keep: int = 4):
        self._dsn = dsn
        self._keep = keep
        self._idle: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, list[psycopg.AsyncConnection[Any]]
        ] = weakref.WeakKeyDictionary()

    @contextlib.asynccontextmanager
    async def connection(self) -> Any:
        idle = self._idle.setdefault(asyncio.get_running_loop(), [])
        conn = None
        while idle and conn is None:
            conn = idle.pop()
            if conn.closed or conn.broken:
                conn = None
        if conn is None:
            conn = await psycopg.AsyncConnection.connect(self._dsn, autocommit=True)
        try:
            yield conn
        except BaseException:
            await conn.close()  # its state is unknown (a broken link, a cancelled call)
            raise
        if len(idle) < self._keep and not conn.closed:
            idle.append(conn)
        else:
            await conn.close()

    def close(self) -> None:
        """Close every idle connection (the loops they belong to may be gone: no await)."""
        for idle in list(self._idle.values()):
            while idle:
                idle.pop().pgconn.finish()


class PostgresStore(SqlPipelines):
    """The queue's tables on PostgreSQL (see :class:`jobline.store.port.Store`)."""

    name = "postgresql"
    supports_listen = True
    supports_skip_locked = True
    supports_returning = True
    supports_pipelines = True
    pipeline_sql = PIPELINE_SQL
    supports_async_insert = True

    def __init__(self, settings_dict: dict[str, Any]):
        self.dsn = conninfo(settings_dict)
        self.async_connections = AsyncConnections(self.dsn)

    def session(self, *, deadline: float = 10.0) -> PostgresSession:
        return PostgresSession(self.dsn, deadline=deadline)

    def listener(self, channels: Iterable[str]) -> PostgresListener:
        return PostgresListener(self.dsn, channels)

    def explain(self, exc: BaseException) -> JoblineError | None:
        return explain_chain(exc, recognise)

    def insert_jobs(self, connection: Any, rows: Iterable[NewJob]) -> list[tuple[int, str | None]]:
        return insert_jobs(connection, rows)

    def insert_unique(self, connection: Any, rows: Sequence[NewJob]) -> list[tuple[int, bool]]:
        return flow.insert_unique(connection, rows, insert_jobs)

    async def ainsert_jobs(self, rows: Sequence[NewJob]) -> list[tuple[int, str | None]]:
        async with self.async_connections.connection() as conn:
            if len(rows) == 1 and _plain(rows[0]):
                r = rows[0]
                cur = await conn.execute(
                    _INSERT_ONE[r.idempotency_key is not None], _one_params(r), prepare=True
                )
                return await cur.fetchall()
            # several statements are all or nothing; one needs no BEGIN and COMMIT
            transaction = conn.transaction() if len(rows) > BATCH_ROWS else _no_transaction()
            inserted: list[tuple[int, str | None]] = []
            async with transaction:
                for chunk in batched(rows, BATCH_ROWS):
                    cur = await conn.execute(_insert_batch_sql(chunk), [_batch_json(chunk)])
                    inserted += await cur.fetchall()
            return inserted

    async def afind_keys(self, keys: Iterable[str]) -> dict[str, int]:
        async with self.async_connections.connection() as conn:
            cur = await conn.execute(FIND_KEYS, [list(keys)])
            return dict(await cur.fetchall())

    def find_keys(self, connection: Any, keys: Iterable[str]) -> dict[str, int]:
        rows = connection.execute(FIND_KEYS, [list(keys)]).fetchall()
        return dict(rows)

    def notify(self, connection: Any, channel: str) -> None:
        connection.execute("SELECT pg_notify(%s, '')", [channel])

    def now(self, connection: Any) -> datetime:
        """The database's clock, shared by every host."""
        return connection.execute("SELECT clock_timestamp()").fetchone()[0]

    def try_lock(self, connection: Any, key: int) -> bool:
        return connection.execute("SELECT pg_try_advisory_lock(%s)", [key]).fetchone()[0]

    def unlock(self, connection: Any, key: int) -> None:
        connection.execute("SELECT pg_advisory_unlock(%s)", [key])

    def take_events(self, connection: Any, limit: int) -> list[dict[str, Any]]:
        return outbox.rows_to_events(connection.execute(outbox.TAKE_POSTGRES, [limit]))

    def lock_for_write(self, connection: Any) -> None:
        """Row locks (``FOR UPDATE``) do it here."""

    def schedule_writes(self, connection: Any, *, durable: bool) -> None:
        """In the transaction: the schedule trigger wakes nobody for the scheduler's own writes.

        Not ``durable``: the commit does not wait for the WAL flush. A crash may then lose the
        transaction whole (job, history, advance), and the run fires again after the restart,
        but never after a worker started the job: its claim commits later and flushes this
        commit with it. Runs are enqueued milliseconds sooner on slow disks.
        """
        connection.execute(
            "SELECT set_config('jobline.firing', 'on', true),"
            " set_config('synchronous_commit', %s, true)",
            ["on" if durable else "off"],
        )

    def schedule_outlook(self, connection: Any) -> ScheduleOutlook:
        finished = [s.value for s in FINISHED]
        row = connection.execute(SCHEDULE_OUTLOOK, [finished]).fetchone()
        next_due, waiting, ready, now = row
        return ScheduleOutlook(now=now, next_due=next_due, waiting=waiting > 0, rearm=ready > 0)

    def advance_schedules(self, connection: Any, rows: Sequence[tuple[Any, ...]]) -> None:
        with connection.cursor() as cursor:
            cursor.executemany(ADVANCE_SCHEDULE, rows)

    def link_jobs(self, connection: Any, links: Sequence[tuple[int, int]]) -> None:
        with connection.cursor() as cursor:
            cursor.executemany("UPDATE jobline_job SET schedule_id = %s WHERE id = %s", links)


def _claimed(r: Sequence[Any], *, flow: bool = False) -> ClaimedJob:
    return ClaimedJob(
        id=r[0],
        type=r[1],
        queue=r[2],
        inputs=r[3],
        attempt=r[4],
        max_attempts=r[5],
        timeout=r[6],
        pipeline_run_id=r[7],
        created_at=r[8],
        schedule=r[9],
        trace_context=r[10],
        flow=flow,
    )


@functools.lru_cache(maxsize=64)  # one filter per worker; a few in tests
def _claim_sql(where: ClaimFilter, *, completing: bool = False) -> str:
    """The plain claim with ``where`` written in as literals, quoted by psycopg (a ``%`` in
    a name doubled: the text still takes ``%(limit)s`` and ``%(worker)s``). ``completing``:
    the worker's finished jobs (``%(done)s``) are written first, in the same statement (they
    are running, so the claim never sees them)."""
    values = {**_filter_params(where), "tags": _tags_json(where)}
    literals = {k: sql.Literal(v).as_string(None).replace("%", "%%") for k, v in values.items()}
    claim = CLAIM.format(**literals)
    if not completing:
        return claim
    return f"WITH done AS ({COMPLETE} RETURNING 1),{claim.strip().removeprefix('WITH')}"


def _plain_completions(done: Sequence[Completion]) -> bool:
    """Completions that advance no pipeline run and free no limit's slot."""
    return not any(c.pipeline_run_id is not None or c.flow for c in done)


def _tags_json(where: ClaimFilter) -> str:
    return json.dumps(list(where.tags))


def _completions_json(done: Sequence[Completion]) -> str:
    """Completions as one JSON document: C-speed ``json.dumps`` instead of dumping seven
    arrays value by value (measured: 124 against 197 µs of client CPU for one job)."""
    return json.dumps(
        [
            {
                "id": c.id,
                "status": c.status.value,
                "outputs": c.outputs,
                "error": c.error,
                "tb": c.traceback,
                "delay": float(c.retry_in),
                "dispatch": c.dispatch,
            }
            for c in done
        ]
    )


def _filter_params(where: ClaimFilter) -> dict[str, Any]:
    return {
        "all_queues": where.queues is None,
        "queues": list(where.queues or ()),
        "types": list(where.types),
    }
