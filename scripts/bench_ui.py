"""How fast the web UI's pages answer on a big jobs table (PostgreSQL).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/jobline_ui_1m \\
        python scripts/bench_ui.py --jobs 1000000

Fills the table up to ``--jobs`` rows (one INSERT ... SELECT; most succeeded, 2 % failed,
some queued and running, over the last ~28 hours, four types, three queues), then times
each page in-process through Django's test client, signed in as staff: one warm-up, then
the median of ``--repeat`` requests. The dashboard's few-second cache is cleared before each
of its requests, so its numbers are cold.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "jobline.service.settings")

FILL = """
INSERT INTO jobline_job (type, queue, priority, status, inputs, error, traceback, attempts,
    max_attempts, requires, run_at, created_at, started_at, finished_at, cancel_requested)
SELECT (ARRAY['add', 'report', 'sleep', 'http'])[1 + i %% 4],
       (ARRAY['default', 'mail', 'reports'])[1 + i %% 3],
       0, s.status, jsonb_build_object('a', i),
       CASE WHEN s.status = 'failed' THEN 'ValueError: no such order' ELSE '' END,
       '', 1, 3, '[]', t, t,
       CASE WHEN s.status <> 'queued' THEN t + interval '5 ms' END,
       CASE WHEN s.status IN ('succeeded', 'failed') THEN t + interval '40 ms' END,
       false
FROM generate_series(%(start)s, %(n)s) AS i,
     LATERAL (SELECT now() - (%(n)s - i) * interval '100 ms' AS t) AS at,
     LATERAL (SELECT CASE WHEN i %% 50 = 0 THEN 'failed' WHEN i > %(n)s - 2000 THEN 'queued'
                          WHEN i > %(n)s - 2100 THEN 'running' ELSE 'succeeded' END AS status) s
"""


def fill(target: int) -> None:
    from django.db import connection

    from jobline.models import Job

    have = Job.objects.count()
    if have >= target:
        return
    print(f"filling jobline_job: {have:,} -> {target:,} rows", flush=True)
    with connection.cursor() as cursor:
        cursor.execute(FILL, {"start": have + 1, "n": target})
        cursor.execute("VACUUM ANALYZE jobline_job")


def timed(client, url: str, repeat: int, before=None) -> float:
    times = []
    for _ in range(repeat + 1):
        if before:
            before()
        started = time.perf_counter()
        response = client.get(url)
        times.append(time.perf_counter() - started)
        assert response.status_code == 200, (url, response.status_code)
    return statistics.median(times[1:]) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.utils import timezone

    from jobline.models import Job
    from jobline.web import stats

    if connection.vendor != "postgresql":
        raise SystemExit("set DATABASE_URL to a PostgreSQL database")
    settings.ALLOWED_HOSTS = ["testserver"]
    call_command("migrate", verbosity=0)
    fill(args.jobs)
    staff, _ = User.objects.get_or_create(username="bench-ui", defaults={"is_staff": True})
    client = Client()
    client.force_login(staff)
    newest = Job.objects.order_by("-id").values_list("id", flat=True).first()
    middle = newest // 2
    long_ago = (timezone.now() - timedelta(hours=26)).strftime("%Y-%m-%dT%H:%M")
    failed = Job.objects.filter(status="failed").order_by("-id").values_list("id", flat=True)[5000]
    pages = [
        ("jobs list, first page", "/jobs/"),
        ("jobs list, page in the middle (before=)", f"/jobs/?before={middle}"),
        ("jobs list, going back (after=)", f"/jobs/?after={middle}"),
        ("status = failed", "/jobs/?status=failed"),
        ("status = failed, deep page", f"/jobs/?status=failed&before={failed}"),
        ("type = report", "/jobs/?type=report"),
        ("queue = mail", "/jobs/?queue=mail"),
        ("type + status + queue", "/jobs/?type=add&status=failed&queue=reports"),
        ("created in the last hour", "/jobs/?range=1h"),
        ("created more than 26 hours ago", f"/jobs/?to={long_ago}&tz=0"),
        ("a queue no job is in (a scan of every job)", "/jobs/?queue=nowhere"),
        ("200 rows a page", "/jobs/?limit=200"),
        ("bulk confirmation count (capped)", "/jobs/count/?status=failed&action=retry"),
        ("a job", f"/jobs/{middle}/"),
    ]
    print(f"database: postgresql  jobs: {Job.objects.count():,}  (median of {args.repeat})")
    for label, url in pages:
        print(f"{timed(client, url, args.repeat):8.1f} ms  {label}  {url}")
    for window in ("1h", "24h"):
        ms = timed(client, f"/?window={window}", args.repeat, before=stats.clear_cache)
        print(f"{ms:8.1f} ms  dashboard, {window} window, uncached  /?window={window}")


if __name__ == "__main__":
    main()
