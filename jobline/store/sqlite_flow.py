"""SQLite flow control: the claim of limited and rate-limited jobs, and unique enqueues.

SQLite has one writer: the flow claim runs in a ``BEGIN IMMEDIATE`` transaction, so its
counts and its claim see every earlier claim, and its start times only ever grow.
Times are UTC text; a rate's window start is computed with SQLite's ``strftime`` to the
millisecond, one millisecond early, so a start on the edge counts (never one too many).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from jobline.core.unique import Match, plan_unique, unique_key
from jobline.core.values import NewJob
from jobline.store import flow_sql

FLOW_COLUMNS = "flow_key, limit_key, limit_n, rate_key, rate_n, rate_per, unique_key"
FLOW_PARAMS = 7

QUEUE_RULES = """
SELECT EXISTS (SELECT 1 FROM jobline_queue
               WHERE concurrency_limit IS NOT NULL OR rate_limit IS NOT NULL)
"""


def _since(per: str) -> str:
    """SQL: the UTC text ``per`` seconds (an SQL expression) before ``:now``, 1 ms early."""
    return f"strftime('%Y-%m-%d %H:%M:%f', :now, '-' || ({per} + 0.001) || ' seconds')"


_FILTERS = """
      AND (:queues IS NULL OR j.queue IN (SELECT value FROM json_each(:queues)))
      AND j.type IN (SELECT value FROM json_each(:types))
      AND NOT EXISTS (SELECT 1 FROM json_each(j.requires) r
                      WHERE r.value NOT IN (SELECT value FROM json_each(:tags)))
      AND j.queue NOT IN (SELECT name FROM jobline_queue WHERE paused)
"""
_COLUMNS = flow_sql.COLUMNS
_ORDER = flow_sql.ORDER

# The same steps as PostgreSQL's FLOW_CLAIM (jobline.store.postgres_flow), with each key's
# turn from a window over its due jobs instead of a loose index scan.
FLOW_CLAIM = f"""
WITH qrules AS (
    SELECT q.name, q.concurrency_limit, q.rate_limit,
        (SELECT count(*) FROM jobline_job r
         WHERE r.status = 'running' AND r.queue = q.name) AS running,
        (SELECT count(*) FROM jobline_job r WHERE r.status = 'running' AND r.queue = q.name
             AND r.started_at > {_since("q.rate_per")})
        + (SELECT count(*) FROM jobline_job f WHERE f.finished_at IS NOT NULL
             AND f.finished_at > {_since("q.rate_per")} AND f.queue = q.name
             AND f.started_at > {_since("q.rate_per")}) AS starts
    FROM jobline_queue q
    WHERE q.concurrency_limit IS NOT NULL OR q.rate_limit IS NOT NULL
),
cand AS (
    SELECT * FROM (
        SELECT {_COLUMNS}, row_number() OVER (PARTITION BY j.flow_key ORDER BY {_ORDER}) AS turn
        FROM jobline_job j
        WHERE j.status = 'queued' AND j.flow_key IS NOT NULL AND j.run_at <= :now {_FILTERS}
    ) WHERE turn <= :limit
    UNION ALL
    SELECT * FROM (
        SELECT {_COLUMNS}, row_number() OVER (ORDER BY {_ORDER}) AS turn
        FROM jobline_job j
        WHERE :queue_rules AND j.status = 'queued' AND j.flow_key IS NULL AND j.run_at <= :now
          AND j.queue IN (SELECT name FROM qrules) {_FILTERS}
        ORDER BY {_ORDER} LIMIT :limit)
),
{flow_sql.RANKED},
limit_used AS (
    SELECT k.limit_key, (SELECT count(*) FROM jobline_job r WHERE r.status = 'running'
        AND r.limit_key IS NOT NULL AND r.limit_key = k.limit_key) AS used
    FROM (SELECT DISTINCT limit_key FROM cand WHERE limit_key IS NOT NULL) k
),
rate_used AS (
    SELECT k.rate_key, (SELECT count(*) FROM jobline_job s WHERE s.rate_key IS NOT NULL
        AND s.started_at > {_since("k.rate_per")} AND s.rate_key = k.rate_key) AS used
    FROM (SELECT DISTINCT rate_key, rate_per FROM cand WHERE rate_key IS NOT NULL) k
),
{flow_sql.picked(":limit")}
UPDATE jobline_job
SET status = 'running', attempts = attempts + 1, started_at = :now, worker_id = :worker
WHERE id IN (SELECT id FROM picked) AND status = 'queued'
RETURNING id, type, queue, inputs, attempts, max_attempts, timeout, pipeline_run_id, created_at,
    CASE WHEN schedule_id IS NOT NULL
         THEN (SELECT s.name FROM jobline_schedule s WHERE s.id = schedule_id) END,
    trace_context
"""

# This worker's types' starts still inside their rate windows: the earliest window to open.
RATE_STARTS = """
SELECT started_at, rate_per FROM jobline_job
WHERE rate_key IS NOT NULL AND started_at > :since
  AND type IN (SELECT value FROM json_each(:types))
"""


def rate_opens_in(db: sqlite3.Connection, now: datetime, window: float, types: str) -> float | None:
    """Seconds until the earliest rate window of these types opens, or None."""
    since = (now - timedelta(seconds=window)).strftime("%Y-%m-%d %H:%M:%S.%f")
    opens = [
        datetime.fromisoformat(started).replace(tzinfo=UTC) + timedelta(seconds=per)
        for started, per in db.execute(RATE_STARTS, {"since": since, "types": types})
    ]
    later = [t for t in opens if t > now]
    return (min(later) - now).total_seconds() if later else None


def flow_params(row: NewJob) -> tuple[Any, ...]:
    f = row.flow
    assert f is not None
    return (
        f.claim_key,
        f.limit_key,
        f.limit_n,
        f.rate_key,
        f.rate_n,
        f.rate_per,
        f.unique_key,
    )


FIND_UNIQUE = """
SELECT j.id, j.status FROM jobline_job j
WHERE j.unique_key = :k AND j.status IN (SELECT value FROM json_each(:s)) AND j.created_at > :since
ORDER BY j.created_at DESC, j.id DESC LIMIT 1
"""
REPLACE_PENDING = """
UPDATE jobline_job SET inputs = ?, run_at = ?, priority = ?, flow_key = ?, limit_key = ?,
    limit_n = ?, rate_key = ?, rate_n = ?, rate_per = ?, unique_key = ?
WHERE id = ? AND status = 'queued'
"""


def insert_unique(db: Any, rows: Sequence[NewJob], insert, now: datetime) -> list[tuple[int, bool]]:
    """Take the write lock (held until the caller's transaction ends), find live matches,
    insert or update: ``(job id, created)`` per row."""
    db.execute("UPDATE jobline_queue SET name = name WHERE 0")  # the one write lock, now
    matches = {}
    for r in rows:
        assert r.flow is not None and r.flow.unique_seconds is not None
        key = unique_key(r)
        if key in matches:
            continue
        since = now - timedelta(seconds=r.flow.unique_seconds)
        found = db.execute(
            FIND_UNIQUE,
            {
                "k": key,
                "s": json.dumps(r.flow.unique_states),
                "since": since.strftime("%Y-%m-%d %H:%M:%S.%f"),
            },
        ).fetchone()
        if found:
            matches[key] = Match(found[0], found[1])
    plan = plan_unique(rows, matches)
    for job_id, r in plan.replace:
        run_at = (now + timedelta(seconds=max(0.0, r.delay))).strftime("%Y-%m-%d %H:%M:%S.%f")
        db.execute(
            REPLACE_PENDING, (json.dumps(r.inputs), run_at, r.priority, *flow_params(r), job_id)
        )
    inserted = insert(db, plan.insert) if plan.insert else []
    return plan.answers(inserted)
