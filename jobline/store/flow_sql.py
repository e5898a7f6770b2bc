"""The steps of the flow claim that PostgreSQL and SQLite write the same way.

Given ``cand`` (the candidates: each key's next jobs, and jobs of limited queues, with a
``turn`` within their key), ``qrules`` (limited queues with their running jobs and starts)
and ``limit_used`` / ``rate_used`` (each candidate key's running jobs and starts in its
window): a candidate starts if its rank among the candidates of its limit, its rate and its
queue is within what each has left. Keys take turns (fairness).
"""

from __future__ import annotations

COLUMNS = """j.id, j.queue, j.priority, j.run_at, j.flow_key, j.limit_key, j.limit_n,
        j.rate_key, j.rate_n, j.rate_per"""

ORDER = "priority DESC, run_at, id"

RANKED = f"""
ranked AS (
    SELECT cand.*,
        row_number() OVER (PARTITION BY limit_key ORDER BY {ORDER}) AS lrank,
        row_number() OVER (PARTITION BY rate_key ORDER BY {ORDER}) AS rrank,
        row_number() OVER (PARTITION BY queue ORDER BY {ORDER}) AS qrank
    FROM cand
)"""


def picked(limit: str) -> str:
    """The ``picked`` step, up to ``limit`` (the driver's placeholder) jobs."""
    return f"""
picked AS (
    SELECT ranked.id FROM ranked
    LEFT JOIN limit_used lu ON lu.limit_key = ranked.limit_key
    LEFT JOIN rate_used ru ON ru.rate_key = ranked.rate_key
    LEFT JOIN qrules qr ON qr.name = ranked.queue
    WHERE (ranked.limit_key IS NULL OR ranked.lrank <= ranked.limit_n - lu.used)
      AND (ranked.rate_key IS NULL OR ranked.rrank <= ranked.rate_n - ru.used)
      AND (qr.concurrency_limit IS NULL OR ranked.qrank <= qr.concurrency_limit - qr.running)
      AND (qr.rate_limit IS NULL OR ranked.qrank <= qr.rate_limit - qr.starts)
    ORDER BY ranked.priority DESC, ranked.turn, ranked.run_at, ranked.id
    LIMIT {limit}
)"""
