"""A scheduler loop running in a background thread, and waiting on database conditions."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator

from jobline.scheduler.loop import Scheduler
from tests.conftest import wait_until


@contextlib.contextmanager
def running_scheduler(using: str) -> Iterator[Scheduler]:
    """A real scheduler loop on its own event loop, until the ``with`` block ends."""
    scheduler = Scheduler(using)
    loop = asyncio.new_event_loop()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            loop.run_until_complete(scheduler.run())
        except BaseException as exc:
            errors.append(exc)
        finally:
            loop.close()

    thread = threading.Thread(target=run, name="jobline-test-scheduler", daemon=True)
    thread.start()
    wait_until(lambda: scheduler.ready.is_set() or errors)
    try:
        yield scheduler
    finally:
        loop.call_soon_threadsafe(scheduler.stop)
        thread.join(10)
    if errors:
        raise errors[0]
