"""The relay: job events from the outbox to one delivery job per matching subscription.

The database's triggers put an event in the outbox (``jobline_outbox``) when a job's change
commits (``jobline.store.outbox``). The relay takes a batch out and enqueues a
``deliver_event`` job for each (subscription, event) it matches, in one transaction: an event
is never lost between the two and never relayed twice; the delivery jobs then retry with
backoff on their own. Outputs and errors are masked as the UI shows them.

A relay runs beside each scheduler (``jobline scheduler``, ``jobline up``). Several may run:
on PostgreSQL each takes other rows (``SKIP LOCKED``), on SQLite one writes at a time. It
wakes at once on PostgreSQL (``NOTIFY jobline_events`` at commit) and polls every
``JOBLINE_EVENTS_POLL_SECONDS`` elsewhere; it takes ``JOBLINE_EVENTS_BATCH`` at a time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, transaction

from jobline import conf
from jobline.core.events import DELIVER_TYPE, message
from jobline.models import OutboxEvent, Subscription
from jobline.redact import masked_text, redacted
from jobline.services import database, enqueue
from jobline.store import EVENTS
from jobline.store.reconnect import Backoff

log = logging.getLogger("jobline.events")


def masked(event: dict[str, Any]) -> dict[str, Any]:
    """The event with secrets in its outputs and error masked."""
    job = event["job"]
    shown = {**job, "outputs": redacted(job["outputs"]), "error": masked_text(job["error"])}
    return {**event, "job": shown}


def relay(using: str = DEFAULT_DB_ALIAS, *, limit: int | None = None) -> int:
    """Relay one batch of events; returns how many were taken from the outbox."""
    limit = limit or int(conf.get("JOBLINE_EVENTS_BATCH"))
    # A plain read first: an idle relay takes no write lock (SQLite has one for everybody).
    if not OutboxEvent.objects.using(using).exists():
        return 0
    with transaction.atomic(using=using):
        rows = database.store(using).take_events(database.connection(using), limit)
        if not rows:
            return 0
        subscriptions = list(Subscription.objects.using(using).filter(is_active=True))
        deliveries = []
        for row in rows:
            event = masked(message(row))
            deliveries += [
                {"subscription": s.name, "destination": s.destination(), "event": event}
                for s in subscriptions
                if s.filters.match(event)
            ]
        if deliveries:
            enqueue.enqueue_many(DELIVER_TYPE, deliveries, using=using)
    return len(rows)


class Relay:
    """Relays events until stopped; its database work runs in a thread with its own
    connection, so it shares an event loop with a scheduler or a server."""

    def __init__(self, using: str = DEFAULT_DB_ALIAS, *, poll: float | None = None):
        self.using = using
        self.poll = float(conf.get("JOBLINE_EVENTS_POLL_SECONDS") if poll is None else poll)
        self.batch = int(conf.get("JOBLINE_EVENTS_BATCH"))
        self.relayed = 0  #: events taken from the outbox
        self.passes = 0  #: looks at the outbox so far (tests wait on it)
        self._listener = database.store(using).listener((EVENTS,))
        self._stopping = asyncio.Event()
        self._outage = Backoff("the event relay")
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="jobline-relay")

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        await self._listener.open()
        woken = self._listener.event(EVENTS)
        try:
            while not self._stopping.is_set():
                woken.clear()
                try:
                    taken = await loop.run_in_executor(self._thread, self._pass)
                except Exception as exc:  # the database is away: one log line per outage
                    self._outage.note(exc)
                    await loop.run_in_executor(self._thread, self._close_connection)
                    taken = 0
                else:
                    self._outage.succeeded()
                self.relayed += taken
                self.passes += 1
                if taken < self.batch:  # else more are waiting: go on at once
                    await _first(woken.wait(), self._stopping.wait(), timeout=self.poll)
        finally:
            await self._listener.close()
            await loop.run_in_executor(self._thread, self._close_connection)
            self._thread.shutdown(wait=False)

    def _pass(self) -> int:
        return relay(self.using, limit=self.batch)

    def _close_connection(self) -> None:
        connections[self.using].close()  # the relay thread's own; a broken one is replaced


async def _first(*waits: Awaitable[Any], timeout: float) -> None:
    tasks = {asyncio.ensure_future(w) for w in waits}
    await asyncio.wait(tasks, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    for task in tasks:
        task.cancel()
