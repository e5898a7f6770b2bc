"""The store: the one place that speaks SQL to the queue's tables (``port.Store``).

Drivers: ``postgres`` (psycopg 3), ``sqlite`` (sqlite3) and ``memory`` (for tests, no
database). Everything above reaches the tables through :func:`store_for` or a
``MemoryStore`` it was given; nothing else looks at which database it is.
"""

from __future__ import annotations

from typing import Any

from jobline.exceptions import JoblineError
from jobline.store.port import CONTROL, JOBS, SCHEDULES, Listener, Session, Store

_stores: dict[tuple[str, str], Store] = {}


def store_for(vendor: str, settings_dict: dict[str, Any]) -> Store:
    """The store of a Django database (its ``vendor`` and ``settings_dict``); one per database."""
    key = (vendor, repr(sorted((k, repr(v)) for k, v in settings_dict.items())))
    if key not in _stores:
        _stores[key] = _open(vendor, settings_dict)
    return _stores[key]


def _open(vendor: str, settings_dict: dict[str, Any]) -> Store:
    if vendor == "postgresql":
        from jobline.store.postgres import PostgresStore  # psycopg loads only when used

        return PostgresStore(settings_dict)
    if vendor == "sqlite":
        from jobline.store.sqlite import SqliteStore

        return SqliteStore(settings_dict)
    raise JoblineError(
        f"jobline supports PostgreSQL and SQLite, not {vendor!r}; set DATABASE_URL to one of them"
    )


__all__ = ["CONTROL", "JOBS", "SCHEDULES", "Listener", "Session", "Store", "store_for"]
