"""The scheduler loop: fire what is due, then sleep until the next run or until woken.

Wake-ups come from the store's listener on ``jobline_schedules``: on PostgreSQL a LISTEN (a
trigger notifies at the commit of any insert or update of a schedule), on SQLite a poll of
``PRAGMA data_version``. Run as many schedulers as you like: firing is exactly once per
occurrence (``jobline.services.firing``). Database work runs in one thread of its own,
with its own Django connection, so the loop can share an event loop with a server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections

from jobline.scheduler.api import sync_periodic
from jobline.services import database, firing
from jobline.store import SCHEDULES
from jobline.store.reconnect import Backoff

log = logging.getLogger("jobline.scheduler")
T = TypeVar("T")

MAX_SLEEP = 60.0  #: longest sleep without a wake-up, in case a notification was lost
LOCKED_RETRY = 0.02  #: wait when every due schedule is being fired by another scheduler


class Scheduler:
    """Fires due schedules of one database until stopped."""

    def __init__(self, using: str = DEFAULT_DB_ALIAS, *, poll: float | None = None):
        self.using = using
        #: longest sleep while a schedule waits for its job to finish (reschedule_after_finish)
        self.poll = poll if poll is not None else getattr(settings, "JOBLINE_POLL_SECONDS", 1.0)
        self.fired = 0  #: history entries written (jobs fired, errors, skips)
        self.ready = asyncio.Event()  #: set once listening for changes and past the first tick
        self._stopping = asyncio.Event()
        self._listener = database.store(using).listener((SCHEDULES,))
        self._outage = Backoff("the scheduler's passes")
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="jobline-scheduler")

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def stop(self) -> None:
        self._stopping.set()

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)

    async def run(self) -> None:
        """Sync ``@jobline.periodic`` schedules, then fire and sleep until stopped."""
        # Listen first: a change from here on wakes this loop.
        await self._listener.open()
        try:
            await self._call(sync_periodic, self.using)
            log.info("scheduler started database=%s", self.using)
            while not self._stopping.is_set():
                self._listener.event(SCHEDULES).clear()
                delay = await self._tick()
                self.ready.set()
                await self._sleep(delay)
        finally:
            await self._listener.close()
            with contextlib.suppress(Exception):
                await self._call(self._close_connection)
            self._thread.shutdown(wait=False)
            log.info("scheduler stopped fired=%d", self.fired)

    def _close_connection(self) -> None:
        connections[self.using].close()  # the scheduler thread's own connection

    async def _tick(self) -> float:
        """One pass; returns how long to sleep."""
        started = time.monotonic()
        try:
            tick = await self._call(firing.tick, self.using)
        except Exception as exc:  # the database is away: one log line per outage
            self._outage.note(database.explain(exc, self.using) or exc)
            await self._call(self._close_connection)  # a broken one is replaced on next use
            return self.poll
        self._outage.succeeded()
        self.fired += len(tick.fired)
        for fired in tick.fired:
            log.info("fired %s", fired)
        delay = MAX_SLEEP
        if tick.next_due is not None:
            delay = (tick.next_due - tick.now).total_seconds() - (time.monotonic() - started)
        if tick.waiting:
            delay = min(delay, self.poll)
        if delay <= 0 and not tick.fired:  # another scheduler is firing it: let it commit
            delay = LOCKED_RETRY
        return max(0.0, min(delay, MAX_SLEEP))

    async def _sleep(self, delay: float) -> None:
        woken = self._listener.event(SCHEDULES)
        waits = {asyncio.ensure_future(e.wait()) for e in (woken, self._stopping)}
        await asyncio.wait(waits, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
        for task in waits:
            task.cancel()


def install_signal_handlers(scheduler: Scheduler) -> None:
    """SIGTERM / SIGINT stop the scheduler after the pass in progress."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, scheduler.stop)
