"""Terminate requests reach SQLite workers within a fraction of a second.

PostgreSQL wakes a worker with ``NOTIFY jobline_control``; SQLite has no such thing, and
waiting for the next heartbeat (5 s) made "terminate" mean "in a few seconds". So a watcher
checks ``PRAGMA data_version`` (it changes only when another connection commits, and
costs no table read) and, when it changed, asks one probe of the partial index on running
jobs whether any job of this worker is asked to stop; if so it sets the control event, as a
notification would.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any

CONTROL_POLL_SECONDS = 0.2  #: how soon a terminate request reaches an SQLite worker

REQUESTED = (
    "SELECT 1 FROM jobline_job WHERE worker_id = ? AND status = 'running' AND cancel_requested"
    " LIMIT 1"
)


async def watch_terminate_requests(
    run: Callable[[Callable[[sqlite3.Connection], Any]], Awaitable[Any]],
    worker_id: Callable[[], str | None],
    control: asyncio.Event,
) -> None:
    """Set ``control`` whenever a running job of ``worker_id()`` is asked to stop; runs
    until cancelled. ``run`` calls a function with the store's connection, on its thread."""
    seen = -1

    def check(db: sqlite3.Connection) -> bool:
        nonlocal seen
        version = db.execute("PRAGMA data_version").fetchone()[0]
        if version == seen or (wid := worker_id()) is None:
            return False
        seen = version
        return db.execute(REQUESTED, (wid,)).fetchone() is not None

    while True:
        if await run(check):
            control.set()
        await asyncio.sleep(CONTROL_POLL_SECONDS)
