"""Objects the jobs of one worker share, such as an HTTP client or a Kafka producer.

Each is made on first use, kept while the worker runs and closed when it stops. They are
kept per worker rather than per process because such objects belong to one event loop.
Jobs reach them through :func:`shared`, which also works outside a worker (``run_inline``,
a plain call) by making a private object and closing it after use.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any, TypeVar

T = TypeVar("T")
Close = Callable[[Any], Awaitable[object]]

log = logging.getLogger("jobline.worker")

CLOSE_TIMEOUT = 10.0  #: seconds one resource may take to close when the worker stops

#: Resources made as a worker starts, by the job type that needs them: made on first use,
#: the HTTP client (importing aiohttp, TLS set-up) made the first timer up to 1.7 s late.
_AT_START: dict[str, tuple[str, Callable[[], Awaitable[Any]], Close]] = {}


def make_at_start(
    job_type: str,
    key: str,
    make: Callable[[], Awaitable[T]],
    close: Callable[[T], Awaitable[object]],
) -> None:
    """Have every worker that takes ``job_type`` make resource ``key`` before its first claim."""
    _AT_START[key] = (job_type, make, close)


class Resources:
    """Resources by key: made once however many jobs ask at the same time."""

    def __init__(self) -> None:
        self._made: dict[str, tuple[asyncio.Future[Any], Close]] = {}
        self._closed = False

    async def get(
        self, key: str, make: Callable[[], Awaitable[T]], close: Callable[[T], Awaitable[object]]
    ) -> T:
        """The resource ``key``: ``make()`` the first time; ``close(it)`` when the worker stops."""
        entry = self._made.get(key)
        if entry is None:
            if self._closed:
                raise RuntimeError("the worker has stopped; its shared resources are closed")
            future = asyncio.ensure_future(make())
            entry = self._made[key] = (future, close)
            future.add_done_callback(lambda f: self._forget_failed(key, f))
        # Shielded: a job cancelled while the resource is being made leaves it to the others.
        return await asyncio.shield(entry[0])

    def ready(self, key: str) -> bool:
        """Whether resource ``key`` is made (and did not fail)."""
        entry = self._made.get(key)
        return (
            entry is not None
            and entry[0].done()
            and not entry[0].cancelled()
            and (entry[0].exception() is None)
        )

    async def make_ahead(self, job_types: Iterable[str]) -> None:
        """Make the resources registered for any of ``job_types`` now; one that fails is
        logged and left for the first job to try again."""
        wanted = set(job_types)
        for key, (job_type, make, close) in list(_AT_START.items()):
            if job_type in wanted:
                try:
                    await self.get(key, make, close)
                except Exception as exc:
                    log.warning("making the shared resource %s at start failed: %s", key, exc)

    def _forget_failed(self, key: str, future: asyncio.Future[Any]) -> None:
        """A resource that could not be made is made again by the next job that asks."""
        failed = future.cancelled() or future.exception() is not None
        if failed and key in self._made and self._made[key][0] is future:
            del self._made[key]

    async def aclose(self) -> None:
        """Close every resource, newest first; a failing close is logged and skipped."""
        self._closed = True
        made, self._made = self._made, {}
        for key, (future, close) in reversed(made.items()):
            if not future.done():
                future.cancel()
                continue
            if future.cancelled() or future.exception() is not None:
                continue
            try:
                async with asyncio.timeout(CLOSE_TIMEOUT):
                    await close(future.result())
            except Exception:
                log.exception("closing the shared resource %s failed", key)


current: contextvars.ContextVar[Resources] = contextvars.ContextVar("jobline_resources")


@contextlib.asynccontextmanager
async def shared(
    key: str, make: Callable[[], Awaitable[T]], close: Callable[[T], Awaitable[object]]
) -> AsyncIterator[T]:
    """The running worker's resource ``key``; outside a worker, one made for this use only."""
    resources = current.get(None)
    if resources is not None:
        yield await resources.get(key, make, close)
        return
    value = await make()
    try:
        yield value
    finally:
        await close(value)
