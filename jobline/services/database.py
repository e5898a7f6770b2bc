"""Which store serves a Django database alias, and the caller's connection to it.

Tests (``jobline.testing.memory_store``) may put a :class:`jobline.store.memory.MemoryStore`
in place of every database: then enqueues go to it and no database is touched.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, transaction

from jobline.exceptions import JoblineError
from jobline.store import Store, store_for

_replacement: Store | None = None


def store(using: str) -> Store:
    """The store behind a database alias."""
    if _replacement is not None:
        return _replacement
    connection = connections[using]
    return store_for(connection.vendor, connection.settings_dict)


def explain(exc: BaseException, using: str = DEFAULT_DB_ALIAS) -> JoblineError | None:
    """The database's state behind ``exc`` (locked, read-only, away), for a face to show in
    one clear line; None for anything else (a bug: let it raise)."""
    return store(using).explain(exc)


def connection(using: str) -> Any:
    """The DB-API connection under Django's for ``using``: writes join the caller's
    transaction. None when a replacement store needs no database."""
    if _replacement is not None:
        return None
    wrapper = connections[using]
    wrapper.ensure_connection()
    return wrapper.connection


def in_transaction(using: str) -> bool:
    """Whether this thread's connection for ``using`` is inside ``transaction.atomic()``
    (an async caller cannot be, unless it used the sync ORM on its own thread)."""
    return _replacement is None and connections[using].in_atomic_block


def atomic(using: str) -> contextlib.AbstractContextManager[Any]:
    """A transaction on ``using`` (a replacement store writes at once: nothing to wrap)."""
    return contextlib.nullcontext() if _replacement is not None else transaction.atomic(using=using)


@contextlib.contextmanager
def replaced_by(replacement: Store) -> Iterator[Store]:
    """Every alias is served by ``replacement`` inside the block (every thread: a worker's
    sync jobs enqueue too)."""
    global _replacement
    previous, _replacement = _replacement, replacement
    try:
        yield replacement
    finally:
        _replacement = previous
