"""Build a worker for a Django database and run it with signal handling."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from typing import Any

from django.db import DEFAULT_DB_ALIAS, close_old_connections

from jobline import conf
from jobline.services import database
from jobline.worker.reports import ReportLimits
from jobline.worker.worker import Worker, WorkerOptions

log = logging.getLogger("jobline.worker")


def django_sync_call(fn: Callable[..., Any], arg: Any) -> Any:
    """Run a sync job in a worker thread with fresh Django connections, as a request would."""
    close_old_connections()
    try:
        return fn(arg)
    finally:
        close_old_connections()


def options_from_settings(**overrides: Any) -> WorkerOptions:
    values = {
        "concurrency": conf.get("JOBLINE_WORKER_CONCURRENCY"),
        "sync_threads": conf.get("JOBLINE_SYNC_THREADS"),
        "claim_batch": conf.get("JOBLINE_CLAIM_BATCH"),
        "lease": conf.get("JOBLINE_LEASE_SECONDS"),
        "heartbeat": conf.get("JOBLINE_HEARTBEAT_SECONDS"),
        "poll": conf.get("JOBLINE_POLL_SECONDS"),
        "grace": conf.get("JOBLINE_SHUTDOWN_GRACE_SECONDS"),
        "reports": ReportLimits(
            interval=float(conf.get("JOBLINE_PROGRESS_SECONDS")),
            max_lines=int(conf.get("JOBLINE_JOB_LOG_MAX_LINES")),
            max_bytes=int(conf.get("JOBLINE_JOB_LOG_MAX_BYTES")),
        ),
        "capture_prints": bool(conf.get("JOBLINE_CAPTURE_PRINTS")),
    }
    values.update({k: v for k, v in overrides.items() if v is not None})
    return WorkerOptions(**values)


def build_worker(using: str = DEFAULT_DB_ALIAS, **overrides: Any) -> Worker:
    session = database.store(using).session()
    return Worker(session, options_from_settings(**overrides), sync_call=django_sync_call)


def install_signal_handlers(worker: Worker) -> None:
    """SIGTERM / SIGINT stop claiming; a second signal stops at once."""
    loop = asyncio.get_running_loop()

    def on_signal(sig: signal.Signals) -> None:
        if worker.stopping:
            log.warning("%s again: stopping at once", sig.name)
            raise SystemExit(1)
        log.info(
            "%s: taking no new jobs; running ones may finish (send it again to stop now)", sig.name
        )
        worker.stop()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
