"""Retention at scale: 10,000,000 finished jobs on PostgreSQL (issue 14, "Measure at scale").

    .venv/bin/python scripts/retention_scale.py --rows 10000000

Creates three databases on ``--server`` (``jl_retention_scale``, the big one,
``jl_retention_scale_1m`` and ``jl_retention_scale_empty``), migrates them, fills the big
one with ``--rows`` finished jobs (one every 100 ms back from now: ~11.6 days for 10M, 2 %
failed, four types, three queues, like ``scripts/bench_ui.py``), then measures, printing
each number as it comes:

1. the web UI's pages (``scripts/bench_ui.py``) and ``/metrics``, on ``--compare`` rows
   (1,000,000) and on the big table, so both are timed on the machine as it is now;
2. ``jobline prune --dry-run`` and ``jobline prune`` with a succeeded retention of
   ``--prune-days`` (the oldest ~1M rows of 10M), time and rows/s;
3. noop drains of ``--drain-jobs`` jobs by one ``jobline worker`` at ``--concurrency``,
   alternating: the empty database, then the big one with a ``jobline scheduler`` running
   beside the worker (its pruner working through the rows past the default 7-day
   retention); ``--rounds`` of each, the median ratio, and the pruner's rows/s.

The databases are dropped at the end unless ``--keep``; ``--skip-fill`` measures a kept one.
The fill drops the job table's indexes and trigger and makes them again afterwards (faster
than updating ten indexes row by row) and prints its progress.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
BIG, EMPTY, SMALL = "jl_retention_scale", "jl_retention_scale_empty", "jl_retention_scale_1m"
CHUNK = 1_000_000

FILL = """
INSERT INTO jobline_job (type, queue, priority, status, inputs, error, traceback, attempts,
    max_attempts, requires, run_at, created_at, started_at, finished_at, cancel_requested)
SELECT (ARRAY['add', 'report', 'sleep', 'http'])[1 + i %% 4],
       (ARRAY['default', 'mail', 'reports'])[1 + i %% 3],
       0, s.status, jsonb_build_object('a', i),
       CASE WHEN s.status = 'failed' THEN 'ValueError: no such order' ELSE '' END,
       '', 1, 3, '[]', t, t, t + interval '5 ms', t + interval '40 ms', false
FROM generate_series(%(start)s::bigint, %(stop)s::bigint) AS i,
     LATERAL (SELECT now() - (%(n)s - i) * interval '100 ms' AS t) AS at,
     LATERAL (SELECT CASE WHEN i %% 50 = 0 THEN 'failed' ELSE 'succeeded' END AS status) s
"""


def url(server: str, name: str) -> str:
    return f"{server.rstrip('/')}/{name}"


def jobline(*args: str, db: str, env: dict[str, str] | None = None, **kw) -> subprocess.Popen:
    environ = os.environ | {"DATABASE_URL": db, "JOBLINE_DATA_DIR": "/tmp/jl-retention-scale"}
    return subprocess.Popen(
        [sys.executable, "-m", "jobline.cli.main", *args], env=environ | (env or {}), **kw
    )


def create(server: str) -> None:
    with psycopg.connect(url(server, "postgres"), autocommit=True) as admin:
        for name in (BIG, EMPTY, SMALL):
            exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if not exists.fetchone():
                admin.execute(f'CREATE DATABASE "{name}"')
    for name in (BIG, EMPTY, SMALL):
        assert jobline("migrate", db=url(server, name), stdout=subprocess.DEVNULL).wait() == 0, (
            f"migrate {name}"
        )


def drop(server: str) -> None:
    with psycopg.connect(url(server, "postgres"), autocommit=True) as admin:
        for name in (BIG, EMPTY, SMALL):
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    print("dropped", BIG, EMPTY, SMALL, flush=True)


def fill(db: str, rows: int) -> None:
    with psycopg.connect(db, autocommit=True) as conn:
        have = conn.execute("SELECT coalesce(max(id), 0) FROM jobline_job").fetchone()[0]
        if have >= rows:
            return
        conn.execute("SET synchronous_commit = off")
        indexes = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'jobline_job'"
            " AND indexname <> 'jobline_job_pkey'"
        ).fetchall()
        for name, _ in indexes:
            conn.execute(f'DROP INDEX "{name}"')
        conn.execute("ALTER TABLE jobline_job DISABLE TRIGGER USER")
        started = time.perf_counter()
        for start in range(have + 1, rows + 1, CHUNK):
            stop = min(rows, start + CHUNK - 1)
            conn.execute(FILL, {"start": start, "stop": stop, "n": rows})
            took = time.perf_counter() - started
            print(f"fill: {stop:,} / {rows:,} rows, {took:.0f} s", flush=True)
        conn.execute("ALTER TABLE jobline_job ENABLE TRIGGER USER")
        conn.execute("SET maintenance_work_mem = '512MB'")
        for name, definition in indexes:
            began = time.perf_counter()
            conn.execute(definition)
            print(f"index {name}: {time.perf_counter() - began:.0f} s", flush=True)
        conn.execute("VACUUM ANALYZE jobline_job")
        print(f"filled in {time.perf_counter() - started:.0f} s", flush=True)


def pages(db: str, rows: int) -> None:
    script = ROOT / "scripts" / "bench_ui.py"
    env = os.environ | {"DATABASE_URL": db, "JOBLINE_DATA_DIR": "/tmp/jl-retention-scale"}
    subprocess.run([sys.executable, str(script), "--jobs", str(rows)], env=env, check=True)
    subprocess.run([sys.executable, __file__, "metrics-page", db], check=True)


def metrics_page(db: str) -> None:
    """``/metrics`` as Prometheus scrapes it (token-less, the service's settings)."""
    os.environ |= {"DATABASE_URL": db, "JOBLINE_DATA_DIR": "/tmp/jl-retention-scale"}
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "jobline.service.settings")
    sys.path.insert(0, str(ROOT / "scripts"))
    import django

    django.setup()
    from bench_ui import timed
    from django.conf import settings
    from django.test import Client

    settings.ALLOWED_HOSTS = ["testserver"]
    print(f"{timed(Client(), '/metrics', 5):8.1f} ms  /metrics", flush=True)


def timed_prune(db: str, days: float, *dry_run: str) -> None:
    env = {"JOBLINE_RETENTION_SUCCEEDED": str(days)}
    started = time.perf_counter()
    run = jobline("prune", *dry_run, db=db, env=env, stdout=subprocess.PIPE, text=True)
    out, _ = run.communicate()
    took = time.perf_counter() - started
    assert run.returncode == 0, out
    removed = int(
        out.split("finished jobs")[0].split()[-1]
    )  # "jobline_job: removed N finished jobs"
    what = "jobline prune " + " ".join(dry_run)
    print(f"{what.strip()}: {took:.1f} s, {removed:,} rows, {removed / took:,.0f} rows/s")
    print("  " + out.strip().replace("\n", "\n  "), flush=True)


def drain_round(db: str, jobs: int, concurrency: int) -> None:
    """One drain on ``db`` (a child process: its own Django settings); prints JSON."""
    os.environ |= {"DATABASE_URL": db, "JOBLINE_DATA_DIR": "/tmp/jl-retention-scale"}
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "jobline.service.settings")
    import django

    django.setup()
    from django.db import connection

    from jobline.models import Job
    from jobline.services.enqueue import enqueue_many

    queue = f"scale-{uuid.uuid4().hex[:8]}"
    ids = [j.id for j in enqueue_many("noop", [{}] * jobs, queue=queue, max_attempts=1)]
    with connection.cursor() as cursor:  # fresh statistics on both tables, as autovacuum
        cursor.execute("ANALYZE jobline_job")  # would give them soon: the same plans
    worker = jobline(
        "worker", "--queue", queue, "-c", str(concurrency), "--max-jobs", str(jobs), db=db
    )
    assert worker.wait() == 0, "the worker failed"
    rows = Job.objects.filter(pk__gte=min(ids), pk__lte=max(ids))  # by id: no queue scan
    assert rows.filter(status="succeeded").count() == jobs
    times = list(rows.values_list("started_at", "finished_at"))
    wall = (max(t[1] for t in times) - min(t[0] for t in times)).total_seconds()
    rows.delete()
    print(json.dumps({"rate": jobs / wall}))


def one_drain(db: str, args: argparse.Namespace) -> float:
    out = subprocess.run(
        [sys.executable, __file__, "drain-round", db, str(args.drain_jobs), str(args.concurrency)],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])["rate"]


def old_rows(db: str, fill_max: int) -> int:
    with psycopg.connect(db) as conn:
        return conn.execute(
            "SELECT count(*) FROM jobline_job WHERE id <= %s", (fill_max,)
        ).fetchone()[0]


def drains(server: str, args: argparse.Namespace) -> None:
    big, empty = url(server, BIG), url(server, EMPTY)
    rates: dict[str, list[float]] = {"empty": [], "10M + pruner": []}
    pruned, pruning_s = 0, 0.0
    for n in range(args.rounds):
        rates["empty"].append(one_drain(empty, args))
        before = old_rows(big, args.rows)
        scheduler = jobline("scheduler", db=big, stderr=subprocess.DEVNULL)
        began = time.perf_counter()
        rates["10M + pruner"].append(one_drain(big, args))
        scheduler.terminate()
        scheduler.wait()
        pruning_s += time.perf_counter() - began
        pruned += before - old_rows(big, args.rows)
        print(
            f"round {n + 1}: empty {rates['empty'][-1]:,.0f} jobs/s, "
            f"10M + pruner {rates['10M + pruner'][-1]:,.0f} jobs/s",
            flush=True,
        )
    medians = {k: statistics.median(v) for k, v in rates.items()}
    ratio = medians["10M + pruner"] / medians["empty"]
    print(f"noop drain medians: {medians}; 10M/empty = {ratio:.1%}")
    print(
        f"background pruner: {pruned:,} rows in {pruning_s:.0f} s, {pruned / pruning_s:,.0f} rows/s"
    )


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "drain-round":
        return drain_round(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    if len(sys.argv) > 1 and sys.argv[1] == "metrics-page":
        return metrics_page(sys.argv[2])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--drain-jobs", type=int, default=50_000)
    parser.add_argument("--concurrency", type=int, default=500)
    parser.add_argument("--prune-days", type=float, default=10.5)
    parser.add_argument("--skip", action="append", default=[], choices=["pages", "prune", "drain"])
    parser.add_argument("--skip-fill", action="store_true")
    parser.add_argument(
        "--compare", type=int, default=1_000_000, help="rows of a table to time the pages on too"
    )
    parser.add_argument("--keep", action="store_true", help="do not drop the databases")
    args = parser.parse_args()
    try:
        create(args.server)
        if not args.skip_fill:
            fill(url(args.server, BIG), args.rows)
        if "pages" not in args.skip:
            if args.compare:  # the same pages on a smaller table, on the machine as it is now
                fill(url(args.server, SMALL), args.compare)
                pages(url(args.server, SMALL), args.compare)
            pages(url(args.server, BIG), args.rows)
        if "prune" not in args.skip:
            timed_prune(url(args.server, BIG), args.prune_days, "--dry-run")
            timed_prune(url(args.server, BIG), args.prune_days)
        if "drain" not in args.skip:
            drains(args.server, args)
    finally:
        if not args.keep:
            drop(args.server)


if __name__ == "__main__":
    main()
