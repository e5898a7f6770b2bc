"""The worker: claims jobs in batches, runs thousands at once, writes results in batches."""

from __future__ import annotations

from jobline.worker.worker import Worker, WorkerOptions

__all__ = ["Worker", "WorkerOptions"]
