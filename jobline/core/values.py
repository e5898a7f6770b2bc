"""The values passed between the worker, the services and the store's drivers."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from typing import Any, TypeVar

from jobline.core.flow import FlowKeys
from jobline.core.states import JobStatus
from jobline.core.tracecontext import TraceContext

T = TypeVar("T")


@dataclass(frozen=True, slots=True, kw_only=True)
class NewJob:
    """One row to insert; ``inputs`` is JSON data, already validated."""

    type: str
    queue: str
    priority: int
    inputs: Any
    max_attempts: int
    timeout: float | None
    requires: tuple[str, ...]
    idempotency_key: str | None
    delay: float  #: seconds from now (the database's now) until it may run
    pipeline_run_id: int | None = None  #: the pipeline run this job is a step of
    pipeline_step: str | None = None
    pipeline_index: int | None = None  #: the item of a fan-out (0 for a plain step)
    flow: FlowKeys | None = None  #: limit, rate and unique keys (None: the job has none)
    #: the enqueueing span's W3C context, which the job's run continues (None: not traced)
    trace_context: TraceContext | None = None


@dataclass(slots=True, kw_only=True)
class ClaimedJob:
    """A job a worker has claimed; ``attempt`` counts this attempt (1 for the first)."""

    id: int
    type: str
    queue: str
    inputs: Any
    attempt: int
    max_attempts: int
    timeout: float | None
    pipeline_run_id: int | None = None  #: set for a pipeline's step: completing it advances the run
    created_at: datetime | None = None
    schedule: str | None = None  #: the name of the schedule that fired it
    flow: bool = False  #: held a limit's slot: its completion wakes waiting workers
    trace_context: TraceContext | None = None  #: stored at enqueue: the run's trace parent


@dataclass(frozen=True, slots=True, kw_only=True)
class ClaimFilter:
    """What a worker may claim. ``queues=None`` means every queue."""

    queues: tuple[str, ...] | None
    types: tuple[str, ...]
    tags: tuple[str, ...] = ()
    #: some of the types have a limit or a rate: the claim takes their turns too
    flow: bool = False
    rate_window: float = 0.0  #: the longest rate window of the types, in seconds


@dataclass(frozen=True, slots=True, kw_only=True)
class Completion:
    """The end of one attempt, to be written in a batch."""

    id: int
    status: JobStatus
    outputs: str | None = None  #: JSON text
    error: str = ""
    traceback: str = ""
    retry_in: float = 0.0  #: seconds until the next attempt, when requeued
    pipeline_run_id: int | None = None  #: the job's pipeline run, advanced in the same transaction
    dispatch: str | None = None  #: "delivered" when an executor elsewhere has the work now
    flow: bool = False  #: the job held a limit's slot: others waiting for it may start now


@dataclass(frozen=True, slots=True, kw_only=True)
class ProgressReport:
    """A running job's latest progress (``jobline.current_job().progress``)."""

    job_id: int
    fraction: float  #: from 0 to 1
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class LogLine:
    """A line a running job logged, numbered within its attempt from 1."""

    job_id: int
    attempt: int
    seq: int
    level: str  #: the logging level's name (``INFO``), ``PRINT`` for a captured print
    text: str  #: already masked
    created: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class LogTrim:
    """An attempt's log went over its cap: its stored lines numbered below ``keep_from`` go."""

    job_id: int
    attempt: int
    keep_from: int


@dataclass(slots=True, kw_only=True)
class Reports:
    """What running jobs reported since the worker's last write of them, written in one go
    (``Session.write_reports``): progress and log lines only apply while the job is still
    running under that worker, except the lines, which belong to their attempt whatever."""

    progress: list[ProgressReport] = field(default_factory=list)
    lines: list[LogLine] = field(default_factory=list)
    trims: list[LogTrim] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.progress or self.lines or self.trims)

    def job_updates(self) -> list[tuple[int, float | None, str | None, int | None]]:
        """Per job: ``(id, fraction, message, log_lines)`` for its row, None where nothing
        new was reported (``log_lines``: the last line number of its latest attempt)."""
        rows: dict[int, list[Any]] = {}
        for p in self.progress:
            rows[p.job_id] = [p.job_id, p.fraction, p.message, None]
        last: dict[int, tuple[int, int]] = {}
        for line in self.lines:
            last[line.job_id] = max(last.get(line.job_id, (0, 0)), (line.attempt, line.seq))
        for job_id, (_, seq) in last.items():
            rows.setdefault(job_id, [job_id, None, None, None])[3] = seq
        return [tuple(row) for row in rows.values()]  # type: ignore[misc]

    def merged(self, newer: Reports) -> Reports:
        """These reports followed by ``newer`` ones (a write that failed, then more)."""
        latest = {p.job_id: p for p in [*self.progress, *newer.progress]}
        return Reports(
            progress=list(latest.values()),
            lines=[*self.lines, *newer.lines],
            trims=[*self.trims, *newer.trims],
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerInfo:
    id: str
    hostname: str
    pid: int
    queues: tuple[str, ...] | None
    tags: tuple[str, ...]
    concurrency: int


@dataclass(slots=True, kw_only=True)
class HeartbeatReply:
    alive: bool  #: False when the worker's lease had expired and its jobs were taken back
    cancel: list[int] = field(default_factory=list)  #: running jobs asked to terminate


@dataclass(frozen=True, slots=True)
class ScheduleOutlook:
    """What an idle scheduler needs to know, in one read."""

    now: datetime  #: by the database's clock where it has one
    next_due: datetime | None  #: the earliest pending run of an active schedule
    waiting: bool  #: some schedules wait for their job to finish
    rearm: bool  #: and some of those jobs have finished


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Lists of up to ``size`` items, consuming ``items`` lazily (itertools.batched is 3.12+)."""
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk
