"""Driving ``jobline`` processes against the private cluster, and reading what happened."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import psycopg

from tests.conftest import ROOT


class Fleet:
    """``jobline`` processes on one database, each logging to a file of its own."""

    def __init__(self, env: dict[str, str], logs: Path):
        self.env = env
        self.logs = logs
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, *args: str, **env: str) -> subprocess.Popen[bytes]:
        with open(self.logs / f"{name}.log", "ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "jobline.cli.main", *args],
                env={**self.env, **env},
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.procs[name] = proc
        return proc

    def dead(self) -> dict[str, int]:
        return {n: p.returncode for n, p in self.procs.items() if p.poll() is not None}

    def tails(self, lines: int = 15) -> str:
        out = []
        for name in self.procs:
            text = (self.logs / f"{name}.log").read_text(errors="replace").splitlines()
            out.append(f"--- {name} (last {lines} lines)\n" + "\n".join(text[-lines:]))
        return "\n".join(out)

    def stop(self, grace: float = 30) -> None:
        """SIGTERM to all, then SIGKILL to those still running after ``grace`` s in all."""
        for p in self.procs.values():
            if p.poll() is None:
                p.terminate()
        deadline = time.monotonic() + grace
        for p in self.procs.values():
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def run_django(env: dict[str, str], code: str, *args: str) -> None:
    """Python ``code`` with Django set up on ``env``'s database, in a process of its own (the
    tests' own Django is on other databases). ``args`` are its ``sys.argv[1:]``."""
    subprocess.run(
        [sys.executable, "-c", f"import django; django.setup()\n{code}", *args],
        env={**env, "DJANGO_SETTINGS_MODULE": "jobline.service.settings"},
        cwd=ROOT,
        check=True,
        timeout=300,
    )


def enqueue(env: dict[str, str], job_type: str, inputs: list[dict], queue: str = "default"):
    code = (
        "import json, sys, jobline\n"
        "jobline.enqueue_many(sys.argv[1], json.loads(sys.argv[2]), queue=sys.argv[3])"
    )
    run_django(env, code, job_type, json.dumps(inputs), queue)


def add_timers(env: dict[str, str], seconds: list[float]) -> None:
    """One-off schedules ``timer-<i>`` of ``stamp`` jobs, due after each of ``seconds``."""
    code = (
        "import sys, jobline\n"
        "for i, s in enumerate(sys.argv[1:]):\n"
        "    jobline.schedule(f'timer-{i}', 'stamp', in_=float(s))"
    )
    run_django(env, code, *map(str, seconds))


def query(url: str, sql: str, params: tuple = ()) -> list[tuple] | None:
    """Rows, or None while the database cannot be reached (during an outage)."""
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            return conn.execute(sql, params).fetchall()
    except psycopg.OperationalError:
        return None


def statuses(url: str) -> dict[str, int] | None:
    rows = query(url, "SELECT status, count(*) FROM jobline_job GROUP BY status")
    return None if rows is None else dict(rows)


def wait_progress(
    what: str,
    done: Callable[[], bool],
    progress: Callable[[], object],
    fleet: Fleet,
    *,
    stall: float = 120,
    timeout: float = 900,
) -> None:
    """Wait for ``done``; fail if ``progress`` stays the same for ``stall`` s or a process dies.

    Waits on progress, not on a fixed time: a slow machine passes, a stuck fleet fails.
    """
    started = last_change = time.monotonic()
    seen = progress()
    while not done():
        if dead := fleet.dead():
            raise AssertionError(f"{what}: processes died {dead}\n{fleet.tails()}")
        now = time.monotonic()
        if (current := progress()) != seen:
            seen, last_change = current, now
        if now - last_change > stall or now - started > timeout:
            raise AssertionError(f"{what}: stuck at {seen}\n{fleet.tails()}")
        time.sleep(0.2)


def attempts(runlog: Path) -> dict[int, list[tuple[float, float, str]]]:
    """``{job id: [(start, end, pid), ...]}`` from the ``stamp`` logs; end inf if unknown."""
    open_: dict[tuple[int, str], float] = {}
    out: dict[int, list[tuple[float, float, str]]] = defaultdict(list)
    for f in sorted(runlog.glob("stamp-*.log")):
        pid = f.stem.removeprefix("stamp-")
        for line in f.read_text().splitlines():
            job_id, event, at = line.split()
            if event == "start":
                open_[(int(job_id), pid)] = float(at)
            else:
                out[int(job_id)].append((open_.pop((int(job_id), pid)), float(at), pid))
    for (job_id, pid), start in open_.items():
        out[job_id].append((start, math.inf, pid))
    return out


def overlaps(runlog: Path) -> dict[int, list[tuple[float, float, str]]]:
    """Jobs two of whose attempts ran at the same time."""
    found = {}
    for job_id, runs in attempts(runlog).items():
        runs.sort()
        ends = -math.inf
        for start, end, _ in runs:
            if start < ends:
                found[job_id] = runs
            ends = max(ends, end)
    return found


def env_for(service_env, url: str, **extra: str) -> dict[str, str]:
    """A ``jobline`` process's environment on ``url``, with the fault tests' job types."""
    env = service_env("default", DATABASE_URL=url, JOBLINE_IMPORT="tests.faults.jobs", **extra)
    os.makedirs(env["JOBLINE_TEST_RUNLOG"], exist_ok=True)
    return env
