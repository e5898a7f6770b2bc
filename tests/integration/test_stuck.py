"""Stuck jobs on SQLite and PostgreSQL, as a ``jobline web`` process shows them: /metrics, API."""

from __future__ import annotations

from datetime import timedelta

import httpx
from django.utils import timezone

from jobline.models import Job, Worker
from tests.conftest import ALL_DATABASES, free_port, jobline_process, stop_process, wait_until

pytestmark = ALL_DATABASES


def _stuck_world(alias: str) -> dict[str, int]:
    now = timezone.now()
    for worker_id, lease in (("w-live", timedelta(hours=1)), ("w-dead", -timedelta(hours=1))):
        Worker.objects.using(alias).create(
            id=worker_id,
            hostname="host",
            pid=1,
            concurrency=10,
            started_at=now - timedelta(hours=2),
            last_heartbeat_at=now + lease - timedelta(seconds=30),
            lease_expires_at=now + lease,
        )

    def job(**fields) -> int:
        fields.setdefault("run_at", now)
        return Job.objects.using(alias).create(type="noop", created_at=now, **fields).id

    def running(worker: str, started: timedelta, timeout: float | None) -> int:
        return job(status="running", worker_id=worker, started_at=now - started, timeout=timeout)

    return {
        "past_timeout": running("w-live", timedelta(hours=1), 10),
        "worker_lost": running("w-dead", timedelta(minutes=1), None),
        "fine": running("w-live", timedelta(seconds=1), 3600),
        "waiting": job(queue="slowq", run_at=now - timedelta(seconds=120)),
        "rescued": job(error="worker lost: its lease expired while attempt 1 was running"),
        "future": job(queue="later", run_at=now + timedelta(hours=1)),
    }


def test_metrics_and_api_show_stuck_jobs_and_retention(alias, service_env):
    ids = _stuck_world(alias)
    port = free_port()
    env = service_env(alias, JOBLINE_API_PUBLIC_READ="true", JOBLINE_RETENTION_CANCELLED="0")
    web = jobline_process(env, "web", "--port", str(port))
    base = f"http://127.0.0.1:{port}"

    def metrics() -> str | None:
        try:
            return httpx.get(f"{base}/metrics").text
        except httpx.HTTPError:
            return None

    try:
        text = wait_until(metrics, timeout=60, what="/metrics answers")
        stuck = httpx.get(f"{base}/api/v1/stuck").json()
        retention = httpx.get(f"{base}/api/v1/retention").json()
    finally:
        stop_process(web)
    assert "jobline_jobs_past_timeout 1.0" in text
    assert "jobline_jobs_worker_lost 1.0" in text
    assert 'jobline_jobs_rescued{queue="default",status="queued"} 1.0' in text
    assert "jobline_workers_lapsed 1.0" in text
    oldest = {
        line.split('"')[1]: float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith("jobline_queue_oldest_due_seconds{")
    }
    assert set(oldest) == {"slowq", "default"}  # "later" has nothing due yet
    assert 120 <= oldest["slowq"] < 600
    assert [(j["id"], j["reason"]) for j in stuck["jobs"]] == [
        (ids["past_timeout"], "past timeout"),
        (ids["worker_lost"], "worker lost"),
    ]
    assert stuck["rescued"] == 1
    assert [w["id"] for w in stuck["lapsed_workers"]] == ["w-dead"]
    assert stuck["oldest_due_seconds"]["slowq"] >= 120
    assert retention == {
        "succeeded_days": 7.0,
        "failed_days": 30.0,
        "cancelled_days": None,
        "schedule_runs_days": 30.0,
        "interval_seconds": 600.0,
        "batch": 2000,
    }
