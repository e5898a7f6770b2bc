"""NUL characters, calendar edges, odd queue names and URLs with control characters: 422
naming the field, nothing stored, on SQLite and PostgreSQL, through the API, the UI and the
admin; and pages that keep working whatever is stored."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from django.utils import timezone

import jobline
from jobline.models import Job, Queue
from jobline.models.api import Template
from jobline.models.schedules import Schedule

NUL = "a\x00b"
EDGES = ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59Z"]
ODD_QUEUES = ["a/b", "a b", "a\nb", "../x", "?x", "#x", "x%2F", "é", "a" * 101]


def _field(r) -> str:
    assert r.status_code == 422, (r.status_code, r.content)
    return r.json()["detail"][0]["field"]


def _nothing_stored() -> None:
    assert not Job.objects.exists()
    assert not Template.objects.exists()
    assert not Schedule.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": NUL}, "type"),
        ({"type": "add", "inputs": {"a": 1, "b": NUL}}, "inputs.b"),
        ({"type": "add", "inputs": {"a": 1, NUL: 2}}, f"inputs.{NUL}"),
        ({"type": "noop", "queue": NUL}, "queue"),
        ({"type": "noop", "idempotency_key": NUL}, "idempotency_key"),
        (
            {"type": "kafka", "inputs": {"title": "t", "configs": {"deep": [{"x": NUL}]}}},
            "inputs.configs.deep.0.x",
        ),
    ],
)
def test_nul_in_a_body_is_422_naming_the_field(api, body, field):
    assert _field(api.post("/jobs", body)) == field
    _nothing_stored()


def test_nul_in_query_and_path_is_422(api):
    assert _field(api.get("/jobs", queue=NUL)) == "queue"
    assert _field(api.get("/jobs", type="x", **{NUL: "1"})) == NUL
    assert _field(api.get("/queues/a%00b")) == "path"
    assert _field(api.send("POST", "/queues/a%00b/pause")) == "path"
    assert _field(api.get("/timer/a%00b")) == "path"
    assert not Queue.objects.exists()


def test_nul_in_templates_and_schedules_is_422(api):
    assert _field(api.post("/templates", {"name": "t", "job_type": "add", "label": NUL})) == (
        "label"
    )
    r = api.post("/schedules", {"name": NUL, "job_type": "noop", "kind": "interval", "rule": "60"})
    assert _field(r) == "name"
    _nothing_stored()


@pytest.mark.parametrize("edge", EDGES)
def test_calendar_edges_are_422_naming_the_field(api, edge):
    assert _field(api.post("/jobs", {"type": "noop", "run_at": edge})) == "run_at"
    assert _field(api.get("/jobs", created_after=edge)) == "created_after"
    body = {"name": "s", "job_type": "noop", "kind": "interval", "rule": "60"}
    assert _field(api.post("/schedules", body | {"start_at": edge})) == "start_at"
    assert _field(api.post("/schedules", body | {"end_at": edge})) == "end_at"
    at = {"name": "s", "job_type": "noop", "kind": "at", "rule": edge}
    assert _field(api.post("/schedules", at)) == "rule"
    _nothing_stored()


def test_enqueue_refuses_calendar_edges_in_library_mode(surface):
    late = datetime(9999, 12, 31, 23, 59, tzinfo=UTC)
    with pytest.raises(ValueError, match="run_at"):
        jobline.enqueue("noop", run_at=late, using=surface)
    with pytest.raises(ValueError, match="delay"):
        jobline.enqueue("noop", delay=1e300, using=surface)
    assert not Job.objects.exists()


@pytest.mark.parametrize("queue", ODD_QUEUES)
def test_odd_queue_names_are_refused_at_enqueue(api, surface, queue):
    assert _field(api.post("/jobs", {"type": "noop", "queue": queue})) == "queue"
    body = {"name": "t", "job_type": "add", "queue": queue}
    assert _field(api.post("/templates", body)) == "queue"
    with pytest.raises(ValueError, match="queue name"):
        jobline.enqueue("noop", queue=queue, using=surface)
    _nothing_stored()


def test_ordinary_queue_names_still_work(api):
    for queue in ("default", "mail", "high-priority", "tenant_7", "eu.west:1"):
        assert api.post("/jobs", {"type": "noop", "queue": queue}).status_code == 201


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/a b",
        "http://example.com/\x01",
        "http://example.com/\x7f",
        "http://ex ample.com/",
    ],
)
def test_urls_with_spaces_or_control_characters_are_refused_at_enqueue(api, url):
    r = api.post("/jobs", {"type": "http", "inputs": {"url": url}})
    assert _field(r) == "inputs.url"
    r = api.post("/timer", {"seconds": 1, "url": url})
    assert _field(r) == "url"
    _nothing_stored()


def test_ui_forms_refuse_nul_and_edges(ui):
    form = {"type": "add", "inputs": {"a": 1, "b": "x\x00"}}
    r = ui.post("/jobs/new/", json.dumps(form), content_type="application/json")
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "inputs.b"
    form = {"type": "add", "inputs": {"a": 1}, "options": {"queue": "a/b"}}
    r = ui.post("/jobs/new/", json.dumps(form), content_type="application/json")
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "options.queue"
    assert not Job.objects.exists()
    r = ui.get("/jobs/", {"queue": NUL})
    assert r.status_code == 422
    r = ui.post(
        "/schedules/new/",
        {"name": "s", "job_type": "noop", "kind": "at", "rule": EDGES[0], "inputs": "{}"},
    )
    assert r.status_code in (200, 400, 422) and not Schedule.objects.exists()
    r = ui.post("/queues/a%00b/pause/", {})
    assert r.status_code == 422 and not Queue.objects.exists()


def test_admin_refuses_nul_and_edges(ui):
    r = ui.get("/admin/jobline/job/", {"q": NUL})
    assert r.status_code == 422
    add = {
        "type": "add",
        "queue": "default",
        "priority": "0",
        "max_attempts": "3",
        "inputs": '{"a": "x\\u0000"}',
        "run_at_0": "2030-01-01",
        "run_at_1": "00:00:00",
    }
    r = ui.post("/admin/jobline/job/add/", add)
    assert r.status_code == 200 and "NUL" in r.content.decode()
    r = ui.post("/admin/jobline/job/add/", add | {"inputs": "{}", "queue": "a/b"})
    assert r.status_code == 200 and "queue name" in r.content.decode()
    r = ui.post(
        "/admin/jobline/template/add/",
        {"name": "t", "job_type": "add", "inputs": '{"x": "\\u0000"}', "enabled": "on"},
    )
    assert r.status_code == 200 and "NUL" in r.content.decode()
    assert not Job.objects.exists() and not Template.objects.exists()


def test_pages_never_break_on_stored_values(ui, api, surface):
    """Rows written before these checks (or straight to the database) still show."""
    now = timezone.now()
    for queue in ("a/b", "a b", "../x", "?x#y", "%2F"):
        Job.objects.create(type="noop", queue=queue, inputs={}, run_at=now, created_at=now)
        Queue.objects.create(name=queue, paused=True)
    far = datetime(9999, 12, 29, tzinfo=UTC)
    early = datetime(1, 1, 3, tzinfo=UTC)
    late = Job.objects.create(type="noop", inputs={"x": "é\u202e"}, run_at=far, created_at=early)
    for path in (
        "/",
        "/?window=24h",
        "/jobs/",
        f"/jobs/{late.pk}/",
        "/jobs/?queue=a/b",
        "/schedules/",
        "/templates/",
        "/pipelines/",
        "/admin/jobline/job/",
        f"/admin/jobline/job/{late.pk}/change/",
        "/admin/jobline/queue/",
    ):
        assert ui.get(path).status_code == 200, path
    page = ui.get("/").content.decode()
    assert "/queues/a/b/resume/" in page  # the buttons of a stored odd name still work
    r = ui.post("/queues/a/b/resume/", {"next": "/"})
    assert r.status_code == 302 and not Queue.objects.get(name="a/b").paused
    for path in ("/jobs", f"/jobs/{late.pk}", "/queues", "/queues/a%20b"):
        assert api.get(path).status_code == 200, path
    assert ui.get("/jobs/", {"created_after": "9999-12-31T23:59"}).status_code in (200, 400)


def test_offsets_postgresql_cannot_store_are_taken_in_utc(api):
    """ISO 8601 allows offsets up to 23:59; PostgreSQL stores up to 15:59."""
    r = api.post("/jobs", {"type": "noop", "run_at": "2030-01-01T00:00:00+17:37"})
    assert r.status_code == 201, r.content
    assert r.json()["run_at"].startswith("2029-12-31T06:23:00")
    assert api.get("/jobs", created_after="2020-01-01T00:00:00-23:30").status_code == 200
    body = {"name": "s", "job_type": "noop", "kind": "interval", "rule": "60"}
    r = api.post("/schedules", body | {"start_at": "2030-01-01T00:00:00+23:00"})
    assert r.status_code == 201, r.content
