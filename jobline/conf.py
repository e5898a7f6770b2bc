"""jobline's settings, read from Django settings with documented defaults."""

from __future__ import annotations

from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    "JOBLINE_WORKER_CONCURRENCY": 100,  # jobs one worker process runs at once
    "JOBLINE_SYNC_THREADS": 16,  # threads for sync (non-async) jobs
    "JOBLINE_CLAIM_BATCH": 500,  # most jobs claimed in one query
    "JOBLINE_LEASE_SECONDS": 30.0,  # a worker silent this long is presumed dead
    "JOBLINE_HEARTBEAT_SECONDS": 5.0,
    "JOBLINE_POLL_SECONDS": 1.0,  # idle wait without a wake-up (delayed jobs, retries)
    "JOBLINE_SHUTDOWN_GRACE_SECONDS": 30.0,  # time running jobs get on SIGTERM
}


def get(name: str) -> Any:
    return getattr(settings, name, DEFAULTS[name])
