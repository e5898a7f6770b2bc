"""Helpers for testing code that uses jobline.

* :func:`run_inline` runs one job in the current thread, skipping the queue.
* :func:`memory_store` puts the queue in memory for a ``with`` block: enqueues go there and
  ``drain`` / ``running_worker`` run a real worker on it, with no database at all.
* :func:`drain` runs a real worker until ``count`` jobs have finished, or nothing is due.
* :func:`running_worker` keeps a real worker running in a background thread.

On a database, ``drain`` and ``running_worker`` use their own connections, so the jobs must
be committed: in pytest-django use ``@pytest.mark.django_db(transaction=True)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from django.db import DEFAULT_DB_ALIAS

from jobline.core.jobtypes import JobType, registry
from jobline.services import database
from jobline.store.memory import MemoryStore
from jobline.worker.runtime import build_worker
from jobline.worker.worker import Worker


def run_inline(job_type: JobType | str, inputs: Any = None) -> Any:
    """Validate ``inputs`` and run the job here; returns its outputs as stored (JSON data)."""
    jt = registry.get(job_type)
    result = jt.invoke(jt.inputs.validate(inputs))
    if jt.is_async:
        result = asyncio.run(result)
    return None if result is None else jt.outputs.to_json(result)


@contextlib.contextmanager
def memory_store(**options: Any) -> Iterator[MemoryStore]:
    """Serve every database alias from a fresh in-memory store inside the block.

    ``store.job(id)``, ``store.count(status)`` and ``store.jobs`` show what happened; options
    go to :class:`MemoryStore` (``clock``). Pipelines and schedules need a database.
    """
    store = MemoryStore(**options)
    with database.replaced_by(store):
        yield store


def drain(
    count: int | None = None,
    *,
    timeout: float = 10.0,
    using: str = DEFAULT_DB_ALIAS,
    **options: Any,
) -> int:
    """Run a worker until ``count`` jobs finished (None: until nothing is due); returns how many.

    Raises ``TimeoutError`` if that takes longer than ``timeout`` seconds.
    """
    worker = build_worker(using, max_jobs=count, until_idle=count is None, **options)

    async def main() -> int:
        try:
            async with asyncio.timeout(timeout):
                return await worker.run()
        except TimeoutError:
            raise TimeoutError(
                f"drain: {worker.processed} of {count or 'all'} jobs finished in {timeout} s"
            ) from None

    return asyncio.run(main())


@contextlib.contextmanager
def running_worker(using: str = DEFAULT_DB_ALIAS, **options: Any) -> Iterator[Worker]:
    """A worker running in a background thread for the duration of the ``with`` block."""
    worker = build_worker(using, **options)
    loop = asyncio.new_event_loop()
    started = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(_run_signalling(worker, started))
        except BaseException as exc:
            errors.append(exc)
            started.set()
        finally:
            loop.close()

    thread = threading.Thread(target=run, name="jobline-test-worker", daemon=True)
    thread.start()
    started.wait(10)
    try:
        yield worker
    finally:
        loop.call_soon_threadsafe(worker.stop)
        thread.join(30)
    if errors:
        raise errors[0]


async def _run_signalling(worker: Worker, started: threading.Event) -> None:
    task = asyncio.create_task(worker.run())
    while not worker.registered and not task.done():
        await asyncio.sleep(0.005)
    started.set()
    await task
