"""``/api/v1/templates``: CRUD with validation, and ``run`` with input overrides."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from jobline.models import Job
from jobline.models.api import Template

SCHEMA = {
    "type": "object",
    "properties": {"a": {"type": "integer", "maximum": 100}, "b": {"type": "integer"}},
    "required": ["a"],
}


def _create(api, **fields) -> dict:
    r = api.post("/templates", {"name": "adder", "job_type": "add", **fields})
    assert r.status_code == 201, r.json()
    return r.json()


def test_crud(api):
    made = _create(api, label="Add things", inputs={"a": 1}, queue="math")
    assert made["form_schema"]["required"] == ["a"]  # the job type's schema
    assert (made["enabled"], made["user_triggered"], made["priority"]) == (True, True, None)
    assert api.get(f"/templates/{made['id']}").json() == made
    assert [t["name"] for t in api.get("/templates").json()] == ["adder"]
    r = api.patch(f"/templates/{made['id']}", {"label": "Adder", "priority": 5})
    assert r.status_code == 200
    assert (r.json()["label"], r.json()["priority"], r.json()["queue"]) == ("Adder", 5, "math")
    r = api.patch(f"/templates/{made['id']}", {"priority": None, "inputs_schema": SCHEMA})
    assert (r.json()["priority"], r.json()["form_schema"]) == (None, SCHEMA)
    assert api.delete(f"/templates/{made['id']}").status_code == 204
    assert api.get(f"/templates/{made['id']}").status_code == 404
    assert api.delete(f"/templates/{made['id']}").status_code == 404


def test_list_filters(api):
    _create(api)
    _create(api, name="hidden", job_type="noop", user_triggered=False, enabled=False)
    names = lambda **q: [t["name"] for t in api.get("/templates", **q).json()]  # noqa: E731
    assert names() == ["adder", "hidden"]
    assert names(user_triggered=True) == ["adder"]
    assert names(enabled=False) == ["hidden"]
    assert names(job_type="noop") == ["hidden"]


def test_create__invalid_is_422_naming_fields(api):
    cases = [
        ({"name": "has space", "job_type": "add"}, "name"),
        ({"name": "x", "job_type": "missing"}, "job_type"),
        ({"name": "x", "job_type": "add", "inputs_schema": {"type": 5}}, "inputs_schema"),
        ({"name": "x", "job_type": "add", "delay": -1}, "delay"),
        ({"name": "x", "job_type": "add", "extra": 1}, "extra"),
    ]
    for body, field in cases:
        r = api.post("/templates", body)
        assert r.status_code == 422, body
        assert r.json()["detail"][0]["field"] == field, r.json()
    assert "known types" in api.post("/templates", cases[1][0]).json()["detail"][0]["message"]
    _create(api)
    r = api.post("/templates", {"name": "adder", "job_type": "add"})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "name"
    assert Template.objects.count() == 1


def test_patch__refuses_null_for_required_fields_and_changes_nothing(api):
    made = _create(api)
    r = api.patch(f"/templates/{made['id']}", {"name": None, "label": "new"})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "name"
    r = api.patch(f"/templates/{made['id']}", {"job_type": "missing"})
    assert r.status_code == 422
    assert Template.objects.get().job_type == "add" and Template.objects.get().label == ""


def test_run__defaults_with_overrides_and_template_options(api):
    made = _create(api, inputs={"a": 1, "b": 2}, queue="math", priority=3, delay=600)
    before = timezone.now()
    r = api.post(f"/templates/{made['id']}/run", {"inputs": {"b": 5}})
    assert r.status_code == 201, r.json()
    job = r.json()
    assert (job["type"], job["inputs"], job["queue"], job["priority"]) == (
        "add",
        {"a": 1, "b": 5},
        "math",
        3,
    )
    assert Job.objects.get(pk=job["id"]).run_at >= before + timedelta(seconds=599)
    r = api.post(f"/templates/{made['id']}/run", {"queue": "now", "delay": 0, "priority": -1})
    row = Job.objects.get(pk=r.json()["id"])
    assert (row.queue, row.priority, row.run_at <= timezone.now()) == ("now", -1, True)


def test_run__inputs_checked_against_template_and_type_schemas(api):
    made = _create(api, inputs_schema=SCHEMA)
    r = api.post(f"/templates/{made['id']}/run", {"inputs": {"a": 500}})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "inputs.a"
    r = api.post(f"/templates/{made['id']}/run", {})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "inputs.a"
    r = api.post(f"/templates/{made['id']}/run", {"inputs": {"a": 5, "c": 1}})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "inputs.c"
    assert not Job.objects.exists()


def test_run__disabled_or_undefined_type_is_409(api):
    made = _create(api, enabled=False, inputs={"a": 1})
    r = api.post(f"/templates/{made['id']}/run", {})
    assert r.status_code == 409 and "disabled" in r.json()["detail"]
    Template.objects.filter(pk=made["id"]).update(enabled=True, job_type="gone")
    r = api.post(f"/templates/{made['id']}/run", {})
    assert r.status_code == 409 and "'gone'" in r.json()["detail"]
    assert api.post("/templates/424242/run", {}).status_code == 404
    assert not Job.objects.exists()


def test_schedule_link(api):
    schedule = api.post(
        "/schedules",
        {
            "name": "every-minute",
            "job_type": "add",
            "inputs": {"a": 1},
            "rule": "1m",
            "kind": "interval",
        },
    ).json()
    made = _create(api, schedule_id=schedule["id"])
    assert made["schedule_id"] == schedule["id"]
    r = api.post("/templates", {"name": "again", "job_type": "add", "schedule_id": schedule["id"]})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "schedule_id"
    r = api.patch(f"/templates/{made['id']}", {"schedule_id": 999999})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "schedule_id"
    assert (
        api.patch(f"/templates/{made['id']}", {"schedule_id": None}).json()["schedule_id"] is None
    )
