"""Serve the ASGI app with uvicorn, and optionally a worker, in one event loop."""

from __future__ import annotations

import asyncio
import contextlib
import signal

import uvicorn

from jobline.services.beside import with_upkeep
from jobline.web.events import close_streams


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self):
        # Signals are handled below, so that the worker stops gracefully with the server.
        yield


async def serve(
    host: str, port: int, *, worker: bool, scheduler: bool = False, concurrency: int | None = None
) -> None:
    config = uvicorn.Config(
        "jobline.service.asgi:application",
        host=host,
        port=port,
        lifespan="off",
        log_level="info",
        access_log=False,
    )
    server = _Server(config)
    w = None
    if worker:
        from jobline.worker.runtime import build_worker

        w = build_worker(concurrency=concurrency)
    sched = None
    if scheduler:
        from jobline.scheduler.loop import Scheduler

        sched = Scheduler()

    def stop() -> None:
        if server.should_exit:
            server.force_exit = True
        server.should_exit = True
        close_streams()  # open event streams end, or the server would wait for them
        if w is not None:
            w.stop()
        if sched is not None:
            sched.stop()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)
    worker_task = asyncio.create_task(w.run(), name="jobline-worker") if w else None
    if worker_task:  # a worker that dies takes the server down with it, loudly
        worker_task.add_done_callback(lambda t: t.cancelled() or (t.exception() and stop()))
    scheduler_task = (
        asyncio.create_task(with_upkeep(sched.run()), name="jobline-scheduler") if sched else None
    )
    if scheduler_task:  # likewise
        scheduler_task.add_done_callback(lambda t: t.cancelled() or (t.exception() and stop()))
    print(f"jobline is up: http://{host}:{port}/  (admin: /admin/, API: /api/v1/docs)", flush=True)
    try:
        await server.serve()
    finally:
        stop()
        if worker_task:
            await worker_task
        if scheduler_task:
            await scheduler_task
