"""Timer lateness: how long after its due time is a timer's job enqueued?

Starts ``--schedulers`` ``jobline scheduler`` processes on ``DATABASE_URL``, then creates
``--timers`` timers one at a time, ``--gap`` seconds apart, each due ``--delay`` seconds
after its creation (so the schedulers sleep between runs, as in production), and reports
the lateness percentiles:

* **enqueued** (PostgreSQL only): from the due time to the commit of the job, as seen by
  this process through ``LISTEN jobline_jobs`` (notified by the job table's trigger at commit);
* **fired**: from the due time to the scheduler's reading of the clock, awake;
* **began**: from the due time to the start of the firing transaction (the job's created_at).

Usage (the database is migrated; timers, jobs and history it creates are deleted after):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python scripts/bench_timers.py --timers 500 --schedulers 1
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def report(name: str, values: list[float]) -> None:
    print(
        f"{name:>9}: p50 {percentile(values, 50):6.1f} ms  p99 {percentile(values, 99):6.1f} ms"
        f"  max {max(values):6.1f} ms  (n={len(values)})"
    )


class CommitWatcher:
    """Stamps each job of ``queue`` with the time its commit was announced (PostgreSQL)."""

    def __init__(self, dsn: str, queue: str):
        import psycopg

        self.seen: dict[int, float] = {}
        self._queue = queue
        self._listen = psycopg.connect(dsn, autocommit=True)
        self._query = psycopg.connect(dsn, autocommit=True)
        self._listen.execute("LISTEN jobline_jobs")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for _ in self._listen.notifies(timeout=0.2, stop_after=1):
                now = time.time()
                # All of them: concurrent schedulers may commit ids out of order.
                rows = self._query.execute(
                    "SELECT id FROM jobline_job WHERE queue = %s", (self._queue,)
                ).fetchall()
                for (job_id,) in rows:
                    self.seen.setdefault(job_id, now)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._listen.close()
        self._query.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--timers", type=int, default=500)
    parser.add_argument("--schedulers", type=int, default=1)
    parser.add_argument("--delay", type=float, default=2.0, help="seconds from creation to due")
    parser.add_argument("--gap", type=float, default=0.05, help="seconds between creations")
    args = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "jobline.service.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    import jobline
    from jobline.models import Job, Schedule, ScheduleRun
    from jobline.store.postgres import conninfo

    call_command("migrate", interactive=False, verbosity=0)
    run = uuid.uuid4().hex[:8]
    queue = f"bench-{run}"
    env = {**os.environ, "LOG_LEVEL": "WARNING"}
    cmd = [sys.executable, "-m", "jobline.cli.main", "scheduler"]
    schedulers = [subprocess.Popen(cmd, env=env, cwd=ROOT) for _ in range(args.schedulers)]
    watcher = None
    if connection.vendor == "postgresql":
        watcher = CommitWatcher(conninfo(connection.settings_dict), queue)
    try:
        probe = jobline.schedule(f"bench-{run}-probe", "noop", in_=0.1, queue=queue)
        _wait(lambda: Job.objects.filter(schedule=probe).exists(), "the schedulers to start")
        timers = []
        for i in range(args.timers):
            timers.append(jobline.schedule(f"bench-{run}-{i}", "noop", in_=args.delay, queue=queue))
            time.sleep(args.gap)
        ids = [t.id for t in timers]
        _wait(
            lambda: Job.objects.filter(schedule_id__in=ids).count() == len(ids),
            "every timer to fire",
        )
        time.sleep(0.5)  # the last commit notifications
        runs = ScheduleRun.objects.filter(schedule_id__in=ids).values_list(
            "scheduled_for", "fired_at", "job_id", "job__created_at"
        )
        print(
            f"database: {connection.vendor}  timers: {args.timers}  schedulers: {args.schedulers}"
            f"  due {args.delay} s after creation, created every {args.gap * 1000:.0f} ms"
        )
        report("fired", [(f - s).total_seconds() * 1000 for s, f, _, _ in runs])
        report("began", [(c - s).total_seconds() * 1000 for s, _, _, c in runs])
        if watcher is not None:
            report(
                "enqueued",
                [
                    (watcher.seen[j] - s.timestamp()) * 1000
                    for s, _, j, _ in runs
                    if j in watcher.seen
                ],
            )
    finally:
        if watcher is not None:
            watcher.close()
        for p in schedulers:
            p.terminate()
        for p in schedulers:
            p.wait(30)
        Job.objects.filter(queue=queue).delete()
        Schedule.objects.filter(name__startswith=f"bench-{run}-").delete()


def _wait(predicate, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)


if __name__ == "__main__":
    main()
