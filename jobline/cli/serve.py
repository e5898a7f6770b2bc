"""Serve the ASGI app with uvicorn, and optionally a worker, in one event loop."""

from __future__ import annotations

import asyncio
import contextlib
import signal

import uvicorn


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self):
        # Signals are handled below, so that the worker stops gracefully with the server.
        yield


async def serve(host: str, port: int, *, worker: bool, concurrency: int | None = None) -> None:
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

    def stop() -> None:
        if server.should_exit:
            server.force_exit = True
        server.should_exit = True
        if w is not None:
            w.stop()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)
    worker_task = asyncio.create_task(w.run(), name="jobline-worker") if w else None
    if worker_task:  # a worker that dies takes the server down with it, loudly
        worker_task.add_done_callback(lambda t: t.cancelled() or (t.exception() and stop()))
    print(f"jobline is up: http://{host}:{port}/admin/  (API: /api/v1/health)", flush=True)
    try:
        await server.serve()
    finally:
        stop()
        if worker_task:
            await worker_task
