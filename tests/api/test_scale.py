"""On real SQLite and PostgreSQL: list pages read a sliver of a million jobs; bulk actions are
single statements."""

from __future__ import annotations

import functools
import json

import pytest
from django.db import connections
from django.test.utils import CaptureQueriesContext

import jobline
from jobline.api.jobs import page
from jobline.api.schemas import JobQuery
from jobline.models import Job
from jobline.services import actions
from tests.conftest import ALL_DATABASES

pytestmark = ALL_DATABASES

ROWS = 1_000_000
TYPES = ("add", "noop", "sleep", "http")
STATUSES = ("succeeded", "succeeded", "succeeded", "failed", "queued")


def _fill(alias: str, rows: int) -> None:
    """``rows`` jobs cloned from one enqueued job in one statement, with mixed types, statuses
    and queues (every column copied, so it keeps working as the table grows)."""
    seed = jobline.enqueue("noop", using=alias).id
    columns = [f.column for f in Job._meta.concrete_fields if f.column not in ("id", "type")]
    columns = [c for c in columns if c not in ("status", "queue")]
    vendor = connections[alias].vendor
    series = (
        "generate_series(1, %s) AS g(n)"
        if vendor == "postgresql"
        else "(WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < %s) "
        "SELECT n FROM s) AS g"
    )
    pick = lambda values: "CASE g.n %% {} {} END".format(  # noqa: E731
        len(values), " ".join(f"WHEN {i} THEN '{v}'" for i, v in enumerate(values))
    )
    queue = "CASE WHEN g.n %% 100 = 0 THEN 'rare' ELSE 'default' END"
    sql = (
        f"INSERT INTO jobline_job ({', '.join(columns)}, type, status, queue) "
        f"SELECT {', '.join(f'j.{c}' for c in columns)}, {pick(TYPES)}, {pick(STATUSES)}, "
        f"{queue} FROM jobline_job j, {series} WHERE j.id = %s"
    )
    with connections[alias].cursor() as cursor:
        cursor.execute(sql, [rows, seed])
        cursor.execute("ANALYZE" if vendor == "sqlite" else "ANALYZE jobline_job")


def _work(alias: str, run) -> float:
    """What ``run()`` reads, as a fraction of what reading the whole job table costs.

    Work, not wall-clock time, so a busy machine cannot fail it: on PostgreSQL the buffers the
    page's statements touch (EXPLAIN ANALYZE BUFFERS) against the table's pages; on SQLite the
    virtual machine's steps against those of a full scan.
    """
    connection = connections[alias]
    if connection.vendor == "postgresql":
        with CaptureQueriesContext(connection) as captured:
            run()
        blocks = 0
        with connection.cursor() as cursor:
            for query in captured.captured_queries:
                cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {query['sql']}")
                plan = cursor.fetchone()[0]
                plan = (json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]
                blocks += plan["Shared Hit Blocks"] + plan["Shared Read Blocks"]
            cursor.execute(
                "SELECT pg_relation_size('jobline_job') / current_setting('block_size')::int"
            )
            table = cursor.fetchone()[0]
        return blocks / table
    steps = [0]

    def count() -> int:
        steps[0] += 1
        return 0

    connection.ensure_connection()
    raw = connection.connection
    raw.set_progress_handler(count, 100)
    try:
        run()
        used, steps[0] = steps[0], 0
        with connection.cursor() as cursor:
            cursor.execute("SELECT max(length(inputs)) FROM jobline_job")
        return used / steps[0]
    finally:
        raw.set_progress_handler(None, 0)


@pytest.mark.timeout(600)
def test_list_pages_read_a_sliver_of_a_million_jobs(alias):
    _fill(alias, ROWS)
    deep = Job.objects.using(alias).order_by("-id").values_list("id", flat=True)[ROWS // 2]
    queries = [
        {},
        {"status": ["failed"]},
        {"status": ["queued", "failed"], "type": ["http"]},
        {"type": ["sleep"], "cursor": deep},
        {"queue": ["rare"]},
        {"status": ["succeeded"], "queue": ["rare"], "limit": 500, "cursor": deep},
    ]
    for params in queries:
        query = JobQuery(**params)
        found = page(query, alias)
        assert len(found["items"]) == query.limit and found["next_cursor"], params
        for job in found["items"]:
            assert not query.status or job.status in query.status
            assert not query.type or job.type in query.type
            assert not query.cursor or job.id < query.cursor
        # An index serves every page: a full scan would read the whole table (1.0).
        work = _work(alias, functools.partial(page, query, alias))
        assert work < 0.1, f"{params}: read {work:.1%} of the table"


def test_bulk_actions_are_one_statement_whatever_they_match(alias):
    jobline.enqueue_many("noop", [{}] * 3000, queue="bulk", using=alias)
    jobline.enqueue("noop", using=alias)
    selection = Job.objects.using(alias).filter(queue="bulk")
    with CaptureQueriesContext(connections[alias]) as captured:
        assert actions.cancel_jobs(selection, using=alias) == 3000
    updates = [q["sql"] for q in captured.captured_queries if q["sql"].startswith("UPDATE")]
    assert len(updates) == 2  # queued ones, then running ones; no list of 3,000 ids
    assert all(len(sql) < 1000 for sql in updates)
    assert actions.retry_jobs(selection.filter(status="cancelled"), using=alias) == 3000
    assert Job.objects.using(alias).filter(status="queued").count() == 3001
