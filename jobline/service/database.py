"""``DATABASES`` entries from a ``DATABASE_URL``, tuned for jobline."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dj_database_url

from jobline.store.pg_options import TCP_OPTIONS

SQLITE_INIT = "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path.resolve()}"


def database(
    url: str, *, ssl_required: bool = False, sqlite_busy_timeout: float = 10.0
) -> dict[str, Any]:
    """A Django database config for PostgreSQL or SQLite, or a clear error for anything else.

    ``sqlite_busy_timeout``: seconds a SQLite writer waits for another process's write lock
    before the call fails with ``DatabaseLocked``."""
    if not url.startswith(("postgres://", "postgresql://", "sqlite://")):
        raise ValueError(
            f"DATABASE_URL must start with postgres:// or sqlite://, got {url.split(':', 1)[0]}:"
        )
    config = dj_database_url.parse(url, conn_max_age=600, conn_health_checks=True)
    if config["ENGINE"].endswith("sqlite3"):
        # IMMEDIATE: writers take the lock up front instead of failing on upgrade.
        config["OPTIONS"] = {
            "init_command": SQLITE_INIT,
            "transaction_mode": "IMMEDIATE",
            "timeout": sqlite_busy_timeout,  # sqlite3's busy timeout, read by the store too
        }
        config["CONN_MAX_AGE"] = 0
        private_file(config["NAME"])
    else:  # a dead server or link is noticed in seconds (the URL's own options win)
        config["OPTIONS"] = TCP_OPTIONS | config.get("OPTIONS", {})
        if ssl_required:
            config["OPTIONS"]["sslmode"] = "require"
    return config


def private_file(name: str) -> None:
    """Create the SQLite file (and its folder) readable by this user only, before SQLite
    would create it world-readable; its -wal and -shm files take the file's mode."""
    if not name or name == ":memory:" or name.startswith("file:"):
        return
    path = Path(name)
    if path.exists():
        return
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
