"""``DATABASES`` entries from a ``DATABASE_URL``, tuned for jobline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dj_database_url

SQLITE_INIT = "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=10000;"


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path.resolve()}"


def database(url: str, *, ssl_required: bool = False) -> dict[str, Any]:
    """A Django database config for PostgreSQL or SQLite, or a clear error for anything else."""
    if not url.startswith(("postgres://", "postgresql://", "sqlite://")):
        raise ValueError(
            f"DATABASE_URL must start with postgres:// or sqlite://, got {url.split(':', 1)[0]}:"
        )
    config = dj_database_url.parse(url, conn_max_age=600, conn_health_checks=True)
    if config["ENGINE"].endswith("sqlite3"):
        # IMMEDIATE: writers take the lock up front instead of failing on upgrade.
        config["OPTIONS"] = {"init_command": SQLITE_INIT, "transaction_mode": "IMMEDIATE"}
        config["CONN_MAX_AGE"] = 0
    elif ssl_required:
        config.setdefault("OPTIONS", {})["sslmode"] = "require"
    return config
