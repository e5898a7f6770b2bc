"""PostgreSQL flow control: the claim of limited and rate-limited jobs, and unique enqueues.

Concurrent claimers must never both count a free slot: the flow claim runs in a
transaction that first takes one advisory lock, then counts and claims in a second
statement, whose snapshot (READ COMMITTED) sees every claim committed before the lock was
granted. Jobs without flow control never take the lock (``postgres.CLAIM`` skips them).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from jobline.core.unique import Match, plan_unique, unique_key
from jobline.core.values import NewJob
from jobline.store import flow_sql

# The lock; and no JIT: the planner cannot tell the per-queue counts are few, and would
# spend seconds compiling a statement that runs in a millisecond.
FLOW_LOCK = "SELECT pg_advisory_xact_lock(hashtext('jobline.flow')), set_config('jit', 'off', true)"

# Whether any queue has a concurrency limit or a rate: then the flow claim runs too.
QUEUE_RULES = """
SELECT EXISTS (SELECT 1 FROM jobline_queue
               WHERE concurrency_limit IS NOT NULL OR rate_limit IS NOT NULL)
"""

_FILTERS = """
      AND (%(all_queues)s OR j.queue = ANY(%(queues)s::text[]))
      AND j.type = ANY(%(types)s::text[])
      AND j.requires <@ %(tags)s::jsonb
      AND NOT EXISTS (SELECT 1 FROM jobline_queue q WHERE q.name = j.queue AND q.paused)
"""
_COLUMNS = flow_sql.COLUMNS
_ORDER = flow_sql.ORDER

# 1. keys: each flow key with queued jobs (a loose scan of the partial index), its rule
#    from its first job, and how many of its jobs may start now (its budget);
# 2. cand: each key's next jobs up to its budget, and jobs of limited queues;
# 3. a job starts if its rank within the candidates is within every budget it is under:
#    its limit's, its rate's and its queue's. Candidates take turns by key (fairness).
FLOW_CLAIM = f"""
WITH RECURSIVE keys AS (
    (SELECT flow_key AS k, limit_key, limit_n, rate_key, rate_n, rate_per FROM jobline_job
     WHERE status = 'queued' AND flow_key IS NOT NULL ORDER BY flow_key LIMIT 1)
    UNION ALL
    SELECT nxt.* FROM keys CROSS JOIN LATERAL (
        SELECT flow_key, limit_key, limit_n, rate_key, rate_n, rate_per FROM jobline_job
        WHERE status = 'queued' AND flow_key IS NOT NULL AND flow_key > keys.k
        ORDER BY flow_key LIMIT 1) nxt
),
budget AS (
    SELECT k, LEAST(%(limit)s, CASE
        WHEN k = limit_key THEN limit_n - (SELECT count(*) FROM jobline_job r
                                           WHERE r.status = 'running' AND r.limit_key = k)
        ELSE rate_n - (SELECT count(*) FROM jobline_job s WHERE s.rate_key = k
                       AND s.started_at > statement_timestamp() - rate_per * interval '1 second')
        END) AS free
    FROM keys
),
qrules AS (
    SELECT q.name, q.concurrency_limit, q.rate_limit, q.rate_per,
        (SELECT count(*) FROM jobline_job r
         WHERE r.status = 'running' AND r.queue = q.name) AS running,
        (SELECT count(*) FROM jobline_job r WHERE r.status = 'running' AND r.queue = q.name
             AND r.started_at > statement_timestamp() - q.rate_per * interval '1 second')
        + (SELECT count(*) FROM jobline_job f WHERE f.finished_at IS NOT NULL
             AND f.finished_at > statement_timestamp() - q.rate_per * interval '1 second'
             AND f.queue = q.name
             AND f.started_at > statement_timestamp() - q.rate_per * interval '1 second')
         AS starts
    FROM jobline_queue q
    WHERE q.concurrency_limit IS NOT NULL OR q.rate_limit IS NOT NULL
),
found AS (
    SELECT c.* FROM budget CROSS JOIN LATERAL (
        SELECT {_COLUMNS} FROM jobline_job j
        WHERE j.status = 'queued' AND j.flow_key = budget.k AND j.run_at <= now() {_FILTERS}
        ORDER BY j.priority DESC, j.run_at, j.id
        LIMIT GREATEST(budget.free, 0)) c
    UNION ALL
    (SELECT {_COLUMNS} FROM jobline_job j
     WHERE %(queue_rules)s AND j.status = 'queued' AND j.flow_key IS NULL AND j.run_at <= now()
       AND j.queue IN (SELECT name FROM qrules) {_FILTERS}
     ORDER BY j.priority DESC, j.run_at, j.id
     LIMIT %(limit)s)
),
cand AS (
    SELECT found.*,
        row_number() OVER (PARTITION BY flow_key ORDER BY {_ORDER}) AS turn
    FROM found
),
{flow_sql.RANKED},
rate_used AS (
    SELECT k.rate_key, (SELECT count(*) FROM jobline_job s WHERE s.rate_key = k.rate_key
        AND s.started_at > statement_timestamp() - k.rate_per * interval '1 second') AS used
    FROM (SELECT DISTINCT rate_key, rate_per FROM cand WHERE rate_key IS NOT NULL) k
),
limit_used AS (
    SELECT k.limit_key, (SELECT count(*) FROM jobline_job r
        WHERE r.status = 'running' AND r.limit_key = k.limit_key) AS used
    FROM (SELECT DISTINCT limit_key FROM cand WHERE limit_key IS NOT NULL) k
),
{flow_sql.picked("%(limit)s")}
UPDATE jobline_job j
SET status = 'running', attempts = j.attempts + 1, started_at = statement_timestamp(),
    worker_id = %(worker)s
FROM picked WHERE j.id = picked.id AND j.status = 'queued'
RETURNING j.id, j.type, j.queue, j.inputs, j.attempts, j.max_attempts, j.timeout,
    j.pipeline_run_id, j.created_at,
    CASE WHEN j.schedule_id IS NOT NULL
         THEN (SELECT s.name FROM jobline_schedule s WHERE s.id = j.schedule_id) END,
    j.trace_context
"""

# When the next rate window of this worker's types opens (an idle worker sleeps until then).
RATE_DUE = """
SELECT EXTRACT(EPOCH FROM MIN(started_at + rate_per * interval '1 second') - now())::float8
FROM jobline_job
WHERE rate_key IS NOT NULL AND started_at > now() - %(window)s * interval '1 second'
  AND started_at + rate_per * interval '1 second' > now() AND type = ANY(%(types)s::text[])
"""

# Unique keys are locked in one order (their hashes), so concurrent batches never deadlock.
LOCK_UNIQUE = """
SELECT count(pg_advisory_xact_lock(h)) FROM (
    SELECT DISTINCT hashtext('jobline.unique:' || k) AS h FROM unnest(%s::text[]) AS k
    ORDER BY 1) AS keys
"""
FIND_UNIQUE = """
SELECT DISTINCT ON (v.k) v.k, j.id, j.status
FROM jsonb_to_recordset(%s::jsonb) AS v(k text, s text[], sec float8)
JOIN jobline_job j ON j.unique_key = v.k AND j.status = ANY(v.s)
    AND j.created_at > statement_timestamp() - v.sec * interval '1 second'
ORDER BY v.k, j.created_at DESC, j.id DESC
"""
REPLACE_PENDING = """
UPDATE jobline_job j
SET inputs = v.i, run_at = now() + v.d * interval '1 second', priority = v.p,
    flow_key = v.fk, limit_key = v.lk, limit_n = v.ln, rate_key = v.rk, rate_n = v.rn,
    rate_per = v.rp
FROM jsonb_to_recordset(%s::jsonb) AS v(id bigint, i jsonb, d float8, p int, fk text, lk text,
    ln int, rk text, rn int, rp float8)
WHERE j.id = v.id AND j.status = 'queued'
"""


def flow_columns(row: NewJob) -> dict[str, Any]:
    """A row's flow keys in the JSON batch of ``INSERT_JOBS`` (absent keys read as NULL)."""
    f = row.flow
    if f is None:
        return {}
    return {
        "fk": f.claim_key,
        "lk": f.limit_key,
        "ln": f.limit_n,
        "rk": f.rate_key,
        "rn": f.rate_n,
        "rp": f.rate_per,
        "uk": f.unique_key,
    }


def insert_unique(conn: Any, rows: Sequence[NewJob], insert) -> list[tuple[int, bool]]:
    """Lock the rows' unique keys (until the caller's transaction ends), find live matches,
    insert or update: ``(job id, created)`` per row."""
    keys = sorted({unique_key(r) for r in rows})
    conn.execute(LOCK_UNIQUE, [keys])
    wanted = {}
    for r in rows:
        assert r.flow is not None
        wanted[unique_key(r)] = {
            "k": unique_key(r),
            "s": list(r.flow.unique_states),
            "sec": r.flow.unique_seconds,
        }
    found = conn.execute(FIND_UNIQUE, [json.dumps(list(wanted.values()))]).fetchall()
    plan = plan_unique(rows, {k: Match(job_id, status) for k, job_id, status in found})
    if plan.replace:
        updates = [
            {"id": job_id, "i": r.inputs, "d": r.delay, "p": r.priority, **flow_columns(r)}
            for job_id, r in plan.replace
        ]
        conn.execute(REPLACE_PENDING, [json.dumps(updates)])
    inserted = insert(conn, plan.insert) if plan.insert else []
    return plan.answers(inserted)
