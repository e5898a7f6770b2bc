"""Flow control across a fleet of real processes, on SQLite and PostgreSQL.

Limits are checked from the jobs' own start and end times (each job writes them): a job's
run lies inside its claim-to-completion span, which is what the limit bounds. Rates are
checked from the database's ``started_at``, the start time the rate bounds (a job's own
clock reads later, by however long its worker took to start it).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import jobline
from jobline.models import Job, Worker
from tests.conftest import ALL_DATABASES, ROOT, jobline_process, stop_process, wait_until

pytestmark = ALL_DATABASES

# Leases long enough that a worker starved of CPU on a busy machine keeps its jobs: a lapse
# would run a job twice, which is the lease's business, not the limit's.
STEADY = {"JOBLINE_LEASE_SECONDS": "15", "JOBLINE_HEARTBEAT_SECONDS": "1"}


def statuses(alias: str) -> dict[str, int]:
    rows = Job.objects.using(alias).values_list("status", flat=True)
    counts: dict[str, int] = defaultdict(int)
    for status in rows:
        counts[status] += 1
    return dict(counts)


def run_times(folder: Path) -> dict[int, tuple[float, float]]:
    """``{job id: (start, end)}`` of each job's last attempt, from every process's file."""
    events: dict[int, dict[str, float]] = defaultdict(dict)
    for f in folder.glob("*.times"):
        for line in f.read_text().splitlines():
            e = json.loads(line)
            events[e["id"]][e["event"]] = e["t"]
    return {i: (e["start"], e["end"]) for i, e in events.items() if "end" in e}


def most_at_once(spans: list[tuple[float, float]]) -> int:
    edges = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])  # ends first
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    return peak


def start_workers(env: dict[str, str], alias: str, n: int = 3) -> list[subprocess.Popen[str]]:
    workers = [jobline_process(env, "worker", "--concurrency", "200") for _ in range(n)]
    up = Worker.objects.using(alias).filter(pid__in=[w.pid for w in workers])
    wait_until(lambda: up.count() == n, timeout=60, what=f"{n} workers registered")
    return workers


def test_a_limit_holds_per_key_across_three_workers(alias, service_env, runlog):
    env = service_env(alias, **STEADY)
    accounts = [f"acct-{i}" for i in range(5)]
    seconds = 0.1
    workers = start_workers(env, alias)
    try:
        jobs = jobline.enqueue_many(
            "limited", [{"account": a, "seconds": seconds} for a in accounts] * 60, using=alias
        )
        wait_until(
            lambda: statuses(alias) == {"succeeded": 300}, timeout=180, what="300 jobs succeeded"
        )
    finally:
        for w in workers:
            stop_process(w)
    times = run_times(runlog)
    account = {j.id: a for j, a in zip(jobs, accounts * 60, strict=True)}
    by_key: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for job_id, span in times.items():
        by_key[account[job_id]].append(span)
    assert {k: most_at_once(v) for k, v in by_key.items()} == dict.fromkeys(accounts, 2)
    assert set(Job.objects.using(alias).values_list("attempts", flat=True)) == {1}
    # 60 jobs per account, 2 at a time: 30 rounds of 0.1 s is what the limit allows.
    first = min(s for s, _ in times.values())
    last = max(e for _, e in times.values())
    allowed = 60 / 2 * seconds
    print(f"{alias}: 300 jobs in {last - first:.2f} s; the limit allows {allowed:.2f} s")
    assert last - first < allowed * 3


def test_a_rate_holds_across_three_workers_and_is_reached(alias, service_env, runlog):
    env = service_env(alias, **STEADY)
    n, rate = 100, 20
    workers = start_workers(env, alias)
    try:
        jobline.enqueue_many("rated", [{"n": i} for i in range(n)], using=alias)
        wait_until(
            lambda: statuses(alias) == {"succeeded": n}, timeout=60, what=f"{n} jobs succeeded"
        )
    finally:
        for w in workers:
            stop_process(w)
    starts = sorted(
        s.timestamp() for s in Job.objects.using(alias).values_list("started_at", flat=True)
    )
    busiest = max(sum(1 for t in starts if s <= t < s + 1.0) for s in starts)
    assert busiest <= rate
    # The last window's jobs start once (n / rate - 1) windows have passed.
    achieved = (n - rate) / (starts[-1] - starts[0])
    print(f"{alias}: busiest 1 s window {busiest} starts; achieved {achieved:.1f}/s")
    assert achieved >= 0.9 * rate


ENQUEUE_UNIQUE = """
import os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "jobline.service.settings")
import django
django.setup()
from jobline.services.enqueue import enqueue
by, keys = int(sys.argv[1]), int(sys.argv[2])
print(sum(enqueue("unique_report", {"report": r, "by": by}).created for r in range(keys)))
"""


def test_unique_under_concurrent_enqueues_from_several_processes(alias, service_env):
    env = service_env(alias)
    keys = 30
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", ENQUEUE_UNIQUE, str(by), str(keys)],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for by in range(4)
    ]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    assert sum(int(out.split()[-1]) for out in outputs) == keys  # each key created once
    reports = list(Job.objects.using(alias).values_list("inputs__report", flat=True))
    assert sorted(reports) == list(range(keys))


def test_a_killed_worker_s_slots_come_back_after_its_lease(alias, service_env, runlog):
    env = service_env(alias)
    hold = {"account": "a", "first_hold": 60}  # the first attempt would hold its slot 60 s
    held = {j.id for j in jobline.enqueue_many("limited", [hold, hold], using=alias)}
    doomed = jobline_process(env, "worker", "--concurrency", "10")
    wait_until(lambda: statuses(alias).get("running") == 2, what="2 jobs running")
    doomed.kill()  # SIGKILL: its 2 slots stay taken until its lease (3 s) lapses
    doomed.communicate(timeout=10)
    late = jobline.enqueue("limited", {"account": "a"}, using=alias)
    survivor = jobline_process(env, "worker", "--concurrency", "10")
    try:
        wait_until(lambda: statuses(alias) == {"succeeded": 3}, timeout=60, what="all 3 succeeded")
    finally:
        stop_process(survivor)
    attempts = dict(Job.objects.using(alias).values_list("id", "attempts"))
    assert {attempts[i] for i in held} == {2}  # taken back from the lost worker
    assert attempts[late.id] == 1
