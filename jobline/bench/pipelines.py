"""``jobline bench --kind pipeline``: chains of no-op steps, run by W worker processes.

The step-to-step latency is the time from a step's ``finished_at`` to its child's
``started_at``: the completion's transaction (which enqueues the child), the wake-up and
the claim. It is measured under load (every run enqueued at once) and idle (runs one at
a time). Every run must succeed with each step run once. On PostgreSQL the tables are
vacuumed before each phase, so that dead rows of earlier phases (or runs) do not count.
"""

from __future__ import annotations

import argparse
import time
import uuid
from collections.abc import Iterable

from django.core.management import call_command
from django.db import connection
from tqdm import tqdm

from jobline.bench.workers import peak_rss_mb, percentile, start_workers, stop
from jobline.models import Job, PipelineRun
from jobline.pipelines import Pipeline, PipelineSpec, Step


def chain(name: str, steps: int, queue: str) -> Pipeline:
    return Pipeline(
        PipelineSpec(
            name=name,
            steps=tuple(
                Step(
                    f"s{i}", "noop", after=(f"s{i - 1}",) if i else (), queue=queue, max_attempts=1
                )
                for i in range(steps)
            ),
        )
    )


def run_pipeline_bench(args: argparse.Namespace) -> None:
    if args.runs < 1 or args.steps < 2 or args.workers < 1 or args.concurrency < 1:
        raise ValueError("--runs, --workers and --concurrency must be >= 1, --steps >= 2")
    call_command("migrate", interactive=False, verbosity=0)
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    pipeline = chain(queue, args.steps, queue)
    quiet = args.no_progress
    print(
        f"database: {connection.vendor}  kind: pipeline (chain of {args.steps} noop steps)  "
        f"runs: {args.runs}  workers: {args.workers} x concurrency {args.concurrency}"
    )
    try:
        _vacuum()
        started = time.perf_counter()
        ids = [pipeline.enqueue().id for _ in tqdm(range(args.runs), "enqueue", disable=quiet)]
        enqueue_rate = args.runs / (time.perf_counter() - started)
        workers = start_workers(args, queue)
        try:
            _wait(ids, quiet)
            loaded = _report(ids, args.steps)
            _vacuum()
            idle_runs = max(1, args.latency_samples // (args.steps - 1))
            idle = _report(_one_at_a_time(pipeline, idle_runs, quiet), args.steps)
            rss = peak_rss_mb(workers)
        finally:
            stop(workers)
    finally:
        PipelineRun.objects.filter(pipeline=queue).delete()
        Job.objects.filter(queue=queue).delete()
    print(f"enqueue: {enqueue_rate:,.0f} runs/s (one transaction each)")
    print(
        f"drain: {loaded['steps_per_s']:,.0f} steps/s ({args.runs * args.steps} steps in "
        f"{loaded['wall']:.3f} s, first start to last finish)"
    )
    for label, found in (("under load", loaded), (f"idle ({idle_runs} runs one at a time)", idle)):
        print(
            f"step-to-step latency {label}: p50 {found['p50']:.1f} ms  p99 {found['p99']:.1f} ms"
            f"  (run duration p50 {found['run_p50']:.0f} ms)"
        )
    print(f"worker peak RSS: {', '.join(f'{r:.0f} MB' for r in rss)}")
    print("verified: every run succeeded, every step ran once, after exactly one attempt")


def _vacuum() -> None:
    """Clear dead rows left by earlier phases, as autovacuum would, so phases compare."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE jobline_job, jobline_pipelinerun")


def _wait(ids: list[int], quiet: bool) -> None:
    with tqdm(total=len(ids), desc="runs", unit="run", disable=quiet) as bar:
        done = 0
        while done < len(ids):
            time.sleep(0.1)
            now = PipelineRun.objects.filter(id__in=ids).exclude(status="running").count()
            bar.update(now - done)
            done = now


def _one_at_a_time(pipeline: Pipeline, n: int, quiet: bool) -> list[int]:
    ids = []
    for _ in tqdm(range(n), desc="idle latency", unit="run", disable=quiet):
        run = pipeline.enqueue()
        deadline = time.monotonic() + 30
        while PipelineRun.objects.filter(pk=run.id, status="running").exists():
            if time.monotonic() > deadline:
                raise RuntimeError(f"pipeline run {run.id} did not finish within 30 s")
            time.sleep(0.005)
        ids.append(run.id)
    return ids


def _report(ids: Iterable[int], steps: int) -> dict[str, float]:
    ids = list(ids)
    runs = PipelineRun.objects.filter(id__in=ids)
    if runs.exclude(status="succeeded").exists():
        raise RuntimeError("some pipeline runs did not succeed")
    jobs = Job.objects.filter(pipeline_run_id__in=ids)
    if jobs.count() != len(ids) * steps or jobs.exclude(status="succeeded", attempts=1).exists():
        raise RuntimeError("every step must run once and succeed after exactly one attempt")
    times: dict[int, dict[int, tuple]] = {}
    rows = jobs.values_list("pipeline_run_id", "pipeline_step", "started_at", "finished_at")
    for run, step, start, finish in rows:
        times.setdefault(run, {})[int(step[1:])] = (start, finish)
    gaps = [
        (t[i][0] - t[i - 1][1]).total_seconds() * 1000
        for t in times.values()
        for i in range(1, steps)
    ]
    first = min(t[0][0] for t in times.values())
    last = max(t[steps - 1][1] for t in times.values())
    wall = (last - first).total_seconds()
    durations = [
        (r.finished_at - r.created_at).total_seconds() * 1000
        for r in runs.only("created_at", "finished_at")
    ]
    return {
        "p50": percentile(gaps, 50),
        "p99": percentile(gaps, 99),
        "run_p50": percentile(durations, 50),
        "wall": wall,
        "steps_per_s": len(ids) * steps / wall if wall else float("inf"),
    }
