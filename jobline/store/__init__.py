"""The store: the one place that speaks SQL for the hot path, one module per database.

Each driver module offers two faces on the same tables:

* ``insert_jobs(cursor, rows)``: the enqueue, run on the caller's own DB-API cursor (Django's),
  so that a job is written inside the caller's transaction;
* a ``Store`` class: the worker's async connection for claims, completions and heartbeats.
"""

from __future__ import annotations

from typing import Any

from jobline.exceptions import JoblineError
from jobline.store.base import ClaimedJob, ClaimFilter, Completion, NewJob, Store, WorkerInfo


def driver_for(vendor: str) -> Any:
    """The driver module for a Django database vendor name."""
    if vendor == "postgresql":
        from jobline.store import postgres

        return postgres
    if vendor == "sqlite":
        from jobline.store import sqlite

        return sqlite
    raise JoblineError(
        f"jobline supports PostgreSQL and SQLite, not {vendor!r}; set DATABASE_URL to one of them"
    )


def open_store(settings_dict: dict[str, Any], vendor: str, **options: Any) -> Store:
    """A worker-side store for one Django database (``connections[alias].settings_dict``)."""
    return driver_for(vendor).Store(settings_dict, **options)


__all__ = ["ClaimFilter", "ClaimedJob", "Completion", "NewJob", "Store", "WorkerInfo"]
