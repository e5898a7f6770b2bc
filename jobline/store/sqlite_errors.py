"""SQLite's errors that are the database file's state, not a bug: locked, or read-only."""

from __future__ import annotations

import getpass
import sqlite3

from jobline.exceptions import DatabaseLocked, DatabaseReadOnly, JoblineError

# Primary result codes (the low byte of the extended ones, SQLITE_READONLY_DIRECTORY and such).
BUSY, LOCKED, READONLY = 5, 6, 8


def recognise(exc: BaseException, path: str, busy_timeout: float) -> JoblineError | None:
    """``Store.explain`` for one error of a connection to the SQLite file ``path``."""
    if not isinstance(exc, sqlite3.Error):
        return None
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    if code in (BUSY, LOCKED):
        return DatabaseLocked(
            f"the SQLite database {path} is locked by another process and stayed locked for"
            f" over {busy_timeout:g} s (JOBLINE_SQLITE_BUSY_TIMEOUT): try again shortly; if it"
            " lasts, find the process holding it (fuser on the file: a long write or an open"
            " transaction) or raise the timeout"
        )
    if code == READONLY:
        return DatabaseReadOnly(
            f"the SQLite database {path} is read-only for user {getpass.getuser()}: give it"
            " write access to the file and its folder (SQLite writes -wal and -shm files"
            " beside it)"
        )
    return None
