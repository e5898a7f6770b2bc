"""``jobline bench --kind http`` and ``--kind kafka``: the services those jobs reach.

``http`` jobs call a server the bench runs on loopback (allowed for the bench's workers
only). ``kafka`` jobs publish to ``KAFKA_BOOTSTRAP_SERVERS`` when it is set, else to a
tansu broker the bench starts (``jobline.dispatch.broker``), on a topic of their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import uuid
from collections.abc import Iterator
from typing import Any

from jobline.dispatch.broker import free_port, local_broker

Target = tuple[str, dict[str, Any], dict[str, str]]  #: job type, inputs, workers' environment


@contextlib.contextmanager
def dispatch_target(kind: str) -> Iterator[Target]:
    if kind == "http":
        with loopback_server() as url:
            allowed = f"{os.environ.get('JOBLINE_HTTP_ALLOWED_NETWORKS', '')} 127.0.0.0/8"
            yield "http", {"url": url}, {"JOBLINE_HTTP_ALLOWED_NETWORKS": allowed.strip()}
        return
    inputs = {"title": "bench", "job_type": "bench", "topic": f"bench-{uuid.uuid4().hex[:8]}"}
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        yield "kafka", inputs, {"KAFKA_ENABLED": "true"}
        return
    with local_broker() as address:
        print(f"kafka: tansu at {address} (set KAFKA_BOOTSTRAP_SERVERS for another broker)")
        env = {"KAFKA_ENABLED": "true", "KAFKA_BOOTSTRAP_SERVERS": address}
        yield "kafka", inputs, env | {"KAFKA_IDEMPOTENT": "false"}  # tansu: no InitProducerId


@contextlib.contextmanager
def loopback_server() -> Iterator[str]:
    """An aiohttp server answering 200 to anything, in a thread: its URL."""
    from aiohttp import web

    async def ok(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", ok)
    runner = web.AppRunner(app, access_log=None)
    loop = asyncio.new_event_loop()
    port = free_port()
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start())
    thread = threading.Thread(target=loop.run_forever, name="bench-http", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.run_until_complete(runner.cleanup())
        loop.close()
