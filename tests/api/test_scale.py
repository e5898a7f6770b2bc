"""On real SQLite and PostgreSQL: list pages stay fast on a million jobs; bulk actions are
single statements."""

from __future__ import annotations

import time

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


@pytest.mark.timeout(600)
def test_list_pages_stay_fast_on_a_million_jobs(alias):
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
        page(query, alias)  # warm the cache, as a live database would be
        started = time.perf_counter()
        found = page(query, alias)
        took = time.perf_counter() - started
        assert len(found["items"]) == query.limit and found["next_cursor"], params
        assert took < 0.25, f"{params}: {took:.3f} s"
        for job in found["items"]:
            assert not query.status or job.status in query.status
            assert not query.type or job.type in query.type
            assert not query.cursor or job.id < query.cursor


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
