"""The store port: everything that touches the queue's tables, behind one typed interface.

A driver (``postgres``, ``sqlite``, ``memory``) implements :class:`Store`, in three parts:

* methods that take a DB-API connection run inside the caller's transaction (Django's
  connection for the alias), so an enqueue, a person's action or a schedule's firing commits
  with the caller's own writes, or not at all;
* :meth:`Store.session`: a worker's own async connections for claims, completions,
  heartbeats and the rescue of lost workers' jobs;
* :meth:`Store.listener`: wake-ups when other processes change the tables.

Drivers import only ``jobline.core``: business rules (retry or fail, what a pipeline does
next) come from there, the drivers only execute them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, Protocol, TypeVar

from jobline.core.pipelines import plan
from jobline.core.pipelines.plan import Advanced, Dialect, Plan
from jobline.core.pipelines.spec import PipelineSpec
from jobline.core.tracecontext import TraceContext
from jobline.core.values import (
    ClaimedJob,
    ClaimFilter,
    Completion,
    HeartbeatReply,
    NewJob,
    Reports,
    ScheduleOutlook,
    WorkerInfo,
)
from jobline.exceptions import DatabaseReadOnly, JoblineError, StoreUnavailable

T = TypeVar("T")

JOBS = "jobline_jobs"  #: jobs were inserted or queued again (PostgreSQL: by a trigger)
CONTROL = "jobline_control"  #: a terminate, pause or resume: workers look at once
SCHEDULES = "jobline_schedules"  #: a schedule was created or changed (PostgreSQL: a trigger)
EVENTS = "jobline_events"  #: job events are in the outbox (PostgreSQL: a trigger)


class Listener(Protocol):
    """Wake-ups from other processes' changes. Each channel has an event, set when it was
    notified (and all of them after a reconnect, when notifications may have been missed);
    the one who waits clears it before looking."""

    async def open(self) -> None: ...
    async def close(self) -> None: ...
    def event(self, channel: str) -> asyncio.Event: ...


class Session(Protocol):
    """A worker's side of the store: its own connections, driven from its event loop."""

    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def register_worker(self, info: WorkerInfo, lease: float) -> None: ...
    async def heartbeat(
        self, worker_id: str, lease: float, *, running: int, processed: int, stats: str
    ) -> HeartbeatReply: ...
    async def deregister_worker(self, worker_id: str) -> None: ...
    async def claim(
        self, worker_id: str, limit: int, where: ClaimFilter, *, done: Sequence[Completion] = ()
    ) -> list[ClaimedJob]:
        """Take up to ``limit`` due jobs for ``worker_id``; ``done`` (finished jobs of this
        worker) are completed first, as :meth:`complete` would. PostgreSQL writes plain ones
        in the claim's own statement: one round trip and one commit for both (a worker at
        concurrency 1 pays one WAL flush per job, not two)."""
        ...

    async def complete(self, worker_id: str, done: list[Completion]) -> None: ...
    async def write_reports(self, worker_id: str, reports: Reports) -> None:
        """Running jobs' progress and captured log lines, in one transaction: progress and
        line counts land on jobs still running under ``worker_id``; lines are stored by job,
        attempt and line number (one already there stays as it is); trims drop an attempt's
        lines below a number (its log went over the cap, the tail is kept)."""
        ...

    async def put_back(self, worker_id: str, ids: list[int]) -> None: ...
    async def running(self, worker_id: str) -> list[int]:
        """The jobs the database has running under ``worker_id`` (after an outage, a claim
        whose answer was lost may have taken some the worker never heard of)."""
        ...

    async def rescue_lost(self) -> list[int]: ...
    async def next_due_in(self, where: ClaimFilter) -> float | None: ...
    async def wait_for_jobs(self, timeout: float) -> None: ...
    def control_event(self) -> asyncio.Event: ...


class Store(Protocol):
    """One database's tables. ``connection`` parameters are DB-API connections in the
    caller's transaction; the memory store ignores them."""

    name: str  #: "postgresql", "sqlite" or "memory"
    supports_listen: bool  #: notifications wake listeners at once (else they poll)
    supports_skip_locked: bool  #: concurrent claimers skip each other's rows (else one writer)
    supports_returning: bool  #: writes return the rows they changed in the same statement
    supports_pipelines: bool  #: pipeline runs advance in the store's transactions
    #: ``ainsert_jobs`` and ``afind_keys`` run on the store's own async connections (else the
    #: caller runs the sync methods in a thread)
    supports_async_insert: bool

    def session(self, *, deadline: float = 10.0) -> Session:
        """A worker's connections; each call answers within ``deadline`` seconds or fails."""
        ...

    def listener(self, channels: Iterable[str]) -> Listener: ...

    def explain(self, exc: BaseException) -> JoblineError | None:
        """What ``exc`` (or an error it was raised from: Django wraps its driver's) means to
        the people running jobline, when it is this database's state, not a bug:
        ``DatabaseLocked``, ``DatabaseReadOnly`` or ``StoreUnavailable`` with a message
        saying what to do; None for anything else."""
        ...

    # -- the caller's transaction -------------------------------------------------------
    def insert_jobs(
        self, connection: Any, rows: Iterable[NewJob]
    ) -> list[tuple[int, str | None]]: ...
    def find_keys(self, connection: Any, keys: Iterable[str]) -> dict[str, int]:
        """The ids of existing jobs with these idempotency keys."""
        ...

    def insert_unique(self, connection: Any, rows: Sequence[NewJob]) -> list[tuple[int, bool]]:
        """Enqueue rows with unique keys (``jobline.core.unique``): ``(job id, created)`` per
        row. The keys stay locked until the caller's transaction ends, so a concurrent
        enqueue of the same key waits and then finds this job."""
        ...

    def notify(self, connection: Any, channel: str) -> None: ...

    # -- the store's own transactions, from an event loop (``supports_async_insert``) -----
    async def ainsert_jobs(self, rows: Sequence[NewJob]) -> list[tuple[int, str | None]]:
        """``insert_jobs`` committed on a connection of the store's own, all or nothing."""
        ...

    async def afind_keys(self, keys: Iterable[str]) -> dict[str, int]: ...
    def now(self, connection: Any) -> datetime: ...
    def try_lock(self, connection: Any, key: int) -> bool:
        """Take a fleet-wide lock of maintenance work (pruning) without waiting; False when
        another process holds it. Held by the connection until ``unlock``."""
        ...

    def unlock(self, connection: Any, key: int) -> None: ...

    # job events (``jobline.store.outbox``)
    def take_events(self, connection: Any, limit: int) -> list[dict[str, Any]]:
        """Remove the oldest ``limit`` events from the outbox and return them, oldest first,
        in the caller's transaction (a rollback puts them back). Each is a dict of
        ``jobline.store.outbox.FIELDS`` with datetimes and outputs decoded."""
        ...

    # pipelines: the plans of jobline.core.pipelines.plan, executed here
    def lock_runs(self, connection: Any, ids: Sequence[int]) -> list[int]: ...
    def advance_runs(self, connection: Any, ids: Sequence[int]) -> Advanced: ...
    def start_run(
        self,
        connection: Any,
        run_id: int,
        spec: PipelineSpec,
        inputs: Any,
        trace_context: TraceContext | None = None,
    ) -> Advanced: ...

    # schedules
    def lock_for_write(self, connection: Any) -> None: ...
    def schedule_writes(self, connection: Any, *, durable: bool) -> None: ...
    def schedule_outlook(self, connection: Any) -> ScheduleOutlook: ...
    def advance_schedules(self, connection: Any, rows: Sequence[tuple[Any, ...]]) -> None: ...
    def link_jobs(self, connection: Any, links: Sequence[tuple[int, int]]) -> None: ...


def explain_chain(
    exc: BaseException, recognise: Callable[[BaseException], JoblineError | None]
) -> JoblineError | None:
    """``Store.explain`` for a driver whose ``recognise`` looks at one error: ``exc`` and the
    errors it was raised from, in turn; the store's own errors explain themselves."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (StoreUnavailable, DatabaseReadOnly)):
            return current
        if (explained := recognise(current)) is not None:
            return explained
        current = current.__cause__ or current.__context__
    return None


class QueueRulesCache:
    """Whether any queue has a concurrency limit or a rate, looked up at most once a
    ``ttl``: a claim without flow control then never takes the flow claim's lock. A rule
    set meanwhile is safe at once (the plain claim skips those queues' jobs) and served
    within ``ttl``."""

    def __init__(self, ttl: float = 1.0):
        self.ttl = ttl
        self._known = False
        self._checked = float("-inf")

    async def any(self, lookup: Callable[[], Awaitable[bool]]) -> bool:
        now = time.monotonic()
        if now - self._checked >= self.ttl:
            self._known = bool(await lookup())
            self._checked = now
        return self._known


def run_plan(connection: Any, plan: Plan[T]) -> T:
    """Run a plan on a DB-API connection with ``execute`` (sqlite3, psycopg), in its transaction."""
    rows: Any = None  # a generator starts with send(None)
    while True:
        try:
            sql, params = plan.send(rows)
        except StopIteration as done:
            return done.value
        cursor = connection.execute(sql, params)
        rows = cursor.fetchall() if cursor.description else []


async def arun_plan(connection: Any, plan: Plan[T]) -> T:
    """Run a plan on an async psycopg connection, in its transaction."""
    rows: Any = None  # a generator starts with send(None)
    while True:
        try:
            sql, params = plan.send(rows)
        except StopIteration as done:
            return done.value
        cursor = await connection.execute(sql, params)
        rows = await cursor.fetchall() if cursor.description else []


class SqlPipelines:
    """Pipeline plans run on the caller's DB-API connection with a driver's statements."""

    pipeline_sql: Dialect

    def lock_runs(self, connection: Any, ids: Sequence[int]) -> list[int]:
        return run_plan(connection, plan.lock_runs(self.pipeline_sql, ids))

    def advance_runs(self, connection: Any, ids: Sequence[int]) -> Advanced:
        return run_plan(connection, plan.advance_runs(self.pipeline_sql, ids))

    def start_run(
        self,
        connection: Any,
        run_id: int,
        spec: PipelineSpec,
        inputs: Any,
        trace_context: TraceContext | None = None,
    ) -> Advanced:
        return run_plan(
            connection, plan.start_run(self.pipeline_sql, run_id, spec, inputs, trace_context)
        )
