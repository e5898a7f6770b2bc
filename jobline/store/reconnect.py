"""Waiting before a reconnect: capped exponential backoff with jitter, one log line per outage."""

from __future__ import annotations

import asyncio
import logging
import random

log = logging.getLogger("jobline.store")


class Backoff:
    """Delays of ``first`` seconds doubling up to ``cap``, each with up to 50 % jitter so that
    a fleet of workers does not reconnect in step. ``fail`` logs the first failure of an
    outage only; ``succeeded`` logs the recovery and starts over."""

    def __init__(self, what: str, *, first: float = 0.1, cap: float = 5.0):
        self.what = what
        self.first = first
        self.cap = cap
        self.failures = 0

    def next_delay(self) -> float:
        base = min(self.cap, self.first * 2 ** min(self.failures - 1, 30))
        return base * (1 + random.random() / 2)

    def note(self, exc: BaseException) -> None:
        """Count a failure; the first of an outage is logged."""
        self.failures += 1
        if self.failures == 1:
            why = str(exc).strip() or type(exc).__name__
            log.warning("%s failed (%s); trying again", self.what, why)

    async def fail(self, exc: BaseException) -> None:
        """Count a failure, then wait before the next try."""
        self.note(exc)
        await asyncio.sleep(self.next_delay())

    def succeeded(self) -> None:
        if self.failures:
            log.warning("%s working again after %d failed attempts", self.what, self.failures)
        self.failures = 0
