"""A running job's progress and captured log lines, as kept until the worker writes them.

Pure bookkeeping (the clock is a parameter): :class:`ProgressState` throttles a job's
``progress()`` calls to at most one write per interval while always keeping the latest value;
:class:`LogTail` caps an attempt's captured lines at a number of lines and of bytes, keeping
the tail. The worker (``jobline.worker.reports``) holds one of each per running attempt and
writes what they hand over with its other buffered writes.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass

#: Longest progress message kept (the rest is cut): it is shown in lists.
MESSAGE_CHARS = 500


def checked_fraction(fraction: object) -> float:
    """``fraction`` as a float in [0, 1], or a ``ValueError`` saying what is wrong."""
    if isinstance(fraction, bool) or not isinstance(fraction, int | float):
        raise ValueError(f"progress fraction must be a number from 0 to 1, not {fraction!r}")
    value = float(fraction)
    if math.isnan(value) or not 0.0 <= value <= 1.0:
        raise ValueError(f"progress fraction must be from 0 to 1, not {fraction!r}")
    return value


class ProgressState:
    """One attempt's progress: the latest report, and whether a write of it is on its way.

    ``report`` is what a job calls, maybe in a tight loop: it stores the value and, only when
    no write is on its way, answers how many seconds from now one is due (so the caller
    schedules one write per interval at most). ``take`` hands the latest value to that write.
    """

    __slots__ = ("_armed", "_next", "_sent", "interval", "latest")

    def __init__(self, interval: float):
        self.interval = interval
        self.latest: tuple[float, str] | None = None
        self._sent: tuple[float, str] | None = None
        self._armed = False
        self._next = 0.0  #: the clock's time before which no further write is due

    def report(self, fraction: float, message: str, now: float) -> float | None:
        self.latest = (fraction, message[:MESSAGE_CHARS])
        if self._armed:
            return None  # the write on its way takes the latest value
        self._armed = True
        return max(0.0, self._next - now)

    def take(self, now: float) -> tuple[float, str] | None:
        """The value to write now (None if it was written already)."""
        self._armed = False  # first: a report from now on arms a later write
        latest = self.latest
        if latest is None or latest is self._sent:
            return None
        self._sent = latest
        self._next = now + self.interval
        return latest


@dataclass(frozen=True, slots=True)
class CapturedLine:
    seq: int  #: its line number in the attempt, from 1
    level: str
    text: str
    created: float  #: unix time


class LogTail:
    """One attempt's captured lines under a cap of ``max_lines`` and ``max_bytes``: the tail is
    kept, older lines are dropped (those already written are trimmed from the store).

    Line numbers keep counting, so how many were dropped is the first kept line's number
    minus one. A line longer than ``max_bytes`` is cut to it. Sync jobs add lines from their
    thread while the worker takes them on its event loop: a lock keeps the two apart.
    """

    def __init__(self, max_lines: int, max_bytes: int):
        self.max_lines = max(1, max_lines)
        self.max_bytes = max(1, max_bytes)
        self.last_seq = 0
        self._kept: deque[tuple[int, int]] = deque()  #: (seq, bytes) of the tail, in order
        self._bytes = 0
        self._pending: deque[CapturedLine] = deque()  #: kept, not yet handed to a write
        self._trimmed_to = 1  #: lines before this number are gone (told to the store already)
        self._lock = threading.Lock()

    def add(self, level: str, text: str, created: float) -> bool:
        """Keep a line; True when it is the first one waiting for a write."""
        size = len(text.encode("utf-8", "replace"))
        if size > self.max_bytes:
            text = text.encode("utf-8", "replace")[: self.max_bytes].decode("utf-8", "ignore")
            size = len(text.encode("utf-8"))
        with self._lock:
            return self._keep(level, text, size, created)

    def _keep(self, level: str, text: str, size: int, created: float) -> bool:
        self.last_seq += 1
        self._kept.append((self.last_seq, size))
        self._bytes += size
        while len(self._kept) > self.max_lines or self._bytes > self.max_bytes:
            _, dropped = self._kept.popleft()
            self._bytes -= dropped
        first = not self._pending
        self._pending.append(CapturedLine(self.last_seq, level, text, created))
        return first

    @property
    def first_kept(self) -> int:
        return self._kept[0][0] if self._kept else self.last_seq + 1

    def take(self) -> tuple[list[CapturedLine], int | None]:
        """The kept lines not yet written, and the line number below which the store must drop
        what it has (None when nothing needs dropping)."""
        with self._lock:
            first = self.first_kept
            lines = [line for line in self._pending if line.seq >= first]
            self._pending.clear()
            trim = None
            if first > self._trimmed_to:
                trim, self._trimmed_to = first, first
        return lines, trim
