"""``/api/v1/subscriptions``: CRUD with strict bodies and 4xx naming the field."""

from __future__ import annotations

from jobline.models import Subscription

HOOK = {"name": "hook", "target": "webhook", "url": "https://example.com/jobs"}


def _create(api, **fields) -> dict:
    r = api.post("/subscriptions", HOOK | fields)
    assert r.status_code == 201, r.json()
    return r.json()


def test_crud(api):
    made = _create(api, events=["failed", "terminated"], job_type="noop", sign_with="main")
    assert made["is_active"] and made["events"] == ["failed", "terminated"]
    assert api.get(f"/subscriptions/{made['id']}").json() == made
    assert [s["name"] for s in api.get("/subscriptions").json()] == ["hook"]
    r = api.patch(
        f"/subscriptions/{made['id']}",
        {"target": "amqp", "exchange": "jobs", "routing_key": "job.events", "is_active": False},
    )
    assert r.status_code == 200, r.json()
    assert (r.json()["target"], r.json()["exchange"], r.json()["is_active"]) == (
        "amqp",
        "jobs",
        False,
    )
    assert api.delete(f"/subscriptions/{made['id']}").status_code == 204
    assert api.get(f"/subscriptions/{made['id']}").status_code == 404
    assert api.delete(f"/subscriptions/{made['id']}").status_code == 404


def test_invalid_bodies_are_422_naming_the_field_and_store_nothing(api):
    cases = [
        ({"target": "webhook", "url": ""}, "url"),
        ({"target": "webhook", "url": "ftp://example.com/x"}, "url"),
        ({"target": "webhook", "url": "https://exa mple.com/"}, "url"),
        ({"target": "smtp"}, "target"),
        ({"events": ["exploded"]}, "events.0"),
        ({"events": ["failed", "failed"]}, "events"),
        ({"target": "kafka", "topic": "no spaces"}, "topic"),
        ({"target": "amqp"}, "routing_key"),
        ({"schedule_id": 12345}, "schedule_id"),
        ({"queue": " bad"}, "queue"),
        ({"colour": "red"}, "colour"),
        ({"is_active": "yes"}, "is_active"),
    ]
    for fields, field in cases:
        r = api.post("/subscriptions", HOOK | fields)
        assert r.status_code == 422, (fields, r.json())
        assert r.json()["detail"][0]["field"] == field, (fields, r.json())
    assert not Subscription.objects.exists()


def test_a_taken_name_is_409_and_null_for_a_required_field_is_422(api):
    made = _create(api)
    assert api.post("/subscriptions", HOOK).status_code == 409
    r = api.patch(f"/subscriptions/{made['id']}", {"url": None})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "url"


def test_read_only_tokens_read_but_do_not_write(api, reader):
    _create(api)
    assert reader.get("/subscriptions").status_code == 200
    assert reader.post("/subscriptions", HOOK | {"name": "other"}).status_code == 403
