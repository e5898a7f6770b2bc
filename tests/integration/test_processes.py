"""Real worker processes: crash recovery, graceful shutdown, several workers, jobline up."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx

import jobline
from jobline.models import Job, Worker
from tests.conftest import ALL_DATABASES, ROOT, jobline_process, read_runlog, wait_until

pytestmark = ALL_DATABASES


def statuses(alias: str) -> dict[str, int]:
    rows = Job.objects.using(alias).values_list("status", flat=True)
    out: dict[str, int] = {}
    for s in rows:
        out[s] = out.get(s, 0) + 1
    return out


def stop(proc: subprocess.Popen[str], timeout: float = 30) -> str:
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=timeout)
    return out


def test_killed_worker_loses_nothing(alias, service_env, runlog):
    env = service_env(alias)
    jobline.enqueue_many("record", [{"seconds": 1.5}] * 12, using=alias)
    doomed = jobline_process(env, "worker", "--concurrency", "4")
    wait_until(lambda: statuses(alias).get("running") == 4, what="4 jobs running")
    doomed.kill()  # SIGKILL: no chance to put anything back
    doomed.communicate(timeout=10)
    interrupted = set(
        Job.objects.using(alias).filter(status="running").values_list("id", flat=True)
    )
    survivor = jobline_process(env, "worker", "--concurrency", "20")
    try:
        wait_until(lambda: statuses(alias) == {"succeeded": 12}, what="all 12 succeeded")
    finally:
        stop(survivor)
    events = read_runlog(runlog)
    ends = [job_id for job_id, _ in events["end"]]
    assert sorted(ends) == sorted(Job.objects.using(alias).values_list("id", flat=True))
    attempts = dict(Job.objects.using(alias).values_list("id", "attempts"))
    assert {attempts[i] for i in interrupted} == {2}  # the lost attempt counted
    assert all(attempts[i] == 1 for i in attempts if i not in interrupted)
    assert not Worker.objects.using(alias).exists()


def test_sigterm_finishes_running_jobs_and_claims_no_more(alias, service_env, runlog):
    env = service_env(alias)
    jobline.enqueue_many("record", [{"seconds": 1}] * 10, using=alias)
    proc = jobline_process(env, "worker", "--concurrency", "3")
    wait_until(lambda: statuses(alias).get("running") == 3, what="3 jobs running")
    out = stop(proc)
    assert proc.returncode == 0, out
    assert statuses(alias) == {"succeeded": 3, "queued": 7}
    assert set(Job.objects.using(alias).values_list("attempts", flat=True)) == {0, 1}
    assert not Worker.objects.using(alias).exists()


def test_sigterm_puts_back_jobs_that_outlive_the_grace_period(alias, service_env, runlog):
    env = service_env(alias, JOBLINE_SHUTDOWN_GRACE_SECONDS="0.3")
    jobline.enqueue_many("record", [{"seconds": 30}] * 2, using=alias)
    proc = jobline_process(env, "worker")
    wait_until(lambda: statuses(alias).get("running") == 2, what="2 jobs running")
    out = stop(proc)
    assert proc.returncode == 0, out
    assert "put 2 unfinished jobs back" in out
    assert statuses(alias) == {"queued": 2}
    assert set(Job.objects.using(alias).values_list("attempts", flat=True)) == {0}


def test_three_workers_run_each_job_exactly_once(alias, service_env, runlog):
    # The usual 3 s lease can lapse on a busy 2-core host; the rescue then rightly counts the
    # lost attempt of a job claimed but not started. Here only competition is under test.
    env = service_env(alias, JOBLINE_LEASE_SECONDS="30")
    n = 5000
    workers = [jobline_process(env, "worker", "--concurrency", "50") for _ in range(3)]
    try:
        # All three compete from the first job (one started early could drain them alone).
        workers_up = Worker.objects.using(alias).filter(pid__in=[w.pid for w in workers])
        wait_until(lambda: workers_up.count() == 3, timeout=60, what="3 workers registered")
        jobline.enqueue_many("record", [{}] * n, using=alias)
        wait_until(
            lambda: statuses(alias) == {"succeeded": n}, timeout=120, what=f"{n} jobs succeeded"
        )
    finally:
        for w in workers:
            stop(w)
    events = read_runlog(runlog)
    started = [job_id for job_id, _ in events["start"]]
    assert len(started) == n and len(set(started)) == n
    assert set(Job.objects.using(alias).values_list("attempts", flat=True)) == {1}
    assert len({pid for _, pid in events["start"]}) == 3  # all three took a share


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_jobline_up_serves_admin_health_metrics_and_runs_jobs(alias, service_env, tmp_path):
    env = service_env(alias, INITIAL_SUPERUSER_NAME="root", INITIAL_SUPERUSER_PASSWORD="pw-123")
    if alias == "default":
        del env["DATABASE_URL"]  # the embedded default: SQLite in the data folder
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    up = jobline_process(env, "up", "--port", str(port))
    try:

        def healthy() -> bool:
            try:
                body = httpx.get(f"{base}/api/v1/health").json()
            except httpx.HTTPError:
                return False
            return body["status"] == "ok" and body["workers"] == 1

        # Migrations, the superuser and three roles start first: slow on a busy 2-core host.
        wait_until(healthy, timeout=120, what="health green with one worker")
        enq = subprocess.run(
            [
                sys.executable,
                "-m",
                "jobline.cli.main",
                "enqueue",
                "sleep",
                "--inputs",
                '{"seconds": 0.05}',
            ],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        assert enq.stdout.strip().isdigit()

        def succeeded() -> bool:  # one attempt run (the workers' heartbeats), none left
            text = httpx.get(f"{base}/metrics").text
            return "jobline_job_run_duration_seconds_count 1.0" in text and (
                'jobline_jobs{queue="default"' not in text
            )

        wait_until(succeeded, what="the enqueued job succeeded")
        with httpx.Client(base_url=base) as browser:
            browser.get("/admin/login/")
            login = browser.post(
                "/admin/login/?next=/admin/",
                data={
                    "username": "root",
                    "password": "pw-123",
                    "csrfmiddlewaretoken": browser.cookies["csrftoken"],
                },
            )
            assert login.status_code == 302 and login.headers["location"] == "/admin/"
            assert "Site administration" in browser.get("/admin/").text
            assert browser.get("/admin/jobline/job/").status_code == 200
            css = browser.get("/static/admin/css/base.css")
            assert css.status_code == 200 and "body" in css.text
    finally:
        out = stop(up)
    assert up.returncode == 0, out
    if alias == "default":
        assert (tmp_path / "data" / "jobline.sqlite3").exists()


def test_bad_enqueue_from_cli_says_what_is_wrong(alias, service_env):
    env = service_env(alias)
    cases = [
        (["enqueue", "add", "--inputs", "{nope"], "--inputs is not valid JSON"),
        (["enqueue", "add", "--inputs", '{"a": "x"}'], "a: Input should be a valid integer"),
        (["enqueue", "nope"], "unknown job type 'nope'; known types:"),
    ]
    for args, message in cases:
        res = subprocess.run(
            [sys.executable, "-m", "jobline.cli.main", *args],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        assert res.returncode == 2 and message in res.stderr, res.stderr
    assert not Job.objects.using(alias).exists()


def test_library_mode_manage_py(tmp_path: Path):
    """A Django project of one's own: jobline in INSTALLED_APPS, jobs.py found by itself."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "JOBLINE_TEST_TMP": str(tmp_path),
        "PYTHONPATH": str(ROOT),
    }

    def manage(*args: str) -> str:
        res = subprocess.run(
            [sys.executable, "-m", "django", *args],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert res.returncode == 0, res.stdout + res.stderr
        return res.stdout

    manage("migrate", "--verbosity", "0")
    job_id = manage("jobline", "enqueue", "add", "--inputs", json.dumps({"a": 41})).strip()
    manage("jobline", "worker", "--max-jobs", "1", "--timeout", "30")
    import sqlite3

    db = sqlite3.connect(tmp_path / "jobline.sqlite3")
    row = db.execute("SELECT status, outputs FROM jobline_job WHERE id = ?", (job_id,)).fetchone()
    assert row == ("succeeded", "42")
