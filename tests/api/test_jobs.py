"""``/api/v1/jobs``: create, validation, list with filters and cursor pages, actions, report."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.test import override_settings
from django.utils import timezone
from opentelemetry import trace

from jobline.models import Job


def test_create__201_with_the_job_and_type_defaults(api):
    r = api.post("/jobs", {"type": "add", "inputs": {"a": 2}})
    assert r.status_code == 201
    job = r.json()
    assert job["id"] == Job.objects.get().id
    assert (job["status"], job["type"], job["queue"]) == ("queued", "add", "default")
    assert (job["inputs"], job["attempts"], job["max_attempts"]) == ({"a": 2, "b": 1}, 0, 3)


def test_create__options(api):
    before = timezone.now()
    r = api.post(
        "/jobs",
        {
            "type": "add",
            "inputs": {"a": 1},
            "queue": "q1",
            "priority": 7,
            "delay": 60,
            "max_attempts": 9,
            "timeout": 2.5,
        },
    )
    assert r.status_code == 201, r.json()
    row = Job.objects.get()
    assert (row.queue, row.priority, row.max_attempts, row.timeout) == ("q1", 7, 9, 2.5)
    assert row.run_at >= before + timedelta(seconds=59)
    at = (before + timedelta(hours=2)).isoformat()
    job = api.post("/jobs", {"type": "noop", "run_at": at}).json()
    assert abs(Job.objects.get(pk=job["id"]).run_at - (before + timedelta(hours=2))) < timedelta(
        seconds=2
    )


def test_create__idempotency_key_returns_the_first_job_with_200(api):
    first = api.post("/jobs", {"type": "add", "inputs": {"a": 1}, "idempotency_key": "k"})
    again = api.post("/jobs", {"type": "add", "inputs": {"a": 2}, "idempotency_key": "k"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["inputs"]["a"] == 1


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"type": "add", "inputs": {"a": "two", "c": 1}}, ["inputs.a", "inputs.c"]),
        ({"type": "add", "inputs": {}}, ["inputs.a"]),
        ({"type": "scale", "inputs": {"point": {"x": 1, "y": -1}}}, ["inputs.point.y"]),
        ({"type": "add", "inputs": {"a": 1}, "priority": 101}, ["priority"]),
        ({"type": "add", "inputs": {"a": 1}, "delay": -1}, ["delay"]),
        ({"type": "add", "inputs": {"a": 1}, "max_attempts": 0}, ["max_attempts"]),
        ({"type": "add", "inputs": {"a": 1}, "surprise": True}, ["surprise"]),
        ({"type": "add", "inputs": {"a": 1}, "run_at": "2030-01-01T00:00:00"}, ["run_at"]),
        ({"inputs": {}}, ["type"]),
        ({"type": "add", "inputs": [1]}, ["inputs"]),
    ],
)
def test_create__bad_input_is_422_naming_fields_and_stores_nothing(api, body, fields):
    r = api.post("/jobs", body)
    assert r.status_code == 422, r.json()
    assert [e["field"] for e in r.json()["detail"]] == fields
    assert all(e["message"] and e["type"] for e in r.json()["detail"])
    assert not Job.objects.exists()


def test_create__run_at_and_delay_together_is_422(api):
    at = (timezone.now() + timedelta(hours=1)).isoformat()
    r = api.post("/jobs", {"type": "noop", "run_at": at, "delay": 5})
    assert r.status_code == 422
    assert "run_at or delay" in r.json()["detail"][0]["message"]


def test_create__unknown_type_is_422_naming_the_known_types(api):
    r = api.post("/jobs", {"type": "nope", "inputs": {}})
    assert r.status_code == 422
    (error,) = r.json()["detail"]
    assert error["field"] == "type" and error["type"] == "unknown_job_type"
    assert "'nope'" in error["message"] and "add" in error["message"]
    assert "sleep" in error["message"]


def test_create__malformed_json_is_400(api):
    assert api.send("POST", "/jobs", b'{"type": ').status_code == 400
    nan = b'{"type": "add", "inputs": {"a": 1, "x": NaN}}'
    assert api.send("POST", "/jobs", nan).status_code == 400
    assert not Job.objects.exists()


def test_create__oversized_body_and_inputs_are_413(api):
    with override_settings(JOBLINE_API_MAX_BODY_BYTES=1000):
        r = api.post("/jobs", {"type": "noop", "inputs": {"x": "y" * 2000}})
        assert r.status_code == 413
        assert "1000 bytes" in r.json()["detail"]
    with override_settings(JOBLINE_API_MAX_INPUTS_BYTES=100):
        r = api.post("/jobs", {"type": "sync_add", "inputs": {"a": 1, "b": 10**200}})
        assert r.status_code == 413
        assert r.json()["detail"].startswith("inputs are over 100 bytes")
    assert not Job.objects.exists()


def test_get__the_job_or_404(api):
    job = api.post("/jobs", {"type": "noop"}).json()
    r = api.get(f"/jobs/{job['id']}")
    assert r.status_code == 200
    assert r.json()["traceback"] == "" and r.json()["id"] == job["id"]
    missing = api.get("/jobs/999999")
    assert missing.status_code == 404
    assert missing.json() == {"detail": "job 999999 not found"}
    assert api.get("/jobs/abc").status_code == 422


def _make(api, n: int, **body) -> list[int]:
    return [api.post("/jobs", {"type": "noop", **body}).json()["id"] for _ in range(n)]


def test_list__cursor_pages_newest_first_without_gaps_or_repeats(api):
    ids = _make(api, 23)
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 10} | ({"cursor": cursor} if cursor else {})
        page = api.get("/jobs", **params).json()
        seen += [j["id"] for j in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == sorted(ids, reverse=True)
    assert "traceback" not in api.get("/jobs").json()["items"][0]


def test_list__exactly_one_full_page_has_no_next_cursor(api):
    _make(api, 5)
    page = api.get("/jobs", limit=5).json()
    assert len(page["items"]) == 5 and page["next_cursor"] is None


def test_list__filters(api):
    mail = _make(api, 2, queue="mail")
    adds = [api.post("/jobs", {"type": "add", "inputs": {"a": i}}).json()["id"] for i in range(3)]
    Job.objects.filter(pk=adds[0]).update(status="failed")
    Job.objects.filter(pk=mail[0]).update(created_at=datetime(2020, 1, 1, tzinfo=UTC))

    def ids(**params) -> set[int]:
        r = api.get("/jobs", **params)
        assert r.status_code == 200, r.json()
        return {j["id"] for j in r.json()["items"]}

    assert ids(queue="mail") == set(mail)
    assert ids(type="add") == set(adds)
    assert ids(type=["add", "noop"]) == set(adds + mail)
    assert ids(status="failed") == {adds[0]}
    assert ids(status=["failed", "queued"], type="add") == set(adds)
    assert ids(created_before="2021-01-01T00:00:00Z") == {mail[0]}
    assert ids(created_after="2021-01-01T00:00:00+00:00", queue="mail") == {mail[1]}
    assert ids(pipeline_run=424242) == set() == ids(schedule=[424242, 424243])


def test_list__bad_filters_are_422_naming_them(api):
    r = api.get("/jobs", status=["queued", "lost"], limit=0, created_after="yesterday")
    assert r.status_code == 422
    assert {e["field"] for e in r.json()["detail"]} == {"status.1", "limit", "created_after"}
    assert api.get("/jobs", pipeline_run=0).json()["detail"][0]["field"] == "pipeline_run.0"


def test_cancel__queued_now_running_on_request_finished_409(api):
    queued, running, done = _make(api, 3)
    Job.objects.filter(pk=running).update(status="running", worker_id="w1")
    Job.objects.filter(pk=done).update(status="succeeded")
    r = api.post(f"/jobs/{queued}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    r = api.post(f"/jobs/{running}/cancel")
    assert r.status_code == 200
    assert (r.json()["status"], r.json()["cancel_requested"]) == ("running", True)
    r = api.post(f"/jobs/{done}/cancel")
    assert r.status_code == 409 and "succeeded" in r.json()["detail"]
    assert api.post("/jobs/999999/cancel").status_code == 404


def test_retry__finished_jobs_only(api):
    failed, queued = _make(api, 2)
    Job.objects.filter(pk=failed).update(status="failed", attempts=3, error="boom")
    r = api.post(f"/jobs/{failed}/retry")
    assert r.status_code == 200
    assert (r.json()["status"], r.json()["attempts"], r.json()["error"]) == ("queued", 0, "")
    assert api.post(f"/jobs/{queued}/retry").status_code == 409


def test_bulk_cancel_and_retry_by_filter_and_ids(api):
    mail = _make(api, 3, queue="mail")
    other = _make(api, 2)
    r = api.post("/jobs/cancel", {"queue": ["mail"], "status": ["queued"]})
    assert r.status_code == 200 and r.json() == {"count": 3}
    assert set(Job.objects.filter(status="cancelled").values_list("id", flat=True)) == set(mail)
    r = api.post("/jobs/retry", {"ids": mail[:2]})
    assert r.json() == {"count": 2}
    assert Job.objects.get(pk=mail[2]).status == "cancelled"
    assert set(Job.objects.filter(status="queued").values_list("id", flat=True)) == {
        *mail[:2],
        *other,
    }


def test_bulk__needs_a_criterion(api):
    _make(api, 2)
    for action in ("cancel", "retry"):
        r = api.post(f"/jobs/{action}", {})
        assert r.status_code == 422
        assert "at least one criterion" in r.json()["detail"][0]["message"]
    assert api.post("/jobs/cancel", {"status": ["nope"]}).status_code == 422
    assert not Job.objects.exclude(status="queued").exists()


def test_report__an_external_executor_finishes_a_queued_job(api):
    (job_id,) = _make(api, 1, queue="external")
    r = api.post(f"/jobs/{job_id}/report", {"status": "succeeded", "outputs": {"rows": 3}})
    assert r.status_code == 200
    job = r.json()
    assert (job["status"], job["outputs"], job["attempts"]) == ("succeeded", {"rows": 3}, 1)
    assert job["started_at"] and job["finished_at"]
    again = api.post(f"/jobs/{job_id}/report", {"status": "failed", "error": "late"})
    assert again.status_code == 409
    assert Job.objects.get(pk=job_id).status == "succeeded"


def test_report__failure_of_a_running_job(api):
    (job_id,) = _make(api, 1)
    Job.objects.filter(pk=job_id).update(status="running", attempts=1, worker_id="w")
    r = api.post(f"/jobs/{job_id}/report", {"status": "failed", "error": "disk full"})
    job = r.json()
    assert (job["status"], job["error"], job["attempts"], job["worker_id"]) == (
        "failed",
        "disk full",
        1,
        None,
    )


def test_report__bad_reports(api):
    (job_id,) = _make(api, 1)
    assert api.post(f"/jobs/{job_id}/report", {"status": "queued"}).status_code == 422
    assert api.post("/jobs/999999/report", {"status": "succeeded"}).status_code == 404
    with override_settings(JOBLINE_API_MAX_INPUTS_BYTES=100):
        big = {"status": "succeeded", "outputs": "x" * 200}
        assert api.post(f"/jobs/{job_id}/report", big).status_code == 413
    assert Job.objects.get(pk=job_id).status == "queued"


def test_job__trace_id_is_the_trace_it_runs_in_or_null(api, spans):
    traced = api.post("/jobs", {"type": "add", "inputs": {"a": 2}}).json()
    (enqueue,) = spans.get_finished_spans()
    assert traced["trace_id"] == trace.format_trace_id(enqueue.context.trace_id)
    assert api.get(f"/jobs/{traced['id']}").json()["trace_id"] == traced["trace_id"]
    Job.objects.filter(pk=traced["id"]).update(trace_context=None)  # as before tracing
    assert api.get(f"/jobs/{traced['id']}").json()["trace_id"] is None
    assert api.get("/jobs").json()["items"][0]["trace_id"] is None
