"""Soak: a mixed load for a given time, to see whether jobline's processes grow.

Starts ``--workers`` ``jobline worker`` processes and one ``jobline scheduler`` on
``DATABASE_URL`` (migrated first), and a loopback HTTP receiver of its own, then keeps
enqueueing, until ``--duration`` is over:

* plain jobs (``noop``, and ``sleep`` of 10-50 ms), ``--rate`` per second in all;
* timers: ``http`` jobs to the receiver due 1-5 s later (lateness = start - due time);
* an interval schedule (every 2 s) of ``http`` jobs, fired by the scheduler;
* runs of a 3-step pipeline of ``noop`` jobs, one every 2 s.

Every ``--interval`` seconds it prints one line: jobs finished per second, timer lateness
(p50 / p99), the queue's backlog, the workers' and scheduler's RSS (sum, MB), their open
file descriptors, and on PostgreSQL the server's connections to the database. Then a
summary. The exit status is 1 if, after ``--warmup``, RSS or connections grew more than
``--max-growth`` % (median of the last fifth of the samples against the first fifth), if a
job failed, or if a process died; else 0. Everything it created is deleted at the end.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python scripts/soak.py --duration 3600 --interval 60 --warmup 300
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TICK = 0.2  #: seconds between enqueue rounds


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=float, default=3600, help="seconds of load")
    p.add_argument("--interval", type=float, default=60, help="seconds per report line")
    p.add_argument("--warmup", type=float, default=300, help="seconds not judged for growth")
    p.add_argument("--workers", type=int, default=3)
    p.add_argument("--concurrency", type=int, default=50)
    p.add_argument("--rate", type=float, default=100, help="plain jobs per second")
    p.add_argument("--timers", type=float, default=5, help="timers per second")
    p.add_argument("--max-growth", type=float, default=10, help="percent allowed after warm-up")
    args = p.parse_args(argv)
    if args.warmup >= args.duration:
        p.error("--warmup must be shorter than --duration")
    return args


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def proc_status(pid: int) -> tuple[float, int]:
    """RSS in MB and open file descriptors of a live process."""
    rss = 0.0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


@dataclass
class Sample:
    at: float  #: seconds since the start
    finished: int
    rss: float
    fds: int
    connections: int | None


@dataclass
class Soak:
    args: argparse.Namespace
    queue: str = field(default_factory=lambda: f"soak-{uuid.uuid4().hex[:8]}")
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    lateness: list[float] = field(default_factory=list)

    def start_processes(self, env: dict[str, str]) -> None:
        worker = [sys.executable, "-m", "jobline.cli.main", "worker", "--queue", self.queue]
        worker += ["--concurrency", str(self.args.concurrency)]
        for _ in range(self.args.workers):
            self.procs.append(subprocess.Popen(worker, env=env, cwd=ROOT))
        scheduler = [sys.executable, "-m", "jobline.cli.main", "scheduler"]
        self.procs.append(subprocess.Popen(scheduler, env=env, cwd=ROOT))

    def dead(self) -> list[int]:
        return [p.pid for p in self.procs if p.poll() is not None]

    def stop_processes(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                p.kill()


def connections_now() -> int | None:
    """Server connections to this database (PostgreSQL), not counting this script's."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


def enqueue_round(soak: Soak, url: str, pipeline, owed: dict[str, float]) -> None:
    """Enqueue what is owed for one tick (fractions carry over to the next)."""
    import jobline

    args = soak.args
    owed["plain"] += args.rate * TICK
    owed["timers"] += args.timers * TICK
    owed["pipeline"] += 0.5 * TICK
    plain, owed["plain"] = int(owed["plain"]), owed["plain"] % 1
    if plain:
        half = plain // 2
        jobline.enqueue_many("noop", [{}] * (plain - half), queue=soak.queue)
        sleeps = [{"seconds": random.uniform(0.01, 0.05)} for _ in range(half)]
        jobline.enqueue_many("sleep", sleeps, queue=soak.queue)
    for _ in range(int(owed["timers"])):
        jobline.enqueue("http", {"url": url}, queue=soak.queue, delay=random.uniform(1, 5))
    owed["timers"] %= 1
    for _ in range(int(owed["pipeline"])):
        pipeline.enqueue()
    owed["pipeline"] %= 1


def measure(soak: Soak, started: float, since: float) -> str:
    """Take a sample; one report line for the interval since ``since`` (monotonic)."""
    from django.db.models import F
    from django.utils import timezone

    from jobline.models import Job

    now = time.monotonic()
    jobs = Job.objects.filter(queue=soak.queue)
    finished = jobs.filter(finished_at__isnull=False).count()
    window_start = timezone.now() - timedelta(seconds=now - since)
    delayed = jobs.filter(
        type="http", started_at__gte=window_start, run_at__gt=F("created_at")
    ).values_list("run_at", "started_at")
    late = [(s - r).total_seconds() * 1000 for r, s in delayed]
    soak.lateness.extend(late)
    stats = [proc_status(p.pid) for p in soak.procs if p.poll() is None]
    sample = Sample(
        at=now - started,
        finished=finished,
        rss=sum(r for r, _ in stats),
        fds=sum(f for _, f in stats),
        connections=connections_now(),
    )
    previous = soak.samples[-1] if soak.samples else None
    soak.samples.append(sample)
    rate = (finished - (previous.finished if previous else 0)) / (now - since)
    backlog = jobs.filter(status="queued", run_at__lte=timezone.now()).count()
    conns = "" if sample.connections is None else f"  pg connections {sample.connections}"
    return (
        f"t={sample.at:7.0f}s  {rate:7.1f} jobs/s  timer lateness p50 {percentile(late, 50):6.1f}"
        f" ms p99 {percentile(late, 99):6.1f} ms  backlog {backlog:6d}  RSS {sample.rss:7.1f} MB"
        f"  fds {sample.fds:4d}{conns}"
    )


def growth(values: list[float]) -> float:
    """Percent from the median of the first fifth to the median of the last fifth."""
    n = max(1, len(values) // 5)
    first, last = statistics.median(values[:n]), statistics.median(values[-n:])
    return 100 * (last - first) / first if first else 0.0


def verdict(soak: Soak) -> list[str]:
    """The reasons to fail, if any; prints the summary."""
    args = soak.args
    judged = [s for s in soak.samples if s.at >= args.warmup]
    failures = []
    total = soak.samples[-1].finished if soak.samples else 0
    print(
        f"summary: {total} jobs finished in {args.duration:.0f} s "
        f"({total / args.duration:.1f} jobs/s), timer lateness p50 "
        f"{percentile(soak.lateness, 50):.1f} ms p99 {percentile(soak.lateness, 99):.1f} ms "
        f"max {max(soak.lateness, default=float('nan')):.1f} ms (n={len(soak.lateness)})"
    )
    series = {"RSS": [s.rss for s in judged], "fds": [s.fds for s in judged]}
    if judged and judged[0].connections is not None:
        series["pg connections"] = [float(s.connections or 0) for s in judged]
    for name, values in series.items():
        if len(values) < 2:
            failures.append(f"too few samples after warm-up to judge {name} ({len(values)})")
            continue
        pct = growth(values)
        print(f"after warm-up: {name} {values[0]:.1f} -> {values[-1]:.1f} ({pct:+.1f} %, medians)")
        if name != "fds" and pct > args.max_growth:
            failures.append(f"{name} grew {pct:.1f} % after warm-up (> {args.max_growth} %)")
    return failures


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "jobline.service.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    from jobline.bench.pipelines import chain
    from jobline.bench.targets import loopback_server
    from jobline.models import Job, PipelineRun, Schedule
    from jobline.scheduler.api import schedule

    call_command("migrate", interactive=False, verbosity=0)
    soak = Soak(args)
    allowed = f"{os.environ.get('JOBLINE_HTTP_ALLOWED_NETWORKS', '')} 127.0.0.0/8".strip()
    os.environ["JOBLINE_HTTP_ALLOWED_NETWORKS"] = allowed
    from django.conf import settings

    settings.JOBLINE_HTTP_ALLOWED_NETWORKS = allowed  # this process enqueues http jobs too
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JOBLINE_PRUNE_INTERVAL": "0"}
    print(f"soak: queue {soak.queue}, {args.workers} workers x {args.concurrency} + a scheduler")
    failures: list[str] = []
    with loopback_server() as url:
        pipeline = chain(f"{soak.queue}-chain", 3, soak.queue)
        timer = schedule(soak.queue, "http", {"url": url}, every=2, queue=soak.queue)
        soak.start_processes(env)
        started = last = time.monotonic()
        owed = {"plain": 0.0, "timers": 0.0, "pipeline": 0.0}
        try:
            while (now := time.monotonic()) - started < args.duration:
                if dead := soak.dead():
                    failures.append(f"processes {dead} died")
                    break
                enqueue_round(soak, url, pipeline, owed)
                if now - last >= args.interval:
                    print(measure(soak, started, last), flush=True)
                    last = now
                time.sleep(max(0.0, TICK - (time.monotonic() - now)))
            if not failures:
                print(measure(soak, started, last), flush=True)
        finally:
            soak.stop_processes()
            Schedule.objects.filter(pk=timer.pk).update(is_active=False)
        failed = Job.objects.filter(queue=soak.queue, status="failed").count()
        if failed:
            failures.append(f"{failed} jobs failed")
        failures += verdict(soak)
        PipelineRun.objects.filter(pipeline=pipeline.name).delete()
        Job.objects.filter(queue=soak.queue).delete()
        Schedule.objects.filter(pk=timer.pk).delete()
    for reason in failures:
        print(f"FAIL: {reason}")
    print("OK" if not failures else "FAILED")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
