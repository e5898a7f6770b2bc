"""The store port's job events (``take_events``), on every driver: the outbox the relay reads.

An event is recorded when a job is created or its status changes (not on a retry), only
while a subscription is active, and never for the delivery jobs themselves.
"""

from __future__ import annotations

import json
from datetime import datetime

from jobline.core.events import DELIVER_TYPE
from jobline.core.states import JobStatus
from jobline.core.values import ClaimFilter, Completion
from tests.contract.test_store import LEASE, claim, harness, row, worker

__all__ = ["harness"]  # the fixture, shared with test_store


def kinds(events):
    return [(e["job_id"], e["kind"]) for e in events]


def test_no_events_while_nobody_subscribes(harness):
    (job,) = harness.insert(row())
    claim(harness)
    harness.cancel([job])
    assert harness.store.take_events(harness.connection, 100) == []


def test_a_job_s_life_makes_one_event_per_change_with_the_job_as_it_was(harness):
    harness.subscribe()
    ok, bad, retried, cancelled = harness.insert(row(), row(queue="q2"), row(), row())

    async def go(session):
        await session.register_worker(worker("w1"), LEASE)
        await session.claim("w1", 3, ClaimFilter(queues=None, types=("t",), tags=()))
        await session.complete(
            "w1",
            [
                Completion(id=ok, status=JobStatus.SUCCEEDED, outputs=json.dumps({"a": 1})),
                Completion(id=bad, status=JobStatus.FAILED, error="boom"),
                Completion(id=retried, status=JobStatus.QUEUED, error="again", retry_in=3600),
            ],
        )

    harness.session(go)
    harness.cancel([cancelled])
    events = harness.store.take_events(harness.connection, 100)
    assert kinds(events) == [
        (ok, "created"),
        (bad, "created"),
        (retried, "created"),
        (cancelled, "created"),
        *[(j, "started") for j in (ok, bad, retried)],
        (ok, "succeeded"),
        (bad, "failed"),
        (cancelled, "terminated"),
    ]  # the retry back to queued makes none
    assert [e["id"] for e in events] == sorted(e["id"] for e in events)
    by = {(e["job_id"], e["kind"]): e for e in events}
    done = by[(ok, "succeeded")]
    assert (done["type"], done["queue"], done["status"], done["attempts"]) == (
        "t",
        "default",
        "succeeded",
        1,
    )
    assert done["outputs"] == {"a": 1}
    assert all(isinstance(done[k], datetime) and done[k].tzinfo for k in ("at", "created_at"))
    assert done["finished_at"] >= done["started_at"] >= done["created_at"]
    assert (by[(bad, "failed")]["error"], by[(bad, "failed")]["queue"]) == ("boom", "q2")
    assert by[(ok, "started")]["status"] == "running" and by[(ok, "started")]["outputs"] is None
    assert by[(cancelled, "terminated")]["status"] == "cancelled"
    assert harness.store.take_events(harness.connection, 100) == []  # taken means gone


def test_takes_the_oldest_first_at_most_the_limit(harness):
    harness.subscribe()
    ids = harness.insert(*[row() for _ in range(5)])
    first = harness.store.take_events(harness.connection, 2)
    rest = harness.store.take_events(harness.connection, 10)
    assert [e["job_id"] for e in first] == ids[:2]
    assert [e["job_id"] for e in rest] == ids[2:]


def test_delivery_jobs_make_no_events(harness):
    harness.subscribe()
    harness.insert(row(type=DELIVER_TYPE))
    claim(harness, where=ClaimFilter(queues=None, types=(DELIVER_TYPE,), tags=()))
    assert harness.store.take_events(harness.connection, 10) == []


def test_a_batch_insert_makes_an_event_per_job(harness):
    harness.subscribe()
    ids = harness.insert(*[row() for _ in range(1000)])
    assert [e["job_id"] for e in harness.store.take_events(harness.connection, 5000)] == ids
