"""The store: the one place that speaks SQL to the queue's tables (``port.Store``).

Drivers: ``postgres`` (psycopg 3), ``sqlite`` (sqlite3) and ``memory`` (for tests, no
database). Everything above reaches the tables through :func:`store_for` or a
``MemoryStore`` it was given; nothing else looks at which database it is.
"""

from __future__ import annotations

from typing import Any

from jobline.exceptions import JoblineError
from jobline.store.port import CONTROL, EVENTS, JOBS, SCHEDULES, Listener, Session, Store

_stores: dict[tuple[str, str], Store] = {}
# The last store each settings dict gave, with a copy of the settings it was given for: an
# enqueue asks for its store every call, and a comparison is cheaper than the key. Settings
# changed in place (tests rename the database) miss and take the slow path.
_recent: dict[int, tuple[str, dict[str, Any], Store]] = {}


def store_for(vendor: str, settings_dict: dict[str, Any]) -> Store:
    """The store of a Django database (its ``vendor`` and ``settings_dict``); one per database."""
    hit = _recent.get(id(settings_dict))
    if hit is not None and hit[0] == vendor and hit[1] == settings_dict:
        return hit[2]
    key = (vendor, repr(sorted((k, repr(v)) for k, v in settings_dict.items())))
    if key not in _stores:
        _stores[key] = _open(vendor, settings_dict)
    copied = {k: dict(v) if isinstance(v, dict) else v for k, v in settings_dict.items()}
    _recent[id(settings_dict)] = (vendor, copied, _stores[key])
    return _stores[key]


def close_async_connections() -> None:
    """Close the idle connections stores keep for async enqueues (tests, before the test
    database is dropped; a process that ends needs nothing)."""
    for store in list(_stores.values()):
        pool = getattr(store, "async_connections", None)
        if pool is not None:
            pool.close()


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


__all__ = [
    "CONTROL",
    "EVENTS",
    "JOBS",
    "SCHEDULES",
    "Listener",
    "Session",
    "Store",
    "close_async_connections",
    "store_for",
]
