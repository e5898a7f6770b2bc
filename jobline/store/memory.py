"""An in-memory store: the queue without a database, for tests (yours and jobline's).

It keeps the same promises as the database drivers (the contract suite in
``tests/contract`` checks them on all three): claims in priority order, only by a worker
with a live lease; completions only by the job's owner; idempotency keys; terminate,
pause and resume; the rescue of a lost worker's jobs. Time comes from ``clock`` (seconds,
``time.time`` by default), so a test can move it forward instead of sleeping.

What it does not do: transactions (a write is visible at once), pipelines and schedules
(they live in the database's models); those raise :class:`Unsupported`.

Job events (``take_events``) are recorded only while ``subscribed`` is true: the database's
triggers likewise write none while no subscription is active.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
import weakref
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from jobline.core.events import DELIVER_TYPE, KIND_OF_STATUS
from jobline.core.flow import FlowKeys, QueueRules
from jobline.core.states import JobStatus, after_lost
from jobline.core.tracecontext import TraceContext
from jobline.core.unique import Match, plan_unique, unique_key
from jobline.core.values import (
    ClaimedJob,
    ClaimFilter,
    Completion,
    HeartbeatReply,
    LogLine,
    NewJob,
    Reports,
    ScheduleOutlook,
    WorkerInfo,
)
from jobline.exceptions import JoblineError
from jobline.store.port import CONTROL, JOBS, explain_chain


class Unsupported(JoblineError):
    """The memory store has no pipelines and no schedules: test those on SQLite."""


@dataclass(slots=True, kw_only=True)
class MemoryJob:
    """A job as the memory store holds it (the columns of ``jobline_job`` that matter)."""

    id: int
    type: str
    queue: str
    priority: int
    inputs: Any
    max_attempts: int
    timeout: float | None
    requires: tuple[str, ...]
    idempotency_key: str | None
    run_at: float
    created_at: float
    status: JobStatus = JobStatus.QUEUED
    attempts: int = 0
    outputs: Any = None
    error: str = ""
    traceback: str = ""
    worker_id: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    cancel_requested: bool = False
    dispatch: str = ""
    flow: FlowKeys | None = None
    progress: float | None = None
    progress_message: str = ""
    log_lines: int = 0
    trace_context: TraceContext | None = None


@dataclass(slots=True)
class _Worker:
    info: WorkerInfo
    lease_expires_at: float
    stats: dict[str, Any] = field(default_factory=dict)


class MemoryStore:
    """The queue in this process's memory; thread-safe (enqueue from any thread)."""

    name = "memory"
    supports_listen = True
    supports_skip_locked = True
    supports_returning = True
    supports_pipelines = False
    supports_async_insert = True

    def __init__(self, *, clock: Callable[[], float] = time.time):
        self.clock = clock
        self.jobs: dict[int, MemoryJob] = {}
        self.workers: dict[str, _Worker] = {}
        self.paused: set[str] = set()
        self.locks: set[int] = set()  #: maintenance locks held (``try_lock``)
        self.queue_rules: dict[str, QueueRules] = {}
        self.log_lines: dict[tuple[int, int, int], LogLine] = {}  #: by job, attempt, line
        self.subscribed = False  #: record job events, as the triggers do with a subscription
        self.outbox: list[dict[str, Any]] = []
        self._ids = itertools.count(1)
        self._event_ids = itertools.count(1)
        self._lock = threading.Lock()
        self._listeners: weakref.WeakSet[MemoryListener] = weakref.WeakSet()

    # -- reading, for tests ---------------------------------------------------------------

    def job(self, job_id: int) -> MemoryJob:
        return self.jobs[job_id]

    def logs(self, job_id: int) -> list[LogLine]:
        """A job's stored log lines, by attempt and line number."""
        return [self.log_lines[k] for k in sorted(k for k in self.log_lines if k[0] == job_id)]

    def count(self, status: JobStatus | str | None = None, *, type: str | None = None) -> int:
        with self._lock:
            return sum(
                1
                for j in self.jobs.values()
                if (status is None or j.status == status) and (type is None or j.type == type)
            )

    # -- the caller's side ----------------------------------------------------------------

    def session(self, *, deadline: float = 10.0) -> MemorySession:
        """Memory always answers at once: ``deadline`` is accepted for the port's sake."""
        return MemorySession(self)

    def listener(self, channels: Iterable[str]) -> MemoryListener:
        found = MemoryListener(channels)
        self._listeners.add(found)
        return found

    def insert_jobs(self, connection: Any, rows: Iterable[NewJob]) -> list[tuple[int, str | None]]:
        with self._lock:
            inserted = self._insert(rows)
        if inserted:
            self.notify(connection, JOBS)
        return inserted

    def _insert(self, rows: Iterable[NewJob]) -> list[tuple[int, str | None]]:
        """Insert rows; the caller holds the lock."""
        now = self.clock()
        inserted = []
        keys = {j.idempotency_key for j in self.jobs.values() if j.idempotency_key}
        for r in rows:
            if r.idempotency_key is not None and r.idempotency_key in keys:
                continue
            job = MemoryJob(
                id=next(self._ids),
                type=r.type,
                queue=r.queue,
                priority=r.priority,
                inputs=json.loads(json.dumps(r.inputs)),  # stored as JSON, like a database
                max_attempts=r.max_attempts,
                timeout=r.timeout,
                requires=tuple(r.requires),
                idempotency_key=r.idempotency_key,
                run_at=now + max(0.0, r.delay),
                created_at=now,
                flow=r.flow,
                trace_context=r.trace_context,
            )
            self.jobs[job.id] = job
            self._record(job, "created")
            if job.idempotency_key is not None:
                keys.add(job.idempotency_key)
            inserted.append((job.id, job.idempotency_key))
        return inserted

    def insert_unique(self, connection: Any, rows: Sequence[NewJob]) -> list[tuple[int, bool]]:
        with self._lock:
            now = self.clock()
            rules = {unique_key(r): r.flow for r in rows}
            matches: dict[str, Match] = {}
            for job in sorted(self.jobs.values(), key=lambda j: (j.created_at, j.id)):
                rule = rules.get(job.flow.unique_key) if job.flow else None
                if (
                    rule is not None
                    and job.status.value in rule.unique_states
                    and job.created_at > now - (rule.unique_seconds or 0.0)
                ):
                    matches[job.flow.unique_key] = Match(job.id, job.status.value)  # the newest
            plan = plan_unique(rows, matches)
            for job_id, r in plan.replace:
                job = self.jobs[job_id]
                job.inputs = json.loads(json.dumps(r.inputs))
                job.run_at, job.priority, job.flow = now + max(0.0, r.delay), r.priority, r.flow
            inserted = self._insert(plan.insert)
        if inserted:
            self.notify(connection, JOBS)
        return plan.answers(inserted)

    async def ainsert_jobs(self, rows: Sequence[NewJob]) -> list[tuple[int, str | None]]:
        return self.insert_jobs(None, rows)

    async def afind_keys(self, keys: Iterable[str]) -> dict[str, int]:
        return self.find_keys(None, keys)

    def find_keys(self, connection: Any, keys: Iterable[str]) -> dict[str, int]:
        wanted = set(keys)
        with self._lock:
            return {
                j.idempotency_key: j.id for j in self.jobs.values() if j.idempotency_key in wanted
            }

    def notify(self, connection: Any, channel: str) -> None:
        for listener in list(self._listeners):
            listener.wake(channel)

    def now(self, connection: Any) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    def explain(self, exc: BaseException) -> JoblineError | None:
        """Memory is never locked nor read-only: only the store errors explain themselves."""
        return explain_chain(exc, lambda _: None)

    def try_lock(self, connection: Any, key: int) -> bool:
        with self._lock:
            if key in self.locks:
                return False
            self.locks.add(key)
            return True

    def unlock(self, connection: Any, key: int) -> None:
        with self._lock:
            self.locks.discard(key)

    def take_events(self, connection: Any, limit: int) -> list[dict[str, Any]]:
        with self._lock:
            taken, self.outbox = self.outbox[:limit], self.outbox[limit:]
        return taken

    def _record(self, job: MemoryJob, kind: str | None = None) -> None:
        """Record an event of ``job``'s new status (or ``kind``), as the triggers do; the
        caller holds the lock."""
        kind = kind or KIND_OF_STATUS.get(job.status.value)
        if not self.subscribed or kind is None or job.type == DELIVER_TYPE:
            return

        def when(t: float | None) -> datetime | None:
            return None if t is None else datetime.fromtimestamp(t, UTC)

        self.outbox.append(
            {
                "id": next(self._event_ids),
                "kind": kind,
                "job_id": job.id,
                "type": job.type,
                "queue": job.queue,
                "status": job.status.value,
                "attempts": job.attempts,
                "schedule_id": None,
                "outputs": job.outputs,
                "error": job.error,
                "created_at": when(job.created_at),
                "started_at": when(job.started_at),
                "finished_at": when(job.finished_at),
                "at": when(self.clock()),
            }
        )

    # -- people's actions (the database stores do these through the models) ---------------

    def terminate(self, ids: Iterable[int]) -> int:
        """Cancel queued jobs now; ask the workers running the others to stop them."""
        changed = 0
        with self._lock:
            for job_id in ids:
                job = self.jobs.get(job_id)
                if job is None:
                    continue
                if job.status is JobStatus.QUEUED:
                    job.status, job.error = JobStatus.CANCELLED, "terminated on request"
                    job.finished_at = self.clock()
                    self._record(job)
                    changed += 1
                elif job.status is JobStatus.RUNNING:
                    job.cancel_requested = True
                    changed += 1
        self.notify(None, CONTROL)
        return changed

    def pause(self, queue: str) -> None:
        self.paused.add(queue)

    def resume(self, queue: str) -> None:
        self.paused.discard(queue)
        self.notify(None, JOBS)

    def set_queue_rules(self, rules: QueueRules) -> None:
        """A queue's concurrency limit and rate (None for both: no flow control)."""
        with self._lock:
            self.queue_rules[rules.name] = rules
        self.notify(None, JOBS)

    # -- not here --------------------------------------------------------------------------

    def _unsupported(self, what: str) -> Unsupported:
        return Unsupported(f"the memory store has no {what}; test them on SQLite")

    def lock_runs(self, connection: Any, ids: Sequence[int]) -> list[int]:
        raise self._unsupported("pipelines")

    def advance_runs(self, connection: Any, ids: Sequence[int]) -> Any:
        raise self._unsupported("pipelines")

    def start_run(
        self, connection: Any, run_id: int, spec: Any, inputs: Any, trace_context: Any = None
    ) -> Any:
        raise self._unsupported("pipelines")

    def lock_for_write(self, connection: Any) -> None:
        raise self._unsupported("schedules")

    def schedule_writes(self, connection: Any, *, durable: bool) -> None:
        raise self._unsupported("schedules")

    def schedule_outlook(self, connection: Any) -> ScheduleOutlook:
        raise self._unsupported("schedules")

    def advance_schedules(self, connection: Any, rows: Sequence[tuple[Any, ...]]) -> None:
        raise self._unsupported("schedules")

    def link_jobs(self, connection: Any, links: Sequence[tuple[int, int]]) -> None:
        raise self._unsupported("schedules")

    # -- the worker's side (MemorySession calls these under the lock) ----------------------

    def _alive(self, worker_id: str, now: float) -> bool:
        worker = self.workers.get(worker_id)
        return worker is not None and worker.lease_expires_at > now

    def _flowing(self, job: MemoryJob) -> bool:
        """Under a limit or a rate: its own, or its queue's."""
        rules = self.queue_rules.get(job.queue)
        return (job.flow is not None and job.flow.claim_key is not None) or bool(
            rules and rules.active
        )

    def _flow_pick(self, ready: list[MemoryJob], limit: int, now: float) -> list[MemoryJob]:
        """The flow-controlled jobs that may start now, taking turns by key, each within
        its limit's, its rate's and its queue's budget."""
        turns: Counter[str | None] = Counter()
        order = []
        for job in ready:
            key = job.flow.claim_key if job.flow else None
            turns[key] += 1
            order.append((-job.priority, turns[key], job.run_at, job.id, job))
        budget = _Budget(self, now)
        picked: list[MemoryJob] = []
        for *_, job in sorted(order, key=lambda o: o[:4]):
            if len(picked) < limit and budget.take(job):
                picked.append(job)
        return picked

    def _claimable(self, job: MemoryJob, where: ClaimFilter, now: float) -> bool:
        return (
            job.status is JobStatus.QUEUED
            and job.run_at <= now
            and (where.queues is None or job.queue in where.queues)
            and job.type in where.types
            and set(job.requires) <= set(where.tags)
            and job.queue not in self.paused
        )


class _Budget:
    """What one claim may still start: running jobs and starts in their rate windows, per
    limit key, rate key and queue, counted as jobs are taken."""

    def __init__(self, store: MemoryStore, now: float):
        self.store, self.now = store, now
        running = [j for j in store.jobs.values() if j.status is JobStatus.RUNNING]
        self.limits = Counter(j.flow.limit_key for j in running if j.flow and j.flow.limit_key)
        self.queues = Counter(j.queue for j in running)
        self.rates: dict[str, int] = {}
        self.queue_rates: dict[str, int] = {}

    def _starts(self, match: Callable[[MemoryJob], bool], per: float) -> int:
        since = self.now - per
        return sum(
            1
            for j in self.store.jobs.values()
            if j.started_at is not None and j.started_at > since and match(j)
        )

    def take(self, job: MemoryJob) -> bool:
        """Count the job in if every budget it is under has room; False if one has none."""
        f, q = job.flow, self.store.queue_rules.get(job.queue)
        if f and f.limit_key and self.limits[f.limit_key] >= (f.limit_n or 0):
            return False
        if f and f.rate_key:
            key = f.rate_key
            if key not in self.rates:
                self.rates[key] = self._starts(
                    lambda j: j.flow is not None and j.flow.rate_key == key, f.rate_per or 1.0
                )
            if self.rates[key] >= (f.rate_n or 0):
                return False
        if q and q.limit is not None and self.queues[job.queue] >= q.limit:
            return False
        if q and q.rate is not None:
            if job.queue not in self.queue_rates:
                self.queue_rates[job.queue] = self._starts(lambda j: j.queue == q.name, q.per)
            if self.queue_rates[job.queue] >= q.rate:
                return False
            self.queue_rates[job.queue] += 1
        if f and f.limit_key:
            self.limits[f.limit_key] += 1
        if f and f.rate_key:
            self.rates[f.rate_key] += 1
        self.queues[job.queue] += 1
        return True


class MemoryListener:
    """Events set by the store's notifications, from whichever thread made them."""

    def __init__(self, channels: Iterable[str]):
        self._events = {channel: asyncio.Event() for channel in channels}
        self._loop: asyncio.AbstractEventLoop | None = None

    def event(self, channel: str) -> asyncio.Event:
        return self._events[channel]

    async def open(self) -> None:
        self._loop = asyncio.get_running_loop()

    async def close(self) -> None:
        self._loop = None

    def wake(self, channel: str) -> None:
        event, loop = self._events.get(channel), self._loop
        if event is None or loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            event.set()
        else:
            loop.call_soon_threadsafe(event.set)


class MemorySession:
    """A worker's view of a :class:`MemoryStore`."""

    def __init__(self, store: MemoryStore):
        self.store = store
        self._listener = store.listener((JOBS, CONTROL))

    async def open(self) -> None:
        await self._listener.open()

    async def close(self) -> None:
        await self._listener.close()

    async def register_worker(self, info: WorkerInfo, lease: float) -> None:
        store = self.store
        with store._lock:
            store.workers[info.id] = _Worker(info, store.clock() + lease)

    async def heartbeat(
        self, worker_id: str, lease: float, *, running: int, processed: int, stats: str
    ) -> HeartbeatReply:
        store = self.store
        with store._lock:
            now = store.clock()
            if not store._alive(worker_id, now):
                return HeartbeatReply(alive=False)
            worker = store.workers[worker_id]
            worker.lease_expires_at = now + lease
            worker.stats = {"running": running, "processed": processed, **json.loads(stats)}
            cancel = [
                j.id
                for j in store.jobs.values()
                if j.worker_id == worker_id and j.status is JobStatus.RUNNING and j.cancel_requested
            ]
        return HeartbeatReply(alive=True, cancel=cancel)

    async def deregister_worker(self, worker_id: str) -> None:
        with self.store._lock:
            self.store.workers.pop(worker_id, None)

    async def claim(
        self, worker_id: str, limit: int, where: ClaimFilter, *, done: Sequence[Completion] = ()
    ) -> list[ClaimedJob]:
        if done:
            await self.complete(worker_id, list(done))
        store = self.store
        self._listener.event(JOBS).clear()
        with store._lock:
            now = store.clock()
            if not store._alive(worker_id, now):
                return []
            ready = [j for j in store.jobs.values() if store._claimable(j, where, now)]
            ready.sort(key=lambda j: (-j.priority, j.run_at, j.id))
            flowing = [j for j in ready if store._flowing(j)]
            picked = store._flow_pick(flowing, limit, now)
            plain = [j for j in ready if not store._flowing(j)]
            claimed = []
            for job in picked + plain[: limit - len(picked)]:
                job.status, job.worker_id = JobStatus.RUNNING, worker_id
                job.attempts += 1
                job.started_at = now
                store._record(job)
                claimed.append(
                    ClaimedJob(
                        id=job.id,
                        type=job.type,
                        queue=job.queue,
                        inputs=json.loads(json.dumps(job.inputs)),
                        attempt=job.attempts,
                        max_attempts=job.max_attempts,
                        timeout=job.timeout,
                        created_at=datetime.fromtimestamp(job.created_at, UTC),
                        flow=store._flowing(job),
                        trace_context=job.trace_context,
                    )
                )
        return claimed

    async def complete(self, worker_id: str, done: list[Completion]) -> None:
        store = self.store
        with store._lock:
            now = store.clock()
            for c in done:
                job = store.jobs.get(c.id)
                if job is None or job.worker_id != worker_id or job.status is not JobStatus.RUNNING:
                    continue  # taken back from a lost worker: this result is not ours to write
                job.status, job.worker_id = c.status, None
                job.outputs = None if c.outputs is None else json.loads(c.outputs)
                job.error, job.traceback = c.error, c.traceback
                if c.dispatch is not None:
                    job.dispatch = c.dispatch
                if c.status is JobStatus.QUEUED:
                    job.run_at, job.finished_at = now + c.retry_in, None
                else:
                    job.finished_at = now
                store._record(job)
        if any(c.flow for c in done):  # limits' slots are free: waiting workers look again
            store.notify(None, JOBS)

    async def write_reports(self, worker_id: str, reports: Reports) -> None:
        store = self.store
        with store._lock:
            for line in reports.lines:
                store.log_lines.setdefault((line.job_id, line.attempt, line.seq), line)
            for trim in reports.trims:
                for key in [k for k in store.log_lines if k[:2] == (trim.job_id, trim.attempt)]:
                    if key[2] < trim.keep_from:
                        del store.log_lines[key]
            for job_id, fraction, message, lines in reports.job_updates():
                job = store.jobs.get(job_id)
                if job is None or job.worker_id != worker_id or job.status is not JobStatus.RUNNING:
                    continue
                if fraction is not None:
                    job.progress, job.progress_message = fraction, message or ""
                if lines is not None:
                    job.log_lines = lines

    async def put_back(self, worker_id: str, ids: list[int]) -> None:
        store = self.store
        with store._lock:
            now = store.clock()
            for job_id in ids:
                job = store.jobs.get(job_id)
                if job and job.worker_id == worker_id and job.status is JobStatus.RUNNING:
                    job.status, job.worker_id, job.run_at = JobStatus.QUEUED, None, now
                    job.attempts -= 1
        store.notify(None, JOBS)

    async def running(self, worker_id: str) -> list[int]:
        with self.store._lock:
            return [
                j.id
                for j in self.store.jobs.values()
                if j.worker_id == worker_id and j.status is JobStatus.RUNNING
            ]

    async def rescue_lost(self) -> list[int]:
        store = self.store
        with store._lock:
            now = store.clock()
            rescued = []
            for job in store.jobs.values():
                if job.status is not JobStatus.RUNNING:
                    continue
                if job.worker_id is not None and store._alive(job.worker_id, now):
                    continue
                job.status = after_lost(
                    attempt=job.attempts,
                    max_attempts=job.max_attempts,
                    cancel_requested=job.cancel_requested,
                )
                job.error = (
                    f"worker lost: its lease expired while attempt {job.attempts} was running"
                )
                job.worker_id, job.run_at = None, now
                job.finished_at = None if job.status is JobStatus.QUEUED else now
                store._record(job)
                rescued.append(job.id)
            for worker_id in [
                w for w, seen in store.workers.items() if seen.lease_expires_at <= now
            ]:
                del store.workers[worker_id]
        return rescued

    async def next_due_in(self, where: ClaimFilter) -> float | None:
        store = self.store
        with store._lock:
            now = store.clock()
            due = [
                j.run_at
                for j in store.jobs.values()
                if j.status is JobStatus.QUEUED
                and j.run_at > now
                and (where.queues is None or j.queue in where.queues)
                and j.type in where.types
            ]
            if where.rate_window > 0:  # a rate's window opens: jobs held by it may start
                due += [
                    j.started_at + j.flow.rate_per
                    for j in store.jobs.values()
                    if j.flow is not None
                    and j.flow.rate_key is not None
                    and j.flow.rate_per is not None
                    and j.started_at is not None
                    and j.type in where.types
                    and j.started_at + j.flow.rate_per > now
                ]
        return min(due) - now if due else None

    async def wait_for_jobs(self, timeout: float) -> None:
        try:
            await asyncio.wait_for(self._listener.event(JOBS).wait(), timeout)
        except TimeoutError:
            pass

    def control_event(self) -> asyncio.Event:
        return self._listener.event(CONTROL)
