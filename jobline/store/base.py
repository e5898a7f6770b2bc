"""The store's vocabulary: values passed between the worker and the database drivers."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from typing import Any, Protocol, TypeVar

from jobline.core.states import JobStatus

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


@dataclass(frozen=True, slots=True, kw_only=True)
class ClaimFilter:
    """What a worker may claim. ``queues=None`` means every queue."""

    queues: tuple[str, ...] | None
    types: tuple[str, ...]
    tags: tuple[str, ...] = ()


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


class Store(Protocol):
    """The worker's side of a database. Drivers declare ``supports_listen``."""

    supports_listen: bool

    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def register_worker(self, info: WorkerInfo, lease: float) -> None: ...
    async def heartbeat(
        self, worker_id: str, lease: float, *, running: int, processed: int, stats: str
    ) -> HeartbeatReply: ...
    async def deregister_worker(self, worker_id: str) -> None: ...
    async def claim(self, worker_id: str, limit: int, where: ClaimFilter) -> list[ClaimedJob]: ...
    async def complete(self, worker_id: str, done: list[Completion]) -> None: ...
    async def put_back(self, worker_id: str, ids: list[int]) -> None: ...
    async def rescue_lost(self) -> list[int]: ...
    async def next_due_in(self, where: ClaimFilter) -> float | None: ...
    async def wait_for_jobs(self, timeout: float) -> None: ...
    def control_event(self) -> Any: ...


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Lists of up to ``size`` items, consuming ``items`` lazily (itertools.batched is 3.12+)."""
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def utc_text(dt: datetime) -> str:
    """A UTC datetime as SQLite text, in the format Django writes (sortable as text)."""
    return dt.strftime("%Y-%m-%d %H:%M:%S.%f")
