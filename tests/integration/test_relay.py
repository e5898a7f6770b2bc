"""The relay (``jobline.services.subscriptions.relay``): events to delivery jobs, by filter."""

from __future__ import annotations

import asyncio

from django.core.management import call_command
from django.db import connection, connections, transaction

import jobline
from jobline.core.events import DELIVER_TYPE
from jobline.models import Job, OutboxEvent, Schedule, Subscription
from jobline.services.subscriptions import Relay, relay
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
    destination = failed.inputs["destination"]
    assert (destination["target"], destination["url"]) == (
        "webhook",
        "https://example.com/failures",
    )
    assert "hunter2" not in failed.inputs["event"]["job"]["error"]
    (done,) = jobs.filter(type=DELIVER_TYPE, inputs__subscription="nightly")
    assert "s3cr3t-value" not in str(done.inputs["event"]["job"]["outputs"])
    assert relay(alias) == 0  # taken once
    assert not Job.objects.using(alias).filter(type=DELIVER_TYPE, status="succeeded").exists()


TRIGGERS = {"jobline_job_outbox_created", "jobline_job_outbox_changed"}


def triggers(alias: str) -> set[str]:
    connection = connections[alias]
    sql = {
        "sqlite": "SELECT name FROM sqlite_master WHERE type = 'trigger'",
        "postgresql": "SELECT tgname FROM pg_trigger WHERE tgrelid = 'jobline_job'::regclass",
    }[connection.vendor]
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return {name for (name,) in cursor.fetchall()} & TRIGGERS


def test_the_triggers_exist_only_while_an_active_subscription_does(alias):
    subscribe(alias, "first").delete()  # whatever earlier tests left: no subscription now
    assert triggers(alias) == set()
    first = subscribe(alias, "first")
    assert triggers(alias) == TRIGGERS
    with transaction.atomic(using=alias):  # in the caller's transaction, with its writes
        subscribe(alias, "second", is_active=False)
        first.delete()
        assert triggers(alias) == set()
    second = Subscription.objects.using(alias).get(name="second")
    second.is_active = True
    second.save(using=alias)
    assert triggers(alias) == TRIGGERS
    jobline.enqueue("noop", {}, using=alias)
    assert OutboxEvent.objects.using(alias).count() == 1


def test_sqlite_triggers_come_back_after_a_migration_that_rebuilt_the_job_table():
    """A later migration that rebuilds jobline_job (SQLite alters columns by copying the
    table) drops its triggers; every migrate run puts them back."""
    assert connection.vendor == "sqlite"  # the default alias; PostgreSQL alters in place
    subscribe("default", "all")
    assert triggers("default") == TRIGGERS
    with connection.schema_editor() as editor:  # what altering a column does on SQLite
        editor._remake_table(Job)
    assert triggers("default") == set()
    call_command("migrate", "jobline", verbosity=0)
    assert triggers("default") == TRIGGERS


def test_postgresql_wakes_the_relay_at_commit(pg_alias):
    """With a poll of a minute, only the trigger's NOTIFY can bring the event over in time."""
    subscribe(pg_alias, "all")
    relay_ = Relay(pg_alias, poll=60.0)

    def enqueue() -> None:
        jobline.enqueue("noop", {}, using=pg_alias)
        connections[pg_alias].close()  # this thread's own

    async def main() -> None:
        running = asyncio.create_task(relay_.run())
        try:
            while not relay_.passes:  # listening, and the first pass found nothing
                await asyncio.sleep(0.01)
            await asyncio.to_thread(enqueue)
            async with asyncio.timeout(20):
                while relay_.relayed == 0:
                    await asyncio.sleep(0.01)
        finally:
            relay_.stop()
            await running

    asyncio.run(main())
    assert Job.objects.using(pg_alias).filter(type=DELIVER_TYPE).count() == 1
