"""The scheduler for real: ``jobline trigger`` and ``jobline scheduler`` processes, the loop.

``JOBLINE_TEST_INTERVAL_SECONDS`` (default 4) stretches the interval schedule that three
scheduler processes share, e.g. to 30 for a longer run.
"""

from __future__ import annotations

import os
import signal
import socket
from datetime import timedelta

from django.db.models import Count
from django.utils import timezone

import jobline
from jobline.models import Job, Schedule, ScheduleRun
from tests.conftest import ALL_DATABASES, jobline_process, wait_until
from tests.integration.scheduler_helpers import running_scheduler

pytestmark = ALL_DATABASES


def _started(proc) -> str:
    """Read a scheduler's output until it says it started (and is listening); returns it."""
    seen = []
    while "scheduler started" not in (line := proc.stdout.readline()):
        assert line, f"the scheduler exited before it started:\n{''.join(seen)}"
        seen.append(line)
    return "".join([*seen, line])


def _stop(procs, started: list[str] | None = None) -> list[str]:
    """SIGTERM each; every one must exit cleanly. ``started``: output already read."""
    for p in procs:
        p.send_signal(signal.SIGTERM)
    heads = started or [""] * len(procs)
    outputs = [head + p.communicate(timeout=30)[0] for p, head in zip(procs, heads, strict=True)]
    for p, out in zip(procs, outputs, strict=True):
        assert p.returncode == 0, out
        assert "Traceback" not in out and "level=ERROR" not in out, out
    return outputs


def test_trigger_fires_what_is_due_once_and_exits(alias, service_env):
    jobline.schedule("due", "add", {"a": 1}, at=timezone.now() - timedelta(seconds=1), using=alias)
    jobline.schedule("later", "add", {"a": 1}, in_="1h", using=alias)
    env = service_env(alias)
    first = jobline_process(env, "trigger")
    out = first.communicate(timeout=60)[0]
    assert first.returncode == 0, out
    (job,) = Job.objects.using(alias).filter(schedule__name="due")
    assert "due @ " in out and f": job {job.id}" in out and out.endswith("1 jobs enqueued\n")
    again = jobline_process(env, "trigger")
    out = again.communicate(timeout=60)[0]
    assert again.returncode == 0 and out.endswith("0 jobs enqueued\n"), out
    assert not Job.objects.using(alias).filter(schedule__name="later").exists()


def test_three_scheduler_processes_fire_each_occurrence_exactly_once(alias, service_env):
    env = service_env(alias)
    procs = [jobline_process(env, "scheduler") for _ in range(3)]
    started = ["", "", ""]
    try:
        started = [_started(p) for p in procs]  # all three compete, none still importing
        now = timezone.now()
        due = now.replace(microsecond=0) + timedelta(seconds=3)
        span = int(os.environ.get("JOBLINE_TEST_INTERVAL_SECONDS", "4"))
        Schedule.objects.using(alias).bulk_create(  # like 200 rows written by another program
            Schedule(
                name=f"timer-{i}",
                job_type="noop",
                kind="at",
                rule=due.isoformat(),
                start_at=now,
                next_run_at=due,
            )
            for i in range(200)
        )
        every = jobline.schedule(
            "every-second",
            "noop",
            every=1,
            start_at=due,
            end_at=due + timedelta(seconds=span),
            using=alias,
        )
        active = Schedule.objects.using(alias).filter(is_active=True)
        wait_until(lambda: not active.exists(), 30 + span)
    finally:
        outputs = _stop(procs, started)
    per_timer = (
        Job.objects.using(alias)
        .filter(schedule__name__startswith="timer-")
        .values("schedule")
        .annotate(n=Count("id"))
    )
    assert len(per_timer) == 200 and {row["n"] for row in per_timer} == {1}
    occurrences = ScheduleRun.objects.using(alias).filter(schedule=every)
    assert sorted(occurrences.values_list("scheduled_for", flat=True)) == [
        due + timedelta(seconds=k) for k in range(span + 1)
    ]
    assert Job.objects.using(alias).filter(schedule=every).count() == span + 1
    fired_lines = sum(out.count("logger=jobline.scheduler fired ") for out in outputs)
    assert fired_lines == 200 + span + 1  # each occurrence logged by exactly one process


def test_running_scheduler_fires_on_time_and_wakes_up_for_changes(alias):
    with running_scheduler(alias) as scheduler:
        soon = jobline.schedule("soon", "noop", in_="0.3s", using=alias)
        wait_until(lambda: Job.objects.using(alias).filter(schedule=soon).exists(), 5)
        run = ScheduleRun.objects.using(alias).get(schedule=soon)
        assert timedelta(0) <= run.fired_at - soon.next_run_at < timedelta(seconds=0.5)

        # Asleep until January; an edit moves the run to now, with no restart.
        far = jobline.schedule("far", "noop", cron="0 0 1 1 *", using=alias)
        wait_until(lambda: scheduler.fired == 1)
        far.kind, far.rule = "at", (timezone.now() + timedelta(seconds=0.2)).isoformat()
        far.save(using=alias)
        wait_until(lambda: Job.objects.using(alias).filter(schedule=far).exists(), 5)


def test_jobline_up_runs_the_scheduler_with_the_worker(alias, service_env):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    up = jobline_process(service_env(alias), "up", "--port", str(port))
    try:
        timer = jobline.schedule("soon", "add", {"a": 41}, in_="0.5s", using=alias)
        done = Job.objects.using(alias).filter(schedule=timer, status="succeeded")
        wait_until(done.exists, 30)
        assert done.get().outputs == 42
    finally:
        (out,) = _stop([up])
    assert "fired soon @ " in out
