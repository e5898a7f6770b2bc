"""A scheduler loop running in a background thread, and waiting on database conditions."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Iterator

from jobline.scheduler.loop import Scheduler


def wait_for(predicate: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


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
    wait_for(lambda: scheduler.ready.is_set() or errors)
    try:
        yield scheduler
    finally:
        loop.call_soon_threadsafe(scheduler.stop)
        thread.join(10)
    if errors:
        raise errors[0]
