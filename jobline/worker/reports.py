"""What a worker's running jobs report: their progress and the lines they log.

One :class:`JobReports` per worker is the ``reporter`` of every job it runs
(``jobline.current_job().progress`` and the log capture of ``jobline.worker.capture`` call
it, from the event loop or from a sync job's thread). It keeps one
:class:`~jobline.core.progress.ProgressState` and one :class:`~jobline.core.progress.LogTail`
per running attempt and asks the worker for a write when one is due; the worker then takes
everything with :meth:`take` and writes it with its other buffered writes. A job that
reports nothing costs nothing here.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from jobline.core.jobtypes import JobContext
from jobline.core.progress import LogTail, ProgressState
from jobline.core.values import LogLine, LogTrim, ProgressReport, Reports
from jobline.redact import masked_log_text, storable


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportLimits:
    interval: float = 0.5  #: at most one progress write per job per this many seconds
    max_lines: int = 1000  #: lines kept per attempt (the tail)
    max_bytes: int = 262_144  #: bytes of text kept per attempt (the tail)


class JobReports:
    def __init__(
        self, limits: ReportLimits = ReportLimits(), *, clock: Callable[[], float] = time.monotonic
    ):
        self.limits = limits
        self._clock = clock
        self._progress: dict[int, ProgressState] = {}
        self._logs: dict[int, tuple[int, LogTail]] = {}  #: job id -> (attempt, its tail)
        self._ended: set[int] = set()  #: attempts over: dropped once their reports are taken
        self._failed: Reports | None = None  #: a write that did not go through, to try again
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: Callable[[], None] = lambda: None
        self.due = False  #: something waits to be written

    def bind(self, loop: asyncio.AbstractEventLoop, wake: Callable[[], None]) -> None:
        """Ask ``wake`` (on ``loop``) for writes."""
        self._loop, self._wake = loop, wake

    # -- from running jobs (any thread) ----------------------------------------------------

    def progress(self, job: JobContext, fraction: float, message: str) -> None:
        state = self._progress.get(job.id)
        if state is None:
            state = self._progress.setdefault(job.id, ProgressState(self.limits.interval))
        delay = state.report(fraction, message, self._clock())
        if delay is not None:
            self._ask(delay)

    def log(self, job: JobContext, level: str, text: str, created: float) -> None:
        entry = self._logs.get(job.id)
        if entry is None or entry[0] != job.attempt:
            entry = (job.attempt, LogTail(self.limits.max_lines, self.limits.max_bytes))
            self._logs[job.id] = entry
        if entry[1].add(level, text, created):  # the first line waiting: write it in a while
            self._ask(self.limits.interval)

    def _ask(self, delay: float) -> None:
        if self._loop is not None:  # thread-safe, from a sync job's thread too
            self._loop.call_soon_threadsafe(self._loop.call_later, delay, self._due)

    def _due(self) -> None:
        self.due = True
        self._wake()

    # -- from the worker (its event loop) -------------------------------------------------

    def ended(self, job_id: int) -> None:
        """The attempt is over: its last reports go with the next write (before its
        completion's), then it is forgotten."""
        if job_id in self._progress or job_id in self._logs:
            self._ended.add(job_id)
            self.due = True

    def take(self) -> Reports:
        """Everything waiting to be written, masked; the attempts that ended are forgotten."""
        self.due = False
        now = self._clock()
        out = Reports()
        for job_id, state in list(self._progress.items()):
            if (latest := state.take(now)) is not None:
                fraction, message = latest
                out.progress.append(
                    ProgressReport(job_id=job_id, fraction=fraction, message=_shown(message))
                )
        for job_id, (attempt, tail) in list(self._logs.items()):
            lines, keep_from = tail.take()
            out.lines += [
                LogLine(
                    job_id=job_id,
                    attempt=attempt,
                    seq=line.seq,
                    level=line.level,
                    text=_shown(line.text),
                    created=datetime.fromtimestamp(line.created, UTC),
                )
                for line in lines
            ]
            if keep_from is not None:
                out.trims.append(LogTrim(job_id=job_id, attempt=attempt, keep_from=keep_from))
        for job_id in self._ended:
            self._progress.pop(job_id, None)
            self._logs.pop(job_id, None)
        self._ended.clear()
        if self._failed is not None:
            out, self._failed = self._failed.merged(out), None
        return out

    def failed(self, reports: Reports) -> None:
        """A write of ``reports`` failed: they go with the next one."""
        self._failed = reports if self._failed is None else self._failed.merged(reports)
        self.due = True


def _shown(text: str) -> str:
    """What may be stored and shown: secrets masked, no NUL (PostgreSQL text cannot hold it)."""
    return storable(masked_log_text(text))
