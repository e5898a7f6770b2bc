"""``/api/v1/job-types``, ``/queues`` and ``/workers``."""

from __future__ import annotations

import pytest

from jobline.models import Job, Queue
from jobline.testing import running_worker


def test_job_types__list_and_get(api):
    types = {t["name"]: t for t in api.get("/job-types").json()}
    assert {"add", "noop", "sleep", "http", "scale"} <= set(types)
    add = types["add"]
    assert add["inputs_schema"]["required"] == ["a"]
    assert add["outputs_schema"] == {"type": "integer"}
    assert (add["queue"], add["max_attempts"], add["user_triggered"]) == ("default", 3, False)
    assert types["gpu_only"]["requires"] == ["gpu"]
    picked = {t["name"] for t in api.get("/job-types", user_triggered=True).json()}
    assert "sleep" in picked and "add" not in picked
    assert api.get("/job-types/scale").json()["inputs_schema"]["properties"]["factor"]
    assert api.get("/job-types/nope").status_code == 404


def test_queues__depth_by_status_pause_and_resume(api):
    for queue in ("mail", "mail", "default"):
        api.post("/jobs", {"type": "noop", "queue": queue})
    Job.objects.filter(queue="default").update(status="failed")
    queues = api.get("/queues").json()
    assert [q["name"] for q in queues] == ["default", "mail"]
    assert queues[1]["jobs"] == {
        "queued": 2,
        "running": 0,
        "succeeded": 0,
        "failed": 0,
        "cancelled": 0,
    }
    assert queues[0]["jobs"]["failed"] == 1
    r = api.post("/queues/mail/pause")
    assert r.status_code == 200 and r.json()["paused"] is True
    assert Queue.objects.get(name="mail").paused
    assert api.get("/queues/mail").json()["paused"] is True
    assert api.post("/queues/mail/resume").json()["paused"] is False


def test_queues__unused_queue_has_zero_jobs_and_can_be_paused_ahead(api):
    assert api.get("/queues/later").json() == {
        "name": "later",
        "paused": False,
        "limit": None,
        "rate": None,
        "per": 1.0,
        "jobs": {"queued": 0, "running": 0, "succeeded": 0, "failed": 0, "cancelled": 0},
    }
    assert api.post("/queues/later/pause").json()["paused"] is True
    assert [q["name"] for q in api.get("/queues").json()] == ["later"]
    assert api.get(f"/queues/{'x' * 101}").status_code == 422


@pytest.mark.django_db(transaction=True)
def test_workers__live_workers_with_queues_load_and_heartbeat(api):
    assert api.get("/workers").json() == []
    with running_worker(queues=("mail", "default"), concurrency=8) as worker:
        (seen,) = api.get("/workers").json()
        assert seen["id"] == worker.id
        assert (seen["queues"], seen["concurrency"], seen["running"]) == (
            ["mail", "default"],
            8,
            0,
        )
        assert seen["load"] == 0.0 and seen["last_heartbeat_at"] and seen["lease_expires_at"]
    assert api.get("/workers").json() == []
