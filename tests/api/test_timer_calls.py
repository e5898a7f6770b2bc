"""Timers tell the truth: an address the http guard refuses is refused when the timer is
set, the timer's answer says how its call went, and the HTTP client is ready at start."""

from __future__ import annotations

import pytest
from django.test import override_settings

import jobline
from jobline.api.timer_calls import call_state
from jobline.dispatch.http import CLIENT_KEY
from jobline.models import Job
from jobline.testing import running_worker
from tests.conftest import wait_until


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9000/hook",
        "http://localhost/hook",
        "http://[::1]/hook",
        "http://169.254.169.254/latest/meta-data",
        "https://10.1.2.3/",
    ],
)
def test_create__address_the_guard_refuses_is_422_naming_url(api, url):
    r = api.post("/timer", {"seconds": 5, "url": url})
    assert r.status_code == 422
    [error] = r.json()["detail"]
    assert error["field"] == "url" and "JOBLINE_HTTP_ALLOWED_NETWORKS" in error["message"]
    assert not Job.objects.exists()


def test_create__allowed_network_and_names_are_accepted(api):
    with override_settings(JOBLINE_HTTP_ALLOWED_NETWORKS="127.0.0.0/8"):
        assert api.post("/timer", {"seconds": 5, "url": "http://127.0.0.1:9/"}).status_code == 201
    # a name is resolved, and checked, only when the call connects
    assert api.post("/timer", {"seconds": 5, "url": "https://example.com/"}).status_code == 201


def _state(api, timer_id: int) -> dict:
    body = api.get(f"/timer/{timer_id}").json()
    return {k: body[k] for k in ("status", "error", "http_status")}


@pytest.mark.django_db(transaction=True)
def test_get__the_call_succeeded_with_its_http_status(api, receiver):
    with override_settings(JOBLINE_HTTP_ALLOWED_NETWORKS="127.0.0.0/8"):
        timer = api.post("/timer", {"seconds": 0, "url": receiver.url()}).json()
        assert _state(api, timer["id"])["status"] == "pending"
        with running_worker():
            wait_until(lambda: _state(api, timer["id"])["status"] != "pending", timeout=90)
    assert _state(api, timer["id"]) == {"status": "succeeded", "error": None, "http_status": 200}


@pytest.mark.django_db(transaction=True)
def test_get__a_call_the_guard_refused_says_failed_with_the_reason(api, receiver):
    with override_settings(JOBLINE_HTTP_ALLOWED_NETWORKS="127.0.0.0/8"):
        timer = api.post("/timer", {"seconds": 0, "url": receiver.url()}).json()
    with running_worker():  # this worker may not call loopback
        wait_until(lambda: _state(api, timer["id"])["status"] != "pending", timeout=90)
    state = _state(api, timer["id"])
    assert (state["status"], state["http_status"]) == ("failed", None)
    assert "refused to connect: 127.0.0.1 is a loopback address" in state["error"]
    assert receiver.calls == []


def test_call_state__an_unexpected_answer_gives_its_status():
    job = Job(status="failed", error="HTTP 404 from POST http://example.com/: not here")
    assert call_state(job) == {"status": "failed", "error": job.error, "http_status": 404}
    retrying = Job(status="queued", attempts=1, error="HTTP 503 from POST http://example.com/")
    assert call_state(retrying)["status"] == "pending"
    assert call_state(retrying)["http_status"] == 503


@pytest.mark.django_db(transaction=True)
def test_worker__makes_the_http_client_at_start_not_at_the_first_timer():
    with running_worker() as worker:
        wait_until(lambda: worker.resources.ready(CLIENT_KEY), timeout=90, what="the HTTP client")
    noop = jobline.enqueue("noop")
    with running_worker(exclude=("http",)) as worker:  # a worker that takes no http jobs
        # its first claim comes after what it makes at start
        wait_until(lambda: Job.objects.get(pk=noop.id).status == "succeeded", timeout=90)
        assert not worker.resources.ready(CLIENT_KEY)
