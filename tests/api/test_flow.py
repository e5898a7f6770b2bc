"""Flow control through the API: unique jobs answer 200 with the live job, queues take a
limit and a rate at run time, and a held job says why."""

from __future__ import annotations

from django.utils import timezone

from jobline.cli.main import main
from jobline.models import Job, Queue


def test_a_unique_job_answers_201_then_200_with_the_live_job(api):
    first = api.post("/jobs", {"type": "unique_report", "inputs": {"report": 7}})
    again = api.post("/jobs", {"type": "unique_report", "inputs": {"report": 7, "by": 1}})
    other = api.post("/jobs", {"type": "unique_report", "inputs": {"report": 8}})
    assert (first.status_code, again.status_code, other.status_code) == (201, 200, 201)
    assert again.json()["id"] == first.json()["id"] != other.json()["id"]
    assert Job.objects.count() == 2


def test_patch_a_queue_sets_and_removes_its_limit_and_rate(api):
    r = api.patch("/queues/mail", {"limit": 3, "rate": 10, "per": 2})
    assert r.status_code == 200, r.json()
    assert {k: r.json()[k] for k in ("name", "paused", "limit", "rate", "per")} == {
        "name": "mail",
        "paused": False,
        "limit": 3,
        "rate": 10,
        "per": 2.0,
    }
    r = api.patch("/queues/mail", {"limit": None, "paused": True})
    assert (r.json()["limit"], r.json()["rate"], r.json()["paused"]) == (None, 10, True)
    assert Queue.objects.get(name="mail").rate_limit == 10
    assert api.get("/queues/mail").json()["rate"] == 10


def test_patch_refuses_a_limit_below_one(api):
    r = api.patch("/queues/mail", {"limit": 0})
    assert r.status_code == 422
    assert "limit" in str(r.json())
    assert not Queue.objects.filter(name="mail").exists()


def test_a_held_job_says_why(api):
    now = timezone.now()
    held = [api.post("/jobs", {"type": "limited", "inputs": {"account": "42"}}) for _ in range(3)]
    ids = [r.json()["id"] for r in held]
    Job.objects.filter(id__in=ids[:2]).update(status="running", started_at=now, worker_id="w")
    r = api.get(f"/jobs/{ids[2]}")
    assert r.json()["waiting"] == "waiting: 2 of 2 running for account=42"
    assert api.get(f"/jobs/{ids[0]}").json()["waiting"] is None


def test_the_queue_command_sets_limit_rate_and_pause_and_prints_the_queue(db, capsys):
    assert (
        main(["queue", "mail", "--limit", "3", "--rate", "10", "--per", "2"], django_ready=True)
        == 0
    )
    assert capsys.readouterr().out.strip() == "queue mail: active, limit 3, rate 10 per 2 s"
    assert main(["queue", "mail", "--no-limit", "--pause"], django_ready=True) == 0
    assert capsys.readouterr().out.strip() == "queue mail: paused, limit none, rate 10 per 2 s"
    assert main(["queue", "mail", "--limit", "0"], django_ready=True) == 2
    assert "queue mail: limit must be an integer >= 1" in capsys.readouterr().err
