"""The worker loop: claim in batches, run concurrently, complete in batches, heartbeat.

Safety rests on one lease per worker: its heartbeat extends the lease of every job it runs.
When a worker dies its lease lapses and any other worker puts its jobs back in the queue
(counted as an attempt). A worker that cannot renew its lease in time stops its own jobs
first, so a job never runs twice at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from jobline.core.jobtypes import Registry, registry
from jobline.core.states import JobStatus, Outcome
from jobline.core.values import ClaimedJob, ClaimFilter, Completion, WorkerInfo
from jobline.exceptions import StoreUnavailable
from jobline.store import Session
from jobline.store.reconnect import Backoff
from jobline.worker import capture, resources
from jobline.worker.executor import SyncCall, failed, plain_sync_call, run_attempt
from jobline.worker.reports import JobReports, ReportLimits
from jobline.worker.stats import WorkerStats

log = logging.getLogger("jobline.worker")

#: Part of the lease after which a worker that could not renew it stops its jobs: the rest
#: covers clock drift between this host's monotonic clock and the database's.
SAFETY = 0.8


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerOptions:
    queues: tuple[str, ...] | None = None  #: None takes every queue
    only: tuple[str, ...] = ()  #: job types to take (empty: every registered type)
    exclude: tuple[str, ...] = ()  #: job types never to take
    tags: tuple[str, ...] = ()  #: capabilities this host offers (``requires`` of job types)
    concurrency: int = 100
    sync_threads: int = 16  #: threads for sync jobs
    claim_batch: int = 500
    lease: float = 30.0  #: seconds a heartbeat keeps this worker's jobs
    heartbeat: float = 5.0
    poll: float = 1.0  #: longest idle wait between claims without a wake-up
    grace: float = 30.0  #: seconds running jobs get to finish on shutdown
    max_jobs: int | None = None  #: stop after this many jobs (tests, benchmarks)
    run_for: float | None = None  #: stop after this many seconds
    until_idle: bool = False  #: stop once nothing is due and nothing runs (tests)
    reports: ReportLimits = field(default_factory=ReportLimits)  #: progress throttle, log caps
    capture_prints: bool = False  #: jobs' prints go to their logs too

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        if self.heartbeat >= self.lease:
            raise ValueError("heartbeat must be shorter than the lease")


class Worker:
    def __init__(
        self,
        store: Session,
        options: WorkerOptions = WorkerOptions(),
        *,
        types: Registry = registry,
        sync_call: SyncCall = plain_sync_call,
    ):
        self.store = store
        self.options = options
        self.types = types
        self.sync_call = sync_call
        self.id = uuid.uuid4().hex
        self.stats = WorkerStats()
        self.resources = resources.Resources()  #: shared by its jobs (HTTP client, producer)
        self.reports = JobReports(options.reports)  #: its jobs' progress and log lines
        self.processed = 0
        self._claimed = 0
        self._running: dict[int, asyncio.Task[None]] = {}
        self._held: set[int] = set()  #: claimed, and not yet written back or given up
        self._claims_uncertain = False  #: a claim failed: it may have taken jobs unheard of
        self._terminating: set[int] = set()  # asked to terminate: record as cancelled
        self._abandoned: set[int] = set()  # lease lost or shutdown: record nothing
        self._pending: list[Completion] = []
        self._flushing = 0
        self._flush_wanted = asyncio.Event()
        self._capacity = asyncio.Event()
        self._stopping = asyncio.Event()
        self._threads = ThreadPoolExecutor(options.sync_threads, thread_name_prefix="jobline-job")
        self._last_renewal = time.monotonic()
        self.registered = False  #: True once the worker's row (and lease) exists
        self._closing = False
        self._lost_lease = False  #: jobs were abandoned; take a new id before going on
        # One log line per outage and per kind of call, then one when it is over.
        self._claim_outage = Backoff("claims from the database", first=options.poll / 4)
        self._write_outage = Backoff("writing results to the database")
        self._beat_outage = Backoff("heartbeats to the database")

    # -- lifecycle -----------------------------------------------------------------------

    def claim_filter(self) -> ClaimFilter:
        names = [n for n in self.types.names() if n not in self.options.exclude]
        if self.options.only:
            unknown = sorted(set(self.options.only) - set(names))
            if unknown:
                raise ValueError(f"--only names unknown job types: {', '.join(unknown)}")
            names = [n for n in names if n in self.options.only]
        flows = [self.types.get(n).flow for n in names]
        return ClaimFilter(
            queues=self.options.queues,
            types=tuple(names),
            tags=self.options.tags,
            flow=any(f.limit or f.rate for f in flows),
            rate_window=max((f.rate.per for f in flows if f.rate), default=0.0),
        )

    def info(self) -> WorkerInfo:
        return WorkerInfo(
            id=self.id,
            hostname=socket.gethostname(),
            pid=os.getpid(),
            queues=self.options.queues,
            tags=self.options.tags,
            concurrency=self.options.concurrency,
        )

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def stop(self) -> None:
        """Stop claiming; running jobs get the grace period to finish."""
        self._stopping.set()
        self._capacity.set()

    async def run(self) -> int:
        """Work until stopped; returns how many jobs this worker finished."""
        where = self.claim_filter()
        if not await self._open_and_register():
            await self.store.close()
            return 0
        self._last_renewal = time.monotonic()
        self.registered = True
        log.info(
            "worker started id=%s queues=%s types=%d concurrency=%d",
            self.id,
            ",".join(self.options.queues or ["*"]),
            len(where.types),
            self.options.concurrency,
        )
        shared = resources.current.set(self.resources)  # seen by every job task made below
        self.reports.bind(asyncio.get_running_loop(), self._flush_wanted.set)
        capture.start(prints=self.options.capture_prints)
        flusher = asyncio.create_task(self._flush_loop(), name="jobline-flush")
        heart = asyncio.create_task(self._heartbeat_loop(), name="jobline-heartbeat")
        fence = asyncio.create_task(self._fence_loop(), name="jobline-fence")
        if self.options.run_for is not None:
            asyncio.get_running_loop().call_later(self.options.run_for, self.stop)
        try:
            await self.resources.make_ahead(where.types)  # so the first http job is on time too
            with contextlib.suppress(StoreUnavailable):  # each heartbeat rescues too
                await self.store.rescue_lost()
            await self._claim_loop(where)
            await self._drain()
        finally:
            heart.cancel()
            fence.cancel()
            self._closing = True  # the flusher ends once nothing is pending; never cut a write
            self._flush_wanted.set()
            await asyncio.gather(heart, fence, flusher, return_exceptions=True)
            await self.resources.aclose()
            resources.current.reset(shared)
            capture.stop(prints=self.options.capture_prints)
            with contextlib.suppress(Exception):
                await self.store.deregister_worker(self.id)
            await self.store.close()
            self._threads.shutdown(wait=False, cancel_futures=True)
            log.info("worker stopped id=%s processed=%d", self.id, self.processed)
        return self.processed

    async def _open_and_register(self) -> bool:
        """Open the store and register; while the database is locked or away, wait and try
        again (one log line per outage). False if stopped meanwhile."""
        outage = Backoff("starting the worker")
        opened = False
        while not self._stopping.is_set():
            try:
                if not opened:
                    await self.store.open()
                    opened = True
                await self.store.register_worker(self.info(), self.options.lease)
            except StoreUnavailable as exc:  # DatabaseLocked too; read-only is no wait
                self.id = uuid.uuid4().hex  # in case the register committed unheard of
                outage.note(exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), outage.next_delay())
                continue
            outage.succeeded()
            return True
        return False

    async def _drain(self) -> None:
        """Give running jobs the grace period, then put the rest back in the queue."""
        if self._running:
            log.info(
                "waiting up to %.0f s for %d running jobs", self.options.grace, len(self._running)
            )
            await asyncio.wait(list(self._running.values()), timeout=self.options.grace)
        left = list(self._running)
        if left:
            self._abandoned.update(left)
            for job_id in left:
                self._running[job_id].cancel()
            await asyncio.gather(*self._running.values(), return_exceptions=True)
            await self._flush_all()
            await self.store.put_back(self.id, left)
            self._held.difference_update(left)
            log.warning("put %d unfinished jobs back in the queue", len(left))

    # -- claiming ------------------------------------------------------------------------

    def _free_slots(self) -> int:
        # A finished job whose result is not yet written holds no slot, up to one
        # concurrency's worth of them: the next claim goes out at once and carries the
        # result (``_carried``: one round trip and one commit for both). Beyond that,
        # unwritten results hold back claims.
        unwritten = len(self._pending) + self._flushing
        busy = len(self._running) + max(0, unwritten - self.options.concurrency)
        free = self.options.concurrency - busy
        if self.options.max_jobs is not None:
            free = min(free, self.options.max_jobs - self._claimed)
        return min(free, self.options.claim_batch)

    async def _claim_loop(self, where: ClaimFilter) -> None:
        if not where.types:
            log.warning("no job types to run; is the worker's --only/--exclude right?")
        while not self._stopping.is_set():
            if self.options.max_jobs is not None and self._claimed >= self.options.max_jobs:
                return
            free = self._free_slots()
            if self._lost_lease:  # claim nothing until the heartbeat has a new lease
                await asyncio.sleep(self.options.heartbeat)
                continue
            if free <= 0:
                self._capacity.clear()
                await self._capacity.wait()
                continue
            started = time.perf_counter()
            owner = self.id
            done = self._carried()
            self._flushing += len(done)
            try:
                if self._claims_uncertain:
                    await self._put_back_unheard_of()
                jobs = await self.store.claim(owner, free, where, done=done)
            except Exception as exc:  # the database is away: say so once, try again later
                if done:  # the flusher writes them once the database is back
                    self._pending[:0] = done
                    self._flush_wanted.set()
                self._claims_uncertain = True
                await self._claim_outage.fail(exc)
                continue
            finally:
                self._flushing -= len(done)
            self._claim_outage.succeeded()
            self._written(done)
            self.stats.claim.observe(time.perf_counter() - started)
            if owner != self.id or self._lost_lease:  # the rescue gives these to others
                continue
            for job in jobs:
                self._start(job)
            if not jobs:
                # A flush in progress may enqueue pipeline steps: not idle yet.
                busy = self._running or self._pending or self._flushing
                if self.options.until_idle and not busy:
                    return
                await self._idle(where)

    def _carried(self) -> list[Completion]:
        """Pending completions the next claim writes in its own transaction (one commit for
        both). Not when their jobs' last reports wait: those are written first, by the
        flusher."""
        if self.reports.due:
            return []
        done, self._pending = self._pending, []
        return done

    async def _idle(self, where: ClaimFilter) -> None:
        """Wait for new jobs, the next delayed one's time, or ``poll`` seconds at most."""
        timeout = self.options.poll
        with contextlib.suppress(Exception):  # a failing database shows in the next claim
            due_in = await self.store.next_due_in(where)
            if due_in is not None:
                timeout = max(0.0, min(timeout, due_in))
        wait = asyncio.create_task(self.store.wait_for_jobs(timeout))
        stop = asyncio.create_task(self._stopping.wait())
        await asyncio.wait({wait, stop}, return_when=asyncio.FIRST_COMPLETED)
        for task in (wait, stop):
            task.cancel()

    async def _put_back_unheard_of(self) -> None:
        """Jobs a lost claim answer gave this worker are queued again; nothing else would:
        its lease is alive, so no rescue takes them."""
        unheard_of = [i for i in await self.store.running(self.id) if i not in self._held]
        if unheard_of:
            await self.store.put_back(self.id, unheard_of)
            log.warning("put back %d jobs claimed while the connection broke", len(unheard_of))
        self._claims_uncertain = False

    def _start(self, job: ClaimedJob) -> None:
        self._held.add(job.id)
        self._claimed += 1
        task = asyncio.create_task(self._run_one(job))
        self._running[job.id] = task

    async def _run_one(self, job: ClaimedJob) -> None:
        started = time.perf_counter()
        job_type = self.types.get(job.type)
        try:
            done = await run_attempt(
                job,
                job_type,
                threads=self._threads,
                sync_call=self.sync_call,
                worker_id=self.id,
                reporter=self.reports,
            )
        except asyncio.CancelledError:
            if job.id in self._abandoned:
                self._held.discard(job.id)
                return
            if job.id not in self._terminating:
                raise
            done = failed(job, job_type, Outcome.CANCELLED, "terminated on request", "")
        finally:
            self._running.pop(job.id, None)
            self._terminating.discard(job.id)
            self._capacity.set()
            self.reports.ended(job.id)  # its last progress and lines go before its completion
        self.stats.run.observe(time.perf_counter() - started)
        if job.flow:  # its completion frees a limit's slot: waiting workers look again
            done = dataclasses.replace(done, flow=True)
        if done.status is JobStatus.FAILED:
            log.warning(
                "job failed id=%s type=%s attempt=%d error=%s",
                job.id,
                job.type,
                job.attempt,
                done.error,
            )
        self._pending.append(done)
        self._flush_wanted.set()

    # -- completing ----------------------------------------------------------------------

    async def _flush_loop(self) -> None:
        while not self._closing:
            await self._flush_wanted.wait()
            self._flush_wanted.clear()
            await self._flush_all()
        await self._flush_all()

    async def _flush_all(self) -> None:
        """Write what running jobs reported and every pending completion; on a database error
        keep them and try again."""
        while self._pending or self.reports.due:
            batch, self._pending = self._pending, []
            # Taken after the batch: the last reports of its jobs are in, written before it.
            if self.reports.due and not await self._write_reports():
                self._pending[:0] = batch
                continue
            if not batch:
                continue
            self._flushing += len(batch)
            try:
                await self.store.complete(self.id, batch)
            except Exception as exc:
                # Kept and written once the database is back; a completion for a job taken
                # back meanwhile changes nothing there (it is run again, never twice at once).
                self._pending[:0] = batch
                await self._write_outage.fail(exc)
                continue
            finally:
                self._flushing -= len(batch)
                self._capacity.set()
            self._write_outage.succeeded()
            self._written(batch)

    def _written(self, batch: list[Completion]) -> None:
        self._held.difference_update(c.id for c in batch)
        self.processed += len(batch)
        if self.options.max_jobs is not None and self.processed >= self.options.max_jobs:
            self.stop()

    async def _write_reports(self) -> bool:
        reports = self.reports.take()
        if not reports:
            return True
        try:
            await self.store.write_reports(self.id, reports)
        except Exception as exc:
            self.reports.failed(reports)
            await self._write_outage.fail(exc)
            return False
        return True

    # -- heartbeat, terminate, lease recovery ---------------------------------------------

    async def _heartbeat_loop(self) -> None:
        control = self.store.control_event()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(control.wait(), self.options.heartbeat)
            control.clear()
            try:
                await self._beat()
            except Exception as exc:
                self._beat_outage.note(exc)
            else:
                self._beat_outage.succeeded()

    async def _fence_loop(self) -> None:
        """Stop every running job once the lease may have lapsed, whatever the connections
        are doing (a silent network never fails a call): by this host's monotonic clock,
        ``SAFETY`` of the lease after the last renewal was sent."""
        margin = self.options.lease * SAFETY
        while True:
            silent_for = time.monotonic() - self._last_renewal
            if silent_for > margin and not self._lost_lease:
                self._abandon(self._running, f"its lease was not renewed for {silent_for:.1f} s")
                self._lost_lease = True
            await asyncio.sleep(max(0.05, min(self.options.heartbeat, margin - silent_for, 1.0)))

    async def _beat(self) -> None:
        sent = time.monotonic()
        if self._lost_lease:
            await self._new_identity()
        reply = await self.store.heartbeat(
            self.id,
            self.options.lease,
            running=len(self._running),
            processed=self.processed,
            stats=json.dumps(self.stats.as_dict()),
        )
        if not reply.alive:
            self._abandon(self._running, "its lease expired and its jobs were taken back")
            await self._new_identity()
        self._last_renewal = sent
        self.terminate(reply.cancel)
        rescued = await self.store.rescue_lost()
        if rescued:
            log.warning("put back %d jobs of lost workers: %s", len(rescued), rescued[:20])

    async def _new_identity(self) -> None:
        """Start over as a new worker: jobs held under the old id are left to the rescue."""
        self._abandon(self._running, "the worker takes a new identity")
        self.id = uuid.uuid4().hex
        await self.store.register_worker(self.info(), self.options.lease)
        self._lost_lease = False
        log.warning("worker re-registered as id=%s", self.id)

    def terminate(self, ids: Iterable[int]) -> None:
        """Cancel running jobs; they are recorded as cancelled."""
        for job_id in ids:
            task = self._running.get(job_id)
            if task is not None and job_id not in self._terminating:
                self._terminating.add(job_id)
                task.cancel()

    def _abandon(self, ids: Iterable[int], why: str) -> None:
        ids = [i for i in ids if i not in self._abandoned]
        if ids:
            log.error("stopping %d running jobs: %s", len(ids), why)
        for job_id in ids:
            self._abandoned.add(job_id)
            self._running[job_id].cancel()
