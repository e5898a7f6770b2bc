"""``jobline bench``: enqueue N jobs, drain them with W worker processes, report the numbers.

Rates and latencies come from the database's own timestamps (``created_at``,
``started_at``, ``finished_at``), so worker start-up and polling of the bench itself are
not counted. Every job must end ``succeeded`` after exactly one attempt.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time
import uuid
from dataclasses import dataclass

from django.core.management import call_command
from django.db import connection
from tqdm import tqdm

from jobline.bench.pipelines import run_pipeline_bench
from jobline.bench.targets import dispatch_target
from jobline.bench.workers import peak_rss_mb, percentile, start_workers, stop
from jobline.models import Job
from jobline.services.enqueue import enqueue, enqueue_many

ENQUEUE_BATCH = 50_000  # rows per enqueue_many call (sent in pipelined statements)


@dataclass(frozen=True)
class Kind:
    type: str
    inputs: dict
    keys: int = 0  #: inputs k = 0 .. keys - 1 in turn (bench_limited's limit key)

    def inputs_list(self, n: int, start: int) -> list[dict]:
        if not self.keys:
            return [self.inputs] * n
        return [{**self.inputs, "k": (start + i) % self.keys} for i in range(n)]

    @classmethod
    def parse(cls, text: str) -> Kind:
        if text == "noop":
            return cls("noop", {})
        if text.startswith("sleep:"):
            try:
                return cls("sleep", {"seconds": float(text.split(":", 1)[1])})
            except ValueError:
                pass
        raise ValueError(
            f"--kind must be noop, sleep:SECONDS, http, kafka or pipeline, got {text!r}"
        )


def run_bench(args: argparse.Namespace) -> None:
    if args.kind == "pipeline":
        return run_pipeline_bench(args)
    if args.kind in ("http", "kafka"):
        with dispatch_target(args.kind) as (job_type, inputs, env):
            return _run(args, Kind(job_type, inputs), env)
    if args.limit is not None:
        return _run(args, *_limited(args))
    return _run(args, Kind.parse(args.kind), {})


def _limited(args: argparse.Namespace) -> tuple[Kind, dict[str, str]]:
    """noop jobs under ``Limit(--limit, key="k")`` over ``--keys`` values, in this process
    and in the workers (``jobline.bench.jobs``)."""
    if args.kind != "noop" or args.limit < 1 or args.keys < 1:
        raise ValueError("--limit N (>= 1) and --keys K (>= 1) go with --kind noop")
    env = {"JOBLINE_BENCH_LIMIT": str(args.limit), "JOBLINE_EXTRA_APPS": "jobline.bench"}
    os.environ.update(env)
    from jobline.bench import jobs  # noqa: F401  (registers bench_limited with the limit)

    return Kind("bench_limited", {}, keys=args.keys), env


def _run(args: argparse.Namespace, kind: Kind, env: dict[str, str]) -> None:
    if args.jobs < 1 or args.workers < 1 or args.concurrency < 1:
        raise ValueError("--jobs, --workers and --concurrency must be >= 1")
    call_command("migrate", interactive=False, verbosity=0)
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    quiet = args.no_progress
    limit = f"  limit: {args.limit} per key over {args.keys} keys" if args.limit else ""
    print(
        f"database: {connection.vendor}  kind: {args.kind}{limit}  jobs: {args.jobs}  "
        f"workers: {args.workers} x concurrency {args.concurrency}  queue: {queue}"
    )
    try:
        enqueue_rate = _enqueue(kind, args.jobs, queue, quiet)
        workers = start_workers(args, queue, env)
        try:
            _wait_finished(queue, args.jobs, quiet, workers)
            drained = _drain_report(queue, args.jobs)
            latency = _idle_latency(kind, queue, args.latency_samples, quiet)
            rss = peak_rss_mb(workers)
        finally:
            stop(workers)
    finally:
        Job.objects.filter(queue=queue).delete()
    print(f"enqueue (bulk, batches of {ENQUEUE_BATCH}): {enqueue_rate:,.0f} jobs/s")
    print(
        f"drain: {drained['rate']:,.0f} jobs/s ({args.jobs} jobs in {drained['wall']:.3f} s, "
        "first start to last finish)"
    )
    print(f"start latency under load: p50 {drained['p50']:.1f} ms  p99 {drained['p99']:.1f} ms")
    if latency:
        print(
            f"idle start latency ({len(latency)} jobs, enqueued one at a time): "
            f"p50 {percentile(latency, 50):.1f} ms  p95 {percentile(latency, 95):.1f} ms  "
            f"p99 {percentile(latency, 99):.1f} ms"
        )
    print(f"worker peak RSS: {', '.join(f'{r:.0f} MB' for r in rss)}")
    print("verified: every job succeeded after exactly one attempt")


def _enqueue(kind: Kind, n: int, queue: str, quiet: bool) -> float:
    started = time.perf_counter()
    with tqdm(total=n, desc="enqueue", unit="job", disable=quiet) as bar:
        for start in range(0, n, ENQUEUE_BATCH):
            size = min(ENQUEUE_BATCH, n - start)
            enqueue_many(kind.type, kind.inputs_list(size, start), queue=queue, max_attempts=1)
            bar.update(size)
    return n / (time.perf_counter() - started)


def _wait_finished(queue: str, n: int, quiet: bool, workers: list[subprocess.Popen[bytes]]) -> None:
    with tqdm(total=n, desc="drain", unit="job", disable=quiet) as bar:
        done = 0
        while done < n:
            if all(w.poll() is not None for w in workers):  # else this would wait forever
                codes = [w.returncode for w in workers]
                raise RuntimeError(f"the workers exited (codes {codes}) with jobs left")
            time.sleep(0.1)
            now = Job.objects.filter(queue=queue, finished_at__isnull=False).count()
            bar.update(now - done)
            done = now


def _drain_report(queue: str, n: int) -> dict[str, float]:
    rows = Job.objects.filter(queue=queue)
    bad = rows.exclude(status="succeeded").count() + rows.exclude(attempts=1).count()
    if bad:
        raise RuntimeError(f"{bad} jobs did not succeed after exactly one attempt")
    times = list(rows.values_list("run_at", "started_at", "finished_at"))
    first = min(t[1] for t in times)
    last = max(t[2] for t in times)
    wall = (last - first).total_seconds()
    # Latency under load: from when the job was due (or the drain began) to its start.
    waits = [(s - max(r, first)).total_seconds() * 1000 for r, s, _ in times]
    return {
        "wall": wall,
        "rate": n / wall if wall else float("inf"),
        "p50": percentile(waits, 50),
        "p99": percentile(waits, 99),
    }


def _idle_latency(kind: Kind, queue: str, samples: int, quiet: bool) -> list[float]:
    """Enqueue jobs one at a time into idle workers; time from commit to start."""
    job_type = kind.type if kind.keys else "noop"  # the limited noop: through the flow claim
    ids = []
    for i in tqdm(range(samples), desc="idle latency", unit="job", disable=quiet):
        job = enqueue(job_type, kind.inputs_list(1, i)[0] if kind.keys else None, queue=queue)
        ids.append(job.id)
        deadline = time.monotonic() + 5
        while not Job.objects.filter(pk=job.id, started_at__isnull=False).exists():
            if time.monotonic() > deadline:
                raise RuntimeError(f"job {job.id} did not start within 5 s")
            time.sleep(0.002)
        time.sleep(0.01)  # let the worker go idle again
    rows = Job.objects.filter(pk__in=ids).values_list("created_at", "started_at")
    return [(s - c).total_seconds() * 1000 for c, s in rows]
