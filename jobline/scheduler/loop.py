"""The scheduler loop: fire what is due, then sleep until the next run or until woken.

Wake-ups: on PostgreSQL a ``LISTEN jobline_schedules`` (a trigger notifies at the commit of
any insert or update of a schedule); on SQLite a poll of ``PRAGMA data_version``, which
changes when another connection commits. Run as many schedulers as you like: firing is
exactly once per occurrence (``firing.py``). Database work runs in one thread of its own,
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

import psycopg
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections

from jobline.scheduler import firing
from jobline.scheduler.api import sync_periodic
from jobline.store.postgres import conninfo

log = logging.getLogger("jobline.scheduler")
T = TypeVar("T")

CHANNEL = "jobline_schedules"  #: notified (by a trigger) when a schedule is created or changed
MAX_SLEEP = 60.0  #: longest sleep without a wake-up, in case a notification was lost
SQLITE_POLL = 0.05  #: seconds between checks for commits by other connections (SQLite)
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
        self._wakeup = asyncio.Event()
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
        listening = asyncio.Event()
        watch = self._listen if connections[self.using].vendor == "postgresql" else self._poll
        watcher = asyncio.create_task(watch(listening), name="jobline-scheduler-watch")
        try:
            await self._call(sync_periodic, self.using)
            # Changes made from here on wake this loop; a watcher that died says why.
            waits = {asyncio.ensure_future(e.wait()) for e in (listening, self._stopping)}
            await asyncio.wait({watcher, *waits}, return_when=asyncio.FIRST_COMPLETED)
            for task in waits:
                task.cancel()
            if watcher.done():
                watcher.result()
            log.info("scheduler started database=%s", self.using)
            while not self._stopping.is_set():
                self._wakeup.clear()
                delay = await self._tick()
                self.ready.set()
                await self._sleep(delay)
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
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
        except Exception:
            log.exception("scheduler pass failed; retrying in %.1f s", self.poll)
            await self._call(self._close_connection)  # a broken one is replaced on next use
            return self.poll
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
        waits = {asyncio.ensure_future(e.wait()) for e in (self._wakeup, self._stopping)}
        await asyncio.wait(waits, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
        for task in waits:
            task.cancel()

    async def _listen(self, listening: asyncio.Event) -> None:
        """PostgreSQL: turn notifications into wake-ups; reconnect if the connection drops."""
        dsn = conninfo(connections[self.using].settings_dict)
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    listening.set()
                    self._wakeup.set()  # a change while not listening was not announced
                    async for _ in conn.notifies():
                        self._wakeup.set()
            except psycopg.OperationalError as exc:
                log.warning("LISTEN %s failed (%s); reconnecting", CHANNEL, exc)
                await asyncio.sleep(1)

    async def _poll(self, listening: asyncio.Event) -> None:
        """SQLite: wake up when another connection has committed."""

        def data_version() -> int:
            with connections[self.using].cursor() as cursor:
                cursor.execute("PRAGMA data_version")
                return cursor.fetchone()[0]

        seen = await self._call(data_version)
        listening.set()
        while True:
            await asyncio.sleep(SQLITE_POLL)
            with contextlib.suppress(Exception):  # a failing database shows in the next pass
                version = await self._call(data_version)
                if version != seen:
                    seen = version
                    self._wakeup.set()


def install_signal_handlers(scheduler: Scheduler) -> None:
    """SIGTERM / SIGINT stop the scheduler after the pass in progress."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, scheduler.stop)
