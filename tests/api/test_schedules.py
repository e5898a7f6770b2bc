"""``/api/v1/schedules``: CRUD with validation, history, run-now; jobs filtered by schedule."""

from __future__ import annotations

from jobline.models import Job, Schedule


def _create(api, **fields) -> dict:
    body = {"name": "nightly", "job_type": "add", "inputs": {"a": 1}, "rule": "0 3 * * *"}
    r = api.post("/schedules", body | fields)
    assert r.status_code == 201, r.json()
    return r.json()


def test_crud(api):
    made = _create(api, timezone="Europe/Paris")
    assert (made["kind"], made["is_active"], made["run_count"]) == ("cron", True, 0)
    assert made["next_run_at"] and made["time_left"] > 0 and made["description"]
    assert api.get(f"/schedules/{made['id']}").json()["id"] == made["id"]
    assert [s["name"] for s in api.get("/schedules").json()] == ["nightly"]
    r = api.patch(f"/schedules/{made['id']}", {"kind": "interval", "rule": "5m"})
    assert r.status_code == 200, r.json()
    assert r.json()["next_run_at"] != made["next_run_at"]
    assert api.patch(f"/schedules/{made['id']}", {"is_active": False}).json()["time_left"] == 0
    assert [s["name"] for s in api.get("/schedules", is_active=True).json()] == []
    assert api.delete(f"/schedules/{made['id']}").status_code == 204
    assert api.get(f"/schedules/{made['id']}").status_code == 404


def test_invalid_is_422_naming_fields_and_stores_nothing(api):
    cases = [
        ({"rule": "not a cron rule"}, "rule"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"job_type": "missing"}, "job_type"),
        ({"inputs": {"a": "x"}}, "inputs"),
        ({"kind": "sometimes"}, "kind"),
        ({"priority": 500}, "priority"),
        ({"catch_up": "3"}, "catch_up"),
    ]
    for fields, field in cases:
        body = {"name": "s", "job_type": "add", "inputs": {"a": 1}, "rule": "@daily"} | fields
        r = api.post("/schedules", body)
        assert r.status_code == 422, (fields, r.json())
        assert r.json()["detail"][0]["field"] == field, r.json()
    _create(api)
    r = api.post("/schedules", {"name": "nightly", "job_type": "noop", "rule": "@daily"})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "name"
    assert Schedule.objects.count() == 1
    made = Schedule.objects.get()
    r = api.patch(f"/schedules/{made.pk}", {"name": None})
    assert r.status_code == 422


def test_run_now_fires_a_job_and_records_it(api):
    made = _create(api, inputs={"a": 2, "b": 5})
    r = api.post(f"/schedules/{made['id']}/run-now")
    assert r.status_code == 201, r.json()
    job = r.json()
    assert (job["type"], job["inputs"], job["schedule_id"]) == ("add", {"a": 2, "b": 5}, made["id"])
    (run,) = api.get(f"/schedules/{made['id']}/runs").json()
    assert (run["job_id"], run["manual"], run["error"]) == (job["id"], True, "")
    other = api.post("/jobs", {"type": "add", "inputs": {"a": 1}}).json()
    by_schedule = api.get("/jobs", schedule=made["id"]).json()["items"]
    assert [j["id"] for j in by_schedule] == [job["id"]] != [other["id"]]
    assert api.post("/schedules/999999/run-now").status_code == 404


def test_run_now_of_a_schedule_that_cannot_enqueue_is_409(api):
    made = _create(api)
    Schedule.objects.filter(pk=made["id"]).update(inputs={"a": "not a number"})
    r = api.post(f"/schedules/{made['id']}/run-now")
    assert r.status_code == 409 and "could not run" in r.json()["detail"]
    assert not Job.objects.exists()


def test_read_only_token_cannot_change_schedules(api, reader):
    made = _create(api)
    assert reader.get("/schedules").status_code == 200
    assert reader.post(f"/schedules/{made['id']}/run-now").status_code == 403
    assert reader.delete(f"/schedules/{made['id']}").status_code == 403
