"""Enqueue on real SQLite and PostgreSQL: validation, transactions, idempotency, bulk."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connections, transaction

import jobline
from jobline.models import Job
from tests.conftest import ALL_DATABASES

pytestmark = ALL_DATABASES


def test_enqueue__stores_validated_inputs_and_type_defaults(alias):
    job = jobline.enqueue("add", {"a": 2}, using=alias)
    row = Job.objects.using(alias).get(pk=job.id)
    assert row.inputs == {"a": 2, "b": 1}
    assert (row.status, row.queue, row.attempts, row.max_attempts) == ("queued", "default", 0, 3)
    assert row.requires == []


def test_enqueue__bad_input_names_field_and_stores_nothing(alias):
    with pytest.raises(jobline.InputsError, match="a: Input should be a valid integer"):
        jobline.enqueue("add", {"a": "two"}, using=alias)
    with pytest.raises(jobline.UnknownJobType):
        jobline.enqueue("missing", {}, using=alias)
    with pytest.raises(ValueError, match="priority"):
        jobline.enqueue("add", {"a": 1}, priority=1000, using=alias)
    assert not Job.objects.using(alias).exists()


def test_enqueue__rolled_back_with_the_callers_transaction(alias):
    with pytest.raises(RuntimeError), transaction.atomic(using=alias):
        jobline.enqueue("add", {"a": 1}, using=alias)
        assert Job.objects.using(alias).count() == 1
        raise RuntimeError("rollback")
    assert not Job.objects.using(alias).exists()


def test_enqueue__idempotency_key_returns_the_first_job(alias):
    first = jobline.enqueue("add", {"a": 1}, idempotency_key="k1", using=alias)
    second = jobline.enqueue("add", {"a": 2}, idempotency_key="k1", using=alias)
    assert first.created and not second.created
    assert second.id == first.id
    assert Job.objects.using(alias).get().inputs["a"] == 1


def test_enqueue_many__bulk_in_order(alias):
    jobs = jobline.enqueue_many("add", [{"a": i} for i in range(5000)], queue="bulk", using=alias)
    assert len({j.id for j in jobs}) == 5000
    rows = dict(Job.objects.using(alias).values_list("id", "inputs"))
    assert [rows[j.id]["a"] for j in jobs] == list(range(5000))


def test_enqueue_many__one_bad_input_stores_nothing(alias):
    # After several batches have gone to the server: the transaction takes them back.
    inputs = [{"a": i} for i in range(1000)] + [{"a": "x"}]
    with pytest.raises(jobline.InputsError):
        jobline.enqueue_many("add", inputs, using=alias)
    assert not Job.objects.using(alias).exists()


def test_enqueue__delay_and_run_at(alias):
    before = datetime.now(UTC)
    delayed = jobline.enqueue("add", {"a": 1}, delay=60, using=alias)
    at = jobline.enqueue("add", {"a": 1}, run_at=before + timedelta(hours=1), using=alias)
    rows = {j.id: j for j in Job.objects.using(alias).all()}
    assert rows[delayed.id].run_at >= before + timedelta(seconds=59)
    assert abs(rows[at.id].run_at - (before + timedelta(hours=1))) < timedelta(seconds=5)
    with pytest.raises(ValueError, match="timezone-aware"):
        jobline.enqueue("add", {"a": 1}, run_at=datetime.now(), using=alias)


def test_enqueue__typed_handles(alias):
    from tests.example_app.jobs import Scale, add

    job = add.using(queue="q2", priority=5, using=alias).enqueue(a=3)
    cls_job = Scale.using(using=alias).enqueue(point={"x": 1})
    rows = {j.id: j for j in Job.objects.using(alias).all()}
    assert (rows[job.id].queue, rows[job.id].priority) == ("q2", 5)
    assert rows[cls_job.id].inputs == {"point": {"x": 1, "y": 0}, "factor": 2}
    assert rows[cls_job.id].type == "scale"


async def test_aenqueue(alias):
    from asgiref.sync import sync_to_async

    job = await jobline.aenqueue("add", {"a": 1}, using=alias)
    rows = await sync_to_async(
        lambda: list(Job.objects.using(alias).values_list("id", flat=True))
    )()
    await sync_to_async(connections.close_all)()  # the helper thread's connection
    assert rows == [job.id]


async def test_aenqueue__own_connection_keeps_every_promise(alias):
    """No thread: validation names the field, keys return the first job, bulk is in order and
    all or nothing, and the rows are committed for everyone to see."""
    from asgiref.sync import sync_to_async

    with pytest.raises(jobline.InputsError, match="a: Input should be a valid integer"):
        await jobline.aenqueue("add", {"a": "two"}, using=alias)
    first = await jobline.aenqueue("add", {"a": 1}, idempotency_key="ak", using=alias)
    again = await jobline.aenqueue("add", {"a": 2}, idempotency_key="ak", using=alias)
    assert (first.created, again.created, again.id) == (True, False, first.id)
    with pytest.raises(jobline.InputsError, match="a: Input should be a valid integer"):
        await jobline.aenqueue_many("add", [{"a": 1}, {"a": "x"}], using=alias)
    many = await jobline.aenqueue_many("add", [{"a": i} for i in range(3)], queue="q", using=alias)
    rows = await sync_to_async(
        lambda: list(Job.objects.using(alias).order_by("id").values_list("id", "inputs", "queue"))
    )()
    await sync_to_async(connections.close_all)()  # the helper thread's connection
    assert rows == [(first.id, {"a": 1, "b": 1}, "default")] + [
        (job.id, {"a": i, "b": 1}, "q") for i, job in enumerate(many)
    ]


def test_aenqueue__inside_a_transaction_joins_it(alias, monkeypatch):
    """Async code is never inside Django's ``atomic()``, unless it uses the sync ORM on the
    event loop's thread (allowed with DJANGO_ALLOW_ASYNC_UNSAFE): then the job joins it."""
    import asyncio

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

    async def main() -> tuple[bool, bool]:
        with transaction.atomic(using=alias):
            job = await jobline.aenqueue("add", {"a": 1}, using=alias)
            jobs = await jobline.aenqueue_many("add", [{"a": 2}], using=alias)
            inside = Job.objects.using(alias).filter(pk__in=[job.id, jobs[0].id]).count() == 2
            transaction.set_rollback(True, using=alias)
        after = Job.objects.using(alias).exists()
        connections[alias].close()
        return inside, after

    assert asyncio.run(main()) == (True, False)


def test_aenqueue__memory_store_needs_no_database():
    import asyncio

    from jobline.testing import memory_store

    with memory_store() as store:
        job = asyncio.run(jobline.aenqueue("add", {"a": 1}))
        jobs = asyncio.run(jobline.aenqueue_many("add", [{"a": 2}, {"a": 3}]))
        assert store.count() == 3 and [j.id for j in jobs] == [job.id + 1, job.id + 2]
