"""Secrets masked by structure: any type, any depth, http credentials, URL passwords; in the
API (read-write and read-only tokens), the UI, the admin, job errors and logs."""

from __future__ import annotations

import logging

from django.test import override_settings

import jobline
from jobline.models import Job
from jobline.testing import drain

CONFIGS = {
    "id": "v1",
    "api_key": 987654321987,  # a number
    "tokens": ["LIST-SECRET-ONE", "LIST-SECRET-TWO"],  # a list
    "credentials": {"user": "bob", "pw": "NESTED-SECRET"},  # an object
    "deep": {"more": [{"client_secret": "DEEP-SECRET-VALUE"}]},  # a secret key far down
    "callback": "https://bob:URL-PASSWORD@example.com/hook",
}
HTTP = {
    "url": "https://carol:HTTP-URL-PASSWORD@example.com/x",
    "headers": {
        "Authorization": "Bearer AUTH-HEADER-SECRET",
        "Proxy-Authorization": "Basic PROXY-SECRET",
        "Cookie": "session=COOKIE-SECRET",
        "X-Api-Key": "XAPIKEY-SECRET",
        "X-Trace": "visible-trace",
    },
}
SECRETS = [
    "987654321987",
    "LIST-SECRET",
    "NESTED-SECRET",
    "DEEP-SECRET-VALUE",
    "URL-PASSWORD",
    "AUTH-HEADER-SECRET",
    "PROXY-SECRET",
    "COOKIE-SECRET",
    "XAPIKEY-SECRET",
]


def _leaks(text: str) -> list[str]:
    return [s for s in SECRETS if s in text]


def _shown_everywhere(api, reader, ui, job_id: int) -> str:
    pages = [
        api.get(f"/jobs/{job_id}"),
        api.get("/jobs"),
        reader.get(f"/jobs/{job_id}"),
        reader.get("/jobs"),
        ui.get(f"/jobs/{job_id}/"),
        ui.get("/jobs/"),
        ui.get(f"/jobs/new/?from={job_id}"),
        ui.get(f"/admin/jobline/job/{job_id}/change/"),
    ]
    for page in pages:
        assert page.status_code == 200
    return "\n".join(p.content.decode() for p in pages)


def test_kafka_configs_of_any_type_and_depth_are_masked(api, reader, ui):
    r = api.post(
        "/jobs", {"type": "kafka", "inputs": {"title": "t", "job_type": "scan", "configs": CONFIGS}}
    )
    assert r.status_code == 201 and not _leaks(r.content.decode())
    shown = _shown_everywhere(api, reader, ui, r.json()["id"])
    assert _leaks(shown) == []
    assert "bob" in shown and "v1" in shown  # what is not secret still shows
    stored = Job.objects.get(pk=r.json()["id"]).inputs["configs"]
    assert stored == CONFIGS  # the job runs with the real values


def test_http_credentials_are_masked(api, reader, ui):
    r = api.post("/jobs", {"type": "http", "inputs": HTTP})
    assert r.status_code == 201 and not _leaks(r.content.decode())
    shown = _shown_everywhere(api, reader, ui, r.json()["id"])
    assert _leaks(shown) == []
    assert "visible-trace" in shown and "carol:****@example.com" in shown


def test_url_password_stays_out_of_errors_and_logs(surface, receiver, caplog):
    """The http job is refused by the address guard: its error names the URL, not the
    password, and nothing reaches the receiver."""
    port = receiver.server_address[1]
    url = f"http://dave:ERROR-PASSWORD@127.0.0.1:{port}/hook"
    from jobline.services.enqueue import enqueue

    job = enqueue("http", {"url": url, "headers": {"Cookie": "c=COOKIE-SECRET"}}, using=surface)
    with caplog.at_level(logging.DEBUG):
        drain(1, using=surface, timeout=30)
    row = Job.objects.using(surface).get(pk=job.id)
    assert row.status == "failed" and "dave:****@127.0.0.1" in row.error
    assert "ERROR-PASSWORD" not in row.error + (row.traceback or "")
    assert "ERROR-PASSWORD" not in caplog.text and "COOKIE-SECRET" not in caplog.text
    assert receiver.calls == []


@override_settings(JOBLINE_KAFKA_ENABLED=False)
def test_kafka_disabled_log_line_is_masked(surface, caplog):
    from jobline.services.enqueue import enqueue

    enqueue("kafka", {"title": "t", "job_type": "scan", "configs": CONFIGS}, using=surface)
    with caplog.at_level(logging.WARNING, logger="jobline.kafka"):
        drain(1, using=surface, timeout=30)
    (line,) = [r.getMessage() for r in caplog.records if "KAFKA_ENABLED is false" in r.getMessage()]
    assert _leaks(line) == [] and '"id":"v1"' in line


@jobline.job(name="hardening_fails_with_url", max_attempts=1, user_triggered=False)
def fails_with_url(url: str) -> None:
    raise RuntimeError(f"cannot reach {url}")


def test_url_password_in_any_jobs_error_is_masked(surface):
    url = "postgres://app:DB-PASSWORD@db.internal/app"
    job = jobline.enqueue("hardening_fails_with_url", {"url": url}, using=surface)
    drain(1, using=surface, timeout=30)
    row = Job.objects.using(surface).get(pk=job.id)
    assert row.status == "failed" and "app:****@db.internal" in row.error
    assert "DB-PASSWORD" not in row.error + row.traceback
