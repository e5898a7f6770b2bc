"""One PostgreSQL connection of a worker that survives restarts, failovers and partitions.

A call that fails because the connection broke, or that gets no answer within its deadline
(a black-holed network never answers nor resets), raises :class:`StoreUnavailable` and drops
the connection; the next call opens a new one. The caller decides when to try again. A call
past its deadline is abandoned, not awaited: waiting for a link that does not answer is
exactly what must not happen.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import psycopg
import pydantic_core
from psycopg.types.json import set_json_loads

from jobline.exceptions import DatabaseLocked, DatabaseReadOnly, JoblineError, StoreUnavailable

T = TypeVar("T")


class Link:
    """A connection opened on first use and again after it failed."""

    def __init__(self, dsn: str, what: str, *, deadline: float):
        self.dsn = dsn
        self.what = what
        self.deadline = deadline
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._abandoned: set[asyncio.Task[Any]] = set()

    async def connection(self) -> psycopg.AsyncConnection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = None
            conn = await self._within(
                psycopg.AsyncConnection.connect(self.dsn, autocommit=True), "connecting"
            )
            # Claimed jobs' inputs arrive as jsonb: pydantic's Rust parser reads them ten times
            # faster than json.loads (0.5 against 5 µs for a small document), the same values
            # for anything PostgreSQL stores.
            set_json_loads(pydantic_core.from_json, conn)
            self._conn = conn
        return self._conn

    async def run(self, call: Callable[[psycopg.AsyncConnection[Any]], Awaitable[T]]) -> T:
        """``call(connection)`` within the deadline; a broken or silent link is dropped."""
        conn = await self.connection()
        try:
            return await self._within(call(conn), "waiting for an answer")
        except StoreUnavailable:
            self.drop()
            raise
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            if conn.closed or conn.broken:
                self.drop()
                raise StoreUnavailable(f"{self.what}: {str(exc).strip()}") from exc
            raise

    async def _within(self, work: Awaitable[T], doing: str) -> T:
        task = asyncio.ensure_future(work)
        done, _ = await asyncio.wait({task}, timeout=self.deadline)
        if not done:
            task.cancel()  # not awaited: its cleanup may wait on the same silent link
            self._abandoned.add(task)
            task.add_done_callback(self._abandoned.discard)
            raise StoreUnavailable(f"{self.what}: no answer within {self.deadline:g} s ({doing})")
        try:
            return task.result()
        except OSError as exc:  # refused, unreachable: the server is not there (yet)
            raise StoreUnavailable(f"{self.what}: {exc}") from exc
        except psycopg.OperationalError as exc:
            if doing == "connecting":
                raise StoreUnavailable(f"{self.what}: {str(exc).strip()}") from exc
            raise

    def drop(self) -> None:
        """Forget the connection; closing it happens in the background."""
        conn, self._conn = self._conn, None
        if conn is not None and not conn.closed:
            task = asyncio.ensure_future(_close_quietly(conn))
            self._abandoned.add(task)
            task.add_done_callback(self._abandoned.discard)

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), self.deadline)
        for task in list(self._abandoned):
            task.cancel()


async def _close_quietly(conn: psycopg.AsyncConnection[Any]) -> None:
    with contextlib.suppress(Exception):
        await conn.close()


def recognise(exc: BaseException) -> JoblineError | None:
    """A PostgreSQL error that is the server's state, not a bug (``Store.explain``)."""
    if isinstance(exc, psycopg.errors.ReadOnlySqlTransaction):
        return DatabaseReadOnly(
            "the PostgreSQL server is read-only (a standby, or default_transaction_read_only"
            " on): point DATABASE_URL at the primary"
        )
    if isinstance(exc, psycopg.errors.LockNotAvailable):
        return DatabaseLocked(
            "a lock on jobline's tables did not come free in time (lock_timeout): another"
            " session holds it; try again, or find it in pg_stat_activity"
        )
    if isinstance(exc, psycopg.OperationalError) and (
        exc.sqlstate is None or exc.sqlstate.startswith(("08", "57P"))
    ):  # no answer, a broken connection, or a server shutting down or starting
        return StoreUnavailable(f"PostgreSQL is unavailable: {str(exc).strip()}")
    return None
