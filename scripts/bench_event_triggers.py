"""What job events cost the queue's own statements, with and without a subscription.

The triggers that write job events to the outbox exist only while an active subscription
does (``jobline.store.outbox``). This times the hot path's statements on a migrated
database, alternating the two states in each round: insert 10,000 jobs in batches of 1,000
(as ``enqueue_many``), move them to running in batches of 500 (as claims) and to succeeded
in batches of 500 (as completions). Prints the median rows per second of each, and the
events written (3 per job with a subscription).

    DATABASE_URL=sqlite:////tmp/b.sqlite3 jobline bench --jobs 100   # migrates; once per db
    python scripts/bench_event_triggers.py --sqlite /tmp/b.sqlite3 \\
        --postgres postgresql://postgres@127.0.0.1:5432/b --rounds 9

The database's jobs, subscriptions and outbox are emptied; use a database of its own.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import time
from collections.abc import Callable
from typing import Any

import psycopg

from jobline.store import outbox

N = 10_000
COLUMNS = (
    "type, queue, priority, status, inputs, error, traceback, attempts, max_attempts,"
    " requires, run_at, created_at, cancel_requested, dispatch"
)
INSERT = {
    "postgresql": f"INSERT INTO jobline_job ({COLUMNS}) SELECT 'noop', 'micro', 0, 'queued',"
    " '{}', '', '', 0, 3, '[]', now(), now(), false, '' FROM generate_series(1, 1000)",
    "sqlite": f"INSERT INTO jobline_job ({COLUMNS}) SELECT 'noop', 'micro', 0, 'queued', '{{}}',"
    " '', '', 0, 3, '[]', datetime('now'), datetime('now'), 0, '' FROM (WITH RECURSIVE"
    " n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000) SELECT i FROM n)",
}
MOVE = (
    "UPDATE jobline_job SET status = '{to}', attempts = attempts + 1 WHERE id IN (SELECT id"
    " FROM jobline_job WHERE status = '{of}' AND queue = 'micro' ORDER BY id LIMIT 500)"
)
SUBSCRIBE = (
    "INSERT INTO jobline_subscription (name, is_active, events, job_type, queue, target, url,"
    " sign_with, topic, exchange, routing_key, created_at, updated_at) VALUES ('bench', TRUE,"
    " '[]', '', '', 'webhook', 'https://example.com/', '', '', '', '', CURRENT_TIMESTAMP,"
    " CURRENT_TIMESTAMP)"
)


def timed(execute: Callable[[str], Any], statements: list[str]) -> float:
    started = time.perf_counter()
    for sql in statements:
        execute("BEGIN")
        execute(sql)
        execute("COMMIT")
    return time.perf_counter() - started


def one_round(vendor: str, execute: Callable[[str], Any], subscribed: bool) -> list[float]:
    """Seconds to insert, claim and complete N jobs, and the events written."""
    for sql in ("DELETE FROM jobline_subscription", "DELETE FROM jobline_outbox"):
        execute(sql)
    execute("DELETE FROM jobline_job")
    if subscribed:
        execute(SUBSCRIBE)
    execute("BEGIN")
    outbox.sync_triggers(vendor, _Cursor(execute))  # as saving a subscription does
    execute("COMMIT")
    if vendor == "postgresql":
        execute("VACUUM ANALYZE jobline_job")
    seconds = [
        timed(execute, [INSERT[vendor]] * (N // 1000)),
        timed(execute, [MOVE.format(of="queued", to="running")] * (N // 500)),
        timed(execute, [MOVE.format(of="running", to="succeeded")] * (N // 500)),
    ]
    events = execute("SELECT count(*) FROM jobline_outbox").fetchone()[0]
    return [*seconds, events]


class _Cursor:
    """A DB-API cursor's ``execute`` / ``fetchone`` over a connection's ``execute``."""

    def __init__(self, execute: Callable[[str], Any]):
        self._execute = execute
        self._last: Any = None

    def execute(self, sql: str) -> None:
        self._last = self._execute(sql)

    def fetchone(self) -> Any:
        return self._last.fetchone()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sqlite", help="path of a migrated SQLite database")
    parser.add_argument("--postgres", help="URL of a migrated PostgreSQL database")
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    targets = []
    if args.sqlite:
        db = sqlite3.connect(args.sqlite, isolation_level=None)
        targets.append(("sqlite", db.execute, db.close))
    if args.postgres:
        pg = psycopg.connect(args.postgres, autocommit=True)
        targets.append(("postgresql", pg.execute, pg.close))
    for vendor, execute, close in targets:
        results: dict[bool, list[list[float]]] = {False: [], True: []}
        for _ in range(args.rounds):
            for subscribed in results:
                results[subscribed].append(one_round(vendor, execute, subscribed))
        one_round(vendor, execute, subscribed=False)  # leave it without triggers
        close()
        for subscribed, rows in results.items():
            medians = [statistics.median(r[i] for r in rows) for i in range(3)]
            rates = "  ".join(
                f"{what} {N / s:9,.0f} rows/s"
                for what, s in zip(("insert", "claim", "complete"), medians, strict=True)
            )
            label = "subscribed" if subscribed else "none"
            print(f"{vendor:10} {label:10} {rates}  events {rows[-1][3]:,.0f}", flush=True)


if __name__ == "__main__":
    main()
