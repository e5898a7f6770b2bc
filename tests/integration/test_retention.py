"""Retention on SQLite and PostgreSQL: `jobline prune [--dry-run]`, the scheduler's pruner."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import psycopg
from django.db import connections
from django.utils import timezone

import jobline
from jobline.models import Job, JobLog, PipelineRun, Schedule, ScheduleRun
from jobline.services.retention import LOCK_KEY, prune
from jobline.store.postgres import conninfo
from tests.conftest import ALL_DATABASES, ROOT, jobline_process, stop_process, wait_until

pytestmark = ALL_DATABASES


def _job(alias: str, status: str, age_days: float, **extra) -> Job:
    now = timezone.now()
    finished = now - timedelta(days=age_days) if status not in ("queued", "running") else None
    return Job.objects.using(alias).create(
        type="noop",
        status=status,
        run_at=now - timedelta(days=age_days),
        created_at=now - timedelta(days=age_days),
        finished_at=finished,
        **extra,
    )


def _world(alias: str) -> dict[str, object]:
    """Rows on both sides of the default retention (succeeded 7 d, failed/cancelled 30 d)."""
    gone = [_job(alias, "succeeded", 8) for _ in range(5)]
    gone += [_job(alias, "failed", 31), _job(alias, "cancelled", 40)]
    kept = [
        _job(alias, "succeeded", 6),
        _job(alias, "failed", 20),
        _job(alias, "queued", 100),  # unfinished jobs are never pruned, however old
        _job(alias, "running", 100),
    ]
    now = timezone.now()
    old_run = PipelineRun.objects.using(alias).create(
        pipeline="p", definition={}, status="succeeded", created_at=now - timedelta(days=9),
        started_at=now - timedelta(days=9), finished_at=now - timedelta(days=8),
    )  # fmt: skip
    live_run = PipelineRun.objects.using(alias).create(
        pipeline="p", definition={}, status="running", created_at=now - timedelta(days=9),
        started_at=now - timedelta(days=9),
    )  # fmt: skip
    run_jobs = [
        _job(alias, "succeeded", 8, pipeline_run=old_run, pipeline_step="a", pipeline_index=i)
        for i in range(3)
    ]
    # An old finished step of a run still going stays: the run counts its steps' jobs.
    kept.append(_job(alias, "succeeded", 8, pipeline_run=live_run, pipeline_step="a"))
    schedule = jobline.schedule("hourly", "noop", every="1h", using=alias)
    old_fire = ScheduleRun.objects.using(alias).create(
        schedule=schedule, scheduled_for=now - timedelta(days=31),
        fired_at=now - timedelta(days=31), job=gone[0],
    )  # fmt: skip
    new_fire = ScheduleRun.objects.using(alias).create(
        schedule=schedule, scheduled_for=now - timedelta(days=1), fired_at=now - timedelta(days=1),
        job=gone[1],  # a recent entry of a job that goes: kept, its job cleared
    )  # fmt: skip
    Schedule.objects.using(alias).filter(pk=schedule.pk).update(last_job=gone[2])
    return {
        "gone": gone,
        "kept": kept,
        "old_run": old_run,
        "live_run": live_run,
        "run_jobs": run_jobs,
        "schedule": schedule,
        "old_fire": old_fire,
        "new_fire": new_fire,
    }


def _prune(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jobline.cli.main", "prune", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_prune_dry_run_counts_then_prune_removes_in_batches(alias, service_env):
    world = _world(alias)
    before = Job.objects.using(alias).count()
    env = service_env(alias, JOBLINE_PRUNE_BATCH="2")  # several batches of each kind
    dry = _prune(env, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "jobline_job: would remove 7 finished jobs (succeeded 5, failed 1, cancelled 1)" in (
        dry.stdout
    )
    assert "jobline_pipelinerun: would remove 1 finished runs and their 3 jobs" in dry.stdout
    assert "jobline_schedulerun: would remove 1 history entries" in dry.stdout
    assert Job.objects.using(alias).count() == before  # nothing removed

    done = _prune(env)
    assert done.returncode == 0, done.stderr
    assert "retention (days; None keeps forever): succeeded 7.0, failed 30.0" in done.stdout
    assert "jobline_job: removed 7 finished jobs (succeeded 5, failed 1, cancelled 1)" in (
        done.stdout
    )
    assert "jobline_pipelinerun: removed 1 finished runs and their 3 jobs" in done.stdout
    assert "jobline_schedulerun: removed 1 history entries" in done.stdout
    left = set(Job.objects.using(alias).values_list("id", flat=True))
    assert left == {j.id for j in world["kept"]}
    assert list(PipelineRun.objects.using(alias).values_list("id", flat=True)) == [
        world["live_run"].id
    ]
    assert list(ScheduleRun.objects.using(alias).values_list("id", "job")) == [
        (world["new_fire"].id, None)
    ]
    assert Schedule.objects.using(alias).get().last_job_id is None

    again = _prune(env)
    assert "jobline_job: removed 0 finished jobs" in again.stdout


def test_zero_keeps_forever(alias, service_env):
    _job(alias, "succeeded", 400)
    _job(alias, "failed", 400)
    env = service_env(alias, JOBLINE_RETENTION_SUCCEEDED="0")
    out = _prune(env).stdout
    assert "removed 1 finished jobs (succeeded 0, failed 1, cancelled 0)" in out
    assert list(Job.objects.using(alias).values_list("status", flat=True)) == ["succeeded"]


def test_the_scheduler_prunes_in_the_background(alias, service_env, tmp_path):
    old = [_job(alias, "succeeded", 8).id for _ in range(5)]
    recent = _job(alias, "succeeded", 1).id
    env = service_env(alias, JOBLINE_PRUNE_INTERVAL="0.5", JOBLINE_PRUNE_BATCH="2")
    log = tmp_path / "scheduler.log"
    with log.open("w") as out:
        scheduler = jobline_process(env, "scheduler", stdout=out)
    try:
        # The pass's line comes when it is over: a job made before could go in the same pass.
        wait_until(
            lambda: "pruned jobline_job: removed 5 finished jobs" in log.read_text(),
            timeout=60,
            what="old jobs pruned by the scheduler",
        )
        assert not Job.objects.using(alias).filter(id__in=old).exists()
        # A job that ages past the retention goes at a later pass.
        later = _job(alias, "failed", 31).id
        wait_until(
            lambda: not Job.objects.using(alias).filter(id=later).exists(),
            timeout=60,
            what="the next pass",
        )
    finally:
        stop_process(scheduler)
    assert scheduler.returncode == 0, log.read_text()
    assert "pruned jobline_job: removed 1 finished jobs" in log.read_text()
    assert list(Job.objects.using(alias).values_list("id", flat=True)) == [recent]


def test_one_pruner_at_a_time_on_postgres(pg_alias, service_env):
    _job(pg_alias, "succeeded", 8)
    holder = psycopg.connect(conninfo(connections[pg_alias].settings_dict), autocommit=True)
    try:
        holder.execute("SELECT pg_advisory_lock(%s)", [LOCK_KEY])
        busy = _prune(service_env(pg_alias))
        assert busy.returncode == 1
        assert "another process is pruning now; nothing done" in busy.stderr
        assert Job.objects.using(pg_alias).count() == 1
    finally:
        holder.close()
    assert _prune(service_env(pg_alias)).returncode == 0
    assert Job.objects.using(pg_alias).count() == 0


def test_log_lines_go_with_their_jobs(alias):
    world = _world(alias)
    gone, step, kept = world["gone"][0], world["run_jobs"][0], world["kept"][0]
    at = timezone.now()
    JobLog.objects.using(alias).bulk_create(
        JobLog(job=job, attempt=1, seq=n, level="INFO", text=f"line {n}", created_at=at)
        for job in (gone, step, kept)
        for n in (1, 2)
    )
    prune(alias)
    left = JobLog.objects.using(alias).values_list("job_id", flat=True)
    assert sorted(left) == [kept.id, kept.id]
