"""The relay (``jobline.services.subscriptions.relay``): events to delivery jobs, by filter."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import connection

import jobline
from jobline.core.events import DELIVER_TYPE
from jobline.models import Job, OutboxEvent, Schedule, Subscription
from jobline.services.subscriptions import relay
from tests.conftest import ALL_DATABASES

pytestmark = ALL_DATABASES


def subscribe(alias: str, name: str, **fields) -> Subscription:
    values = {"target": "webhook", "url": f"https://example.com/{name}"} | fields
    return Subscription.objects.using(alias).create(name=name, **values)


def deliveries(alias: str) -> dict[str, list[tuple[int, str]]]:
    """(job id, event) delivered per subscription."""
    out: dict[str, list[tuple[int, str]]] = {}
    jobs = Job.objects.using(alias).filter(type=DELIVER_TYPE).order_by("id")
    for inputs in jobs.values_list("inputs", flat=True):
        event = inputs["event"]
        out.setdefault(inputs["subscription"], []).append((event["job"]["id"], event["event"]))
    return out


def test_each_event_goes_to_the_subscriptions_it_matches(alias):
    schedule = Schedule.objects.using(alias).create(
        name="nightly", job_type="noop", kind="interval", rule="1h"
    )
    subscribe(alias, "all")
    subscribe(alias, "failures", events=["failed"])
    subscribe(alias, "mail", queue="mail", target="kafka", topic="events", url="")
    subscribe(alias, "nightly", schedule=schedule)
    subscribe(alias, "paused", is_active=False)
    plain = jobline.enqueue("noop", {}, using=alias)
    mail = jobline.enqueue("noop", {}, using=alias, queue="mail")
    fired = jobline.enqueue("noop", {}, using=alias)
    jobs = Job.objects.using(alias)
    jobs.filter(pk=fired.id).update(schedule=schedule)  # no event: the status did not change
    jobs.filter(pk=fired.id).update(status="succeeded", outputs={"api_token": "s3cr3t-value"})
    Job.objects.using(alias).filter(pk=mail.id).update(
        status="failed", error="at https://u:hunter2@example.com"
    )
    assert relay(alias) == 5 and not OutboxEvent.objects.using(alias).exists()
    got = deliveries(alias)
    created = [(j.id, "created") for j in (plain, mail, fired)]
    assert got["all"] == [*created, (fired.id, "succeeded"), (mail.id, "failed")]
    assert got["failures"] == [(mail.id, "failed")]
    assert got["mail"] == [(mail.id, "created"), (mail.id, "failed")]
    assert got["nightly"] == [(fired.id, "succeeded")]  # linked after its created event
    assert "paused" not in got
    (failed,) = Job.objects.using(alias).filter(type=DELIVER_TYPE, inputs__subscription="failures")
    assert failed.inputs["destination"] == {
        "target": "webhook",
        "url": "https://example.com/failures",
        "sign_with": "",
    }
    assert "hunter2" not in failed.inputs["event"]["job"]["error"]
    (done,) = jobs.filter(type=DELIVER_TYPE, inputs__subscription="nightly")
    assert "s3cr3t-value" not in str(done.inputs["event"]["job"]["outputs"])
    assert relay(alias) == 0  # taken once
    assert not Job.objects.using(alias).filter(type=DELIVER_TYPE, status="succeeded").exists()


def test_sqlite_triggers_come_back_after_a_migration_that_rebuilt_the_job_table():
    """A later migration that rebuilds jobline_job (SQLite alters columns by copying the
    table) drops its triggers; every migrate run puts them back."""
    if connection.vendor != "sqlite":
        pytest.skip("PostgreSQL keeps triggers through ALTER TABLE")

    def triggers() -> set[str]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
            return {name for (name,) in cursor.fetchall()}

    names = {"jobline_job_outbox_created", "jobline_job_outbox_changed"}
    assert names <= triggers()
    with connection.schema_editor() as editor:  # what altering a column does on SQLite
        editor._remake_table(Job)
    assert not names & triggers()
    call_command("migrate", "jobline", verbosity=0)
    assert names <= triggers()
