"""Executors report on ``kafka`` jobs: delivered when the broker acks, then what they report."""

from __future__ import annotations

import pytest

import jobline
from jobline.models import Job
from jobline.testing import drain

pytestmark = pytest.mark.django_db(transaction=True)

KEY = "AIzaSyD-example-not-a-real-key-0000WXYZ"
MESSAGE = {
    "title": "scan",
    "job_type": "youtube_scraper",
    "configs": {"type": "VIDEO", "id": "v1", "google_api_key": KEY, "labelizer": True},
}


@pytest.fixture
def delivered(kafka) -> int:
    """A kafka job the broker has acknowledged: its id."""
    job = jobline.enqueue("kafka", MESSAGE)
    assert drain(1) == 1
    return job.id


def test_report__delivered_then_running_then_succeeded(api, delivered):
    job = api.get(f"/jobs/{delivered}").json()
    assert (job["status"], job["dispatch"], job["dispatch_outputs"]) == (
        "succeeded",
        "delivered",
        None,
    )
    running = api.post(f"/jobs/{delivered}/report", {"status": "running"})
    assert running.status_code == 200 and running.json()["dispatch"] == "running"
    done = api.post(f"/jobs/{delivered}/report", {"status": "succeeded", "outputs": {"n": 3}})
    assert done.status_code == 200
    job = done.json()
    assert (job["status"], job["dispatch"], job["dispatch_outputs"]) == (
        "succeeded",
        "succeeded",
        {"n": 3},
    )
    assert job["outputs"]["sent"] is True  # the delivery is kept
    for late in ({"status": "failed", "error": "late"}, {"status": "running"}):
        assert api.post(f"/jobs/{delivered}/report", late).status_code == 409


def test_report__a_failed_report_fails_the_job(api, delivered):
    r = api.post(f"/jobs/{delivered}/report", {"status": "failed", "error": "quota exceeded"})
    job = r.json()
    assert (job["status"], job["dispatch"], job["error"]) == ("failed", "failed", "quota exceeded")
    assert api.post(f"/jobs/{delivered}/report", {"status": "succeeded"}).status_code == 409
    # A retry sends the message again, to be reported on afresh.
    assert api.post(f"/jobs/{delivered}/retry").json()["dispatch"] is None
    assert drain(1) == 1
    assert Job.objects.get(pk=delivered).dispatch == "delivered"


def test_report__before_the_ack_is_recorded_the_job_stops_sending(api, kafka):
    """The executor can be quicker than the worker's batched completion, or a lost ack."""
    job = jobline.enqueue("kafka", MESSAGE)
    r = api.post(f"/jobs/{job.id}/report", {"status": "running"})
    assert (r.json()["status"], r.json()["dispatch"], r.json()["attempts"]) == (
        "succeeded",
        "running",
        1,
    )
    assert drain() == 0  # nothing left to send


def test_report__only_kafka_jobs_report_running(api):
    job = jobline.enqueue("noop")
    r = api.post(f"/jobs/{job.id}/report", {"status": "running"})
    assert r.status_code == 409 and "only kafka jobs" in r.json()["detail"]
    assert api.get(f"/jobs/{job.id}").json()["dispatch"] is None


def test_kafka_secrets_are_masked_in_the_api_and_the_ui(api, delivered, admin_client):
    shown = api.get(f"/jobs/{delivered}").json()["inputs"]["configs"]
    assert shown == MESSAGE["configs"] | {"google_api_key": "****WXYZ"}
    assert KEY not in api.get("/jobs").content.decode()
    stored = Job.objects.get(pk=delivered).inputs["configs"]
    assert stored == MESSAGE["configs"]  # in full, for the executor
    for url in (f"/jobs/{delivered}/", "/jobs/", f"/admin/jobline/job/{delivered}/change/"):
        page = admin_client.get(url).content.decode()
        assert KEY not in page, url
    assert "****WXYZ" in admin_client.get(f"/jobs/{delivered}/").content.decode()
