"""JSON Schemas from users never fetch anything and never backtrack (API, admin, templates in
use), on SQLite and PostgreSQL, with a loopback receiver and a real file as bait."""

from __future__ import annotations

import time

import pytest

from jobline.models.api import Template

# A schema that refers outside itself, in several positions; ``{}`` is the bait's address.
REMOTE_REFS = [
    lambda url: {"$ref": url},
    lambda url: {"type": "object", "properties": {"a": {"$ref": url}}},
    lambda url: {"$defs": {"x": {"items": {"$ref": url}}}, "$ref": "#/$defs/x"},
    lambda url: {"$id": url, "properties": {"a": {"$ref": "other.json"}}},
    lambda url: {"anyOf": [{"$dynamicRef": url}]},
    lambda url: {"properties": {"a": {"not": {"$ref": url + "#/definitions/x"}}}},
]


@pytest.fixture
def bait(tmp_path):
    path = tmp_path / "secret.json"
    path.write_text('{"description": "BAIT-FILE-CONTENT"}')
    return path


@pytest.mark.parametrize("make", REMOTE_REFS)
def test_template_with_an_outside_ref_is_refused_and_nothing_is_fetched(api, receiver, make):
    for url in (receiver.url("/schema.json"), "file:///etc/passwd"):
        r = api.post("/templates", {"name": "t", "job_type": "add", "inputs_schema": make(url)})
        assert r.status_code == 422, r.content
        (error,) = r.json()["detail"]
        assert error["field"] == "inputs_schema"
        assert "refer inside itself" in error["message"] or "$" in error["message"]
    assert receiver.calls == []
    assert not Template.objects.exists()


def test_file_ref_content_never_shows(api, bait):
    schema = {"type": "object", "properties": {"a": {"$ref": bait.as_uri()}}}
    r = api.post("/templates", {"name": "t", "job_type": "add", "inputs_schema": schema})
    assert r.status_code == 422
    assert "BAIT-FILE-CONTENT" not in r.content.decode()
    assert bait.as_uri() in r.json()["detail"][0]["message"]  # the ref is named


def test_patch_with_an_outside_ref_is_refused(api, receiver):
    made = api.post("/templates", {"name": "t", "job_type": "add"}).json()
    r = api.patch(f"/templates/{made['id']}", {"inputs_schema": {"$ref": receiver.url()}})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "inputs_schema"
    assert Template.objects.get().inputs_schema is None
    assert receiver.calls == []


def test_local_refs_still_work(api):
    schema = {
        "$defs": {"small": {"type": "integer", "maximum": 10}},
        "type": "object",
        "properties": {"a": {"$ref": "#/$defs/small"}},
    }
    made = api.post("/templates", {"name": "t", "job_type": "add", "inputs_schema": schema})
    assert made.status_code == 201, made.json()
    ran = api.post(f"/templates/{made.json()['id']}/run", {"inputs": {"a": 11, "b": 1}})
    assert ran.status_code == 422 and ran.json()["detail"][0]["field"] == "inputs.a"
    assert api.post(f"/templates/{made.json()['id']}/run", {"inputs": {"a": 2}}).status_code == 201


def test_a_stored_schema_with_an_outside_ref_is_not_followed_when_used(api, receiver, bait):
    """A template saved before these checks (or straight through the ORM) still fetches
    nothing: its schema is refused when the template is run."""
    for n, url in enumerate((receiver.url(), bait.as_uri())):
        template = Template.objects.create(
            name=f"old{n}", job_type="add", inputs_schema={"properties": {"a": {"$ref": url}}}
        )
        r = api.post(f"/templates/{template.pk}/run", {"inputs": {"a": 1}})
        assert r.status_code == 422, r.content
        assert "BAIT-FILE-CONTENT" not in r.content.decode()
    assert receiver.calls == []


def test_admin_refuses_an_outside_ref(ui, receiver):
    r = ui.post(
        "/admin/jobline/template/add/",
        {
            "name": "t",
            "label": "",
            "job_type": "add",
            "inputs": "{}",
            "inputs_schema": f'{{"$ref": "{receiver.url()}"}}',
            "user_triggered": "on",
            "enabled": "on",
            "queue": "",
        },
    )
    assert r.status_code == 200  # the form again, with the error
    assert "refer inside itself" in r.content.decode()
    assert not Template.objects.exists() and receiver.calls == []


CATASTROPHIC = "^(a+)+$"  # exponential on "aaaa...!" with a backtracking engine


def test_user_patterns_run_in_linear_time(api):
    schema = {"type": "object", "properties": {"s": {"type": "string", "pattern": CATASTROPHIC}}}
    made = api.post("/templates", {"name": "t", "job_type": "noop", "inputs_schema": schema})
    assert made.status_code == 201, made.json()
    started = time.monotonic()
    r = api.post(f"/templates/{made.json()['id']}/run", {"inputs": {"s": "a" * 5000 + "!"}})
    took = time.monotonic() - started
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "inputs.s"
    # Backtracking would take longer than the universe has left; RE2 takes microseconds.
    assert took < 10, took


def test_pattern_properties_and_additional_properties_run_in_linear_time(api):
    schema = {
        "type": "object",
        "patternProperties": {CATASTROPHIC: {"type": "integer"}},
        "additionalProperties": False,
    }
    made = api.post("/templates", {"name": "t", "job_type": "noop", "inputs_schema": schema})
    assert made.status_code == 201, made.json()
    started = time.monotonic()
    r = api.post(f"/templates/{made.json()['id']}/run", {"inputs": {"a" * 5000 + "!": 1}})
    assert r.status_code == 422 and time.monotonic() - started < 10


@pytest.mark.parametrize(
    "schema",
    [
        {"properties": {"s": {"pattern": "(a)\\1"}}},  # backreference
        {"properties": {"s": {"pattern": "(?=a)a"}}},  # lookahead
        {"patternProperties": {"(?<=x)y": {}}},
        {"patternProperties": {"^a": {}}, "unevaluatedProperties": False},
    ],
)
def test_patterns_re2_cannot_run_are_refused(api, schema):
    r = api.post("/templates", {"name": "t", "job_type": "noop", "inputs_schema": schema})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "inputs_schema"
    assert not Template.objects.exists()
