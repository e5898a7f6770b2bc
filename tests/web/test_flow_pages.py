"""Flow control in the UI: a queue's limit and rate set from the dashboard and shown there,
limits in use (also in /metrics), and the reason a held job gives on its page."""

from __future__ import annotations

import pytest

import jobline
from jobline.models import Job, Queue
from jobline.web import stats


@pytest.fixture(autouse=True)
def _fresh_dashboard():
    stats.clear_cache()


def test_a_queue_s_limit_and_rate_are_set_and_shown_on_the_dashboard(ui):
    r = ui.post("/queues/mail/rules/", {"limit": "3", "rate": "10", "next": "/"})
    assert r.status_code == 302
    queue = Queue.objects.get(name="mail")
    assert (queue.concurrency_limit, queue.rate_limit, queue.rate_per) == (3, 10, 1.0)
    page = ui.get("/").content.decode()
    assert "0 of 3 running" in page and "rate 10 per 1.0 s" in page
    ui.post("/queues/mail/rules/", {"limit": "", "rate": "", "next": "/"})
    queue.refresh_from_db()
    assert (queue.concurrency_limit, queue.rate_limit) == (None, None)


def test_a_bad_limit_is_refused_with_a_message(ui):
    r = ui.post("/queues/mail/rules/", {"limit": "many", "next": "/"}, follow=True)
    assert "expected a whole number or nothing, got 'many'" in r.content.decode()
    assert not Queue.objects.filter(name="mail").exists()


def test_limits_in_use_and_a_held_job_s_reason(ui):
    jobs = jobline.enqueue_many("limited", [{"account": "42"}] * 3)
    Job.objects.filter(id__in=[j.id for j in jobs[:2]]).update(status="running", worker_id="w")
    page = ui.get("/").content.decode()
    assert 'data-limit="limited:account=42"' in page and "2 of 2" in page
    held = ui.get(f"/jobs/{jobs[2].id}/").content.decode()
    assert "waiting: 2 of 2 running for account=42" in held
    metrics = ui.get("/metrics").content.decode()
    assert 'jobline_limit_waiting{key="account=42",type="limited"} 1.0' in metrics
    assert 'jobline_limit_running{key="account=42",type="limited"} 2.0' in metrics
