"""Subscription pages: the list, the form with errors by field, edit and delete."""

from __future__ import annotations

from django.contrib.auth.models import User

from jobline.models import Subscription
from tests.web.test_pages import flashes

HOOK = {"name": "hook", "target": "webhook", "url": "https://example.com/jobs", "is_active": "on"}


def test_create_list_edit_delete(ui):
    assert "No subscriptions yet" in ui.get("/subscriptions/").content.decode()
    form = ui.get("/subscriptions/new/").content.decode()
    assert 'name="url"' in form and 'value="terminated"' in form
    saved = ui.post("/subscriptions/new/", HOOK | {"events": ["failed", "terminated"]})
    assert saved.status_code == 302 and saved["Location"] == "/subscriptions/"
    made = Subscription.objects.get()
    assert (made.events, made.is_active, made.target) == (["failed", "terminated"], True, "webhook")
    listing = ui.get("/subscriptions/")
    assert flashes(listing) == ["Subscription hook saved"]
    page = listing.content.decode()
    assert "failed, terminated" in page and "https://example.com/jobs" in page
    edited = ui.post(
        f"/subscriptions/{made.id}/edit/", {"name": "hook", "target": "amqp", "routing_key": "q"}
    )
    assert edited.status_code == 302
    made.refresh_from_db()
    assert (made.target, made.routing_key, made.is_active, made.events) == ("amqp", "q", False, [])
    assert ui.post(f"/subscriptions/{made.id}/delete/").status_code == 302
    assert not Subscription.objects.exists()


def test_bad_fields_show_their_error_and_store_nothing(ui):
    for fields, field, words in [
        ({"url": "ftp://example.com/"}, "url", "only http:// and https://"),
        ({"target": "kafka", "topic": "bad topic"}, "topic", "a Kafka topic"),
        ({"target": "amqp"}, "routing_key", "give an exchange"),
        ({"queue": "a/b"}, "queue", "not allowed"),
        ({"events": ["exploded"]}, "events", "not one of the available choices"),
    ]:
        r = ui.post("/subscriptions/new/", HOOK | fields)
        assert r.status_code == 422, fields
        page = r.content.decode()
        assert f'id="error-{field}"' in page and words in page, (fields, page)
    assert not Subscription.objects.exists()


def test_a_taken_name_is_an_error_of_the_name(ui):
    Subscription.objects.create(name="hook", target="kafka", topic="t")
    r = ui.post("/subscriptions/new/", HOOK)
    assert r.status_code == 422 and 'id="error-name"' in r.content.decode()


def test_viewers_see_the_list_but_may_not_change_it(viewer):
    Subscription.objects.create(name="hook", target="kafka", topic="t")
    page = viewer.get("/subscriptions/").content.decode()
    assert "hook" in page and "/subscriptions/new/" not in page
    assert viewer.post("/subscriptions/new/", HOOK | {"name": "other"}).status_code == 403
    assert viewer.post(f"/subscriptions/{Subscription.objects.get().id}/delete/").status_code == 403
    assert Subscription.objects.count() == 1


def test_admin__checks_the_target_s_fields(db, client):
    client.force_login(User.objects.create_superuser("root", password="pw"))
    assert client.get("/admin/jobline/subscription/add/").status_code == 200
    fields = {"name": "bus", "events": '["failed"]', "target": "amqp", "is_active": "on"}
    r = client.post("/admin/jobline/subscription/add/", fields)
    assert r.status_code == 200 and "give an exchange, a routing key, or both" in r.content.decode()
    r = client.post("/admin/jobline/subscription/add/", fields | {"events": '["boom"]'})
    assert "unknown event kind" in r.content.decode()
    assert not Subscription.objects.exists()
    r = client.post("/admin/jobline/subscription/add/", fields | {"routing_key": "jobs"})
    assert r.status_code == 302
    assert Subscription.objects.get().events == ["failed"]
