"""The timer contract: POST /api/v1/timer, GET /api/v1/timer/{id}, and the URL is called."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from jobline.models import Job
from jobline.testing import running_worker


def _job(timer_id: str) -> Job:
    return Job.objects.get(idempotency_key=f"timer:{timer_id}")


def _jobs(timer_id: str):
    return Job.objects.filter(idempotency_key=f"timer:{timer_id}")


@pytest.fixture(autouse=True)
def _loopback_allowed(settings):
    """The receiver listens on loopback, which timers may only call when allowed."""
    settings.JOBLINE_HTTP_ALLOWED_NETWORKS = "127.0.0.0/8"


def test_create__201_with_id_and_time_left(api, receiver):
    r = api.post("/timer", {"hours": 1, "minutes": 2, "seconds": 3, "url": receiver.url()})
    assert r.status_code == 201
    body = r.json()
    assert set(body) == {"id", "time_left"} and body["time_left"] == 3723
    job = _job(body["id"])
    assert (job.type, job.status, job.inputs["url"], job.inputs["method"]) == (
        "http",
        "queued",
        receiver.url(),
        "POST",
    )
    assert timedelta(seconds=3720) < job.run_at - timezone.now() <= timedelta(seconds=3723)


def test_get__time_left_counts_down_then_is_0(api, receiver):
    timer = api.post("/timer", {"hours": 0, "minutes": 1, "seconds": 0, "url": receiver.url()})
    r = api.get(f"/timer/{timer.json()['id']}")
    assert r.status_code == 200
    left = r.json()["time_left"]
    assert 55 <= left <= 60  # whole seconds left; on a busy host the request itself takes some
    assert r.json() == {
        "id": timer.json()["id"],
        "time_left": left,
        "status": "pending",
        "error": None,
        "http_status": None,
    }
    _jobs(timer.json()["id"]).update(run_at=timezone.now() - timedelta(seconds=1))
    assert api.get(f"/timer/{timer.json()['id']}").json()["time_left"] == 0


def test_get__a_timer_that_fired_and_is_retrying_stays_at_0(api, receiver):
    timer = api.post("/timer", {"seconds": 5, "url": receiver.url()}).json()
    _jobs(timer["id"]).update(attempts=1, error="HTTP 503")
    assert api.get(f"/timer/{timer['id']}").json()["time_left"] == 0


def test_get__unknown_is_404(api):
    assert api.get("/timer/987654").status_code == 404
    noop = api.post("/jobs", {"type": "noop"}).json()
    assert api.get(f"/timer/{noop['id']}").status_code == 404  # a job, not a timer


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"hours": -1, "url": "http://example.com/"}, "hours"),
        ({"minutes": "5", "url": "http://example.com/"}, "minutes"),
        ({"seconds": 1.5, "url": "http://example.com/"}, "seconds"),
        ({"seconds": True, "url": "http://example.com/"}, "seconds"),
        ({"seconds": 1}, "url"),
        ({"seconds": 1, "url": "ftp://example.com/"}, "url"),
        ({"seconds": 1, "url": "http://"}, "url"),
        ({"seconds": 1, "url": "http://example.com:99999/"}, "url"),
        ({"seconds": 1, "url": "http://example.com/", "days": 1}, "days"),
    ],
)
def test_create__bad_input_is_422_and_stores_nothing(api, body, field):
    r = api.post("/timer", body)
    assert r.status_code == 422, r.json()
    assert r.json()["detail"][0]["field"] == field
    assert not Job.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_timer_fires__the_url_is_called_once_on_time(api, receiver):
    with override_settings(JOBLINE_HTTP_ALLOWED_NETWORKS="127.0.0.0/8"), running_worker():
        started = time.time()
        r = api.post("/timer", {"hours": 0, "minutes": 0, "seconds": 2, "url": receiver.url()})
        assert r.status_code == 201
        (call,) = receiver.wait_for_calls(1, timeout=10)
        late = call.at - (started + 2)
        time.sleep(0.5)  # a second call would show up now
    assert 0 <= late < 1.0, late
    assert len(receiver.calls) == 1
    assert (call.method, call.path) == ("POST", "/hook")
    assert call.headers["Idempotency-Key"] == str(r.json()["id"])
    assert api.get(f"/timer/{r.json()['id']}").json()["time_left"] == 0
    assert _job(r.json()["id"]).status == "succeeded"
