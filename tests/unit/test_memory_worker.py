"""The worker loop on the in-memory store: its behaviour without a database.

No ``django_db`` marker here: pytest-django refuses any database query, so these tests also
prove that ``jobline.testing.memory_store`` needs none.
"""

from __future__ import annotations

import asyncio

import pytest

import jobline
from jobline.exceptions import StoreUnavailable
from jobline.testing import drain, memory_store, running_worker
from jobline.worker.runtime import options_from_settings
from jobline.worker.worker import Worker
from tests.conftest import wait_until
from tests.example_app.jobs import add, flaky


def test_enqueued_jobs_run_and_keep_their_outputs():
    with memory_store() as store:
        first = add.enqueue(a=1, b=2)
        jobline.enqueue("sync_add", {"a": 2, "b": 3})
        assert drain(2, timeout=30) == 2
        assert store.job(first.id).outputs == 3
        assert store.count("succeeded") == 2


def test_bulk_enqueue_and_idempotency_keys():
    with memory_store() as store:
        jobs = jobline.enqueue_many("add", [{"a": i} for i in range(50)])
        one = jobline.enqueue("add", {"a": 1}, idempotency_key="k")
        again = jobline.enqueue("add", {"a": 9}, idempotency_key="k")
        assert len({j.id for j in jobs}) == 50
        assert (again.id, again.created) == (one.id, False)
        assert drain(timeout=30) == 51
        assert sorted(store.job(j.id).outputs for j in jobs) == list(range(1, 51))


def test_failures_are_retried_with_backoff_until_they_succeed():
    with memory_store() as store:
        job = flaky.enqueue(fail_times=2)
        drain(timeout=30)
        found = store.job(job.id)
        assert (found.status, found.attempts, found.outputs) == ("succeeded", 3, "ok on attempt 3")


def test_a_terminated_running_job_stops_and_is_recorded_cancelled():
    with memory_store() as store, running_worker(heartbeat=0.1, lease=5) as worker:
        job = jobline.enqueue("slow", {"seconds": 600})
        wait_until(lambda: store.job(job.id).status == "running", what="the job started")
        store.terminate([job.id])
        wait_until(lambda: store.job(job.id).status == "cancelled", what="the job stopped")
        assert worker.processed == 1


def test_a_paused_queue_waits_until_resumed():
    with memory_store() as store, running_worker(heartbeat=0.1, lease=5):
        store.pause("mail")
        job = add.using(queue="mail").enqueue(a=1)
        other = add.enqueue(a=2)
        wait_until(lambda: store.job(other.id).status == "succeeded", what="the other queue ran")
        assert store.job(job.id).status == "queued"
        store.resume("mail")
        wait_until(lambda: store.job(job.id).status == "succeeded", what="the resumed queue ran")


class _ClaimFailsOnce:
    """The memory store's session, except that the first claim carrying completions fails:
    before reaching the store (nothing written, nothing taken), or after doing its work (as
    when the connection breaks before the answer arrives: the worker can know neither what
    was written nor what it took)."""

    def __init__(self, session, *, after_the_work: bool):
        self._session = session
        self._after = after_the_work
        self.failed = 0

    def __getattr__(self, name):
        return getattr(self._session, name)

    async def claim(self, worker_id, limit, where, *, done=()):
        fail = bool(done) and not self.failed
        if fail and not self._after:
            self.failed += 1
            raise StoreUnavailable("claim connection: connection refused")
        jobs = await self._session.claim(worker_id, limit, where, done=done)
        if fail:
            self.failed += 1
            raise StoreUnavailable("claim connection: server closed the connection")
        return jobs


@pytest.mark.parametrize("after_the_work", [False, True], ids=["before", "after"])
def test_a_failed_claim_that_carried_completions_loses_and_repeats_nothing(after_the_work):
    with memory_store() as store:
        jobs = jobline.enqueue_many("add", [{"a": i, "b": 1} for i in range(6)])
        session = _ClaimFailsOnce(store.session(), after_the_work=after_the_work)
        worker = Worker(session, options_from_settings(concurrency=1, until_idle=True))
        asyncio.run(asyncio.wait_for(worker.run(), 30))
        assert session.failed == 1
        # Every job once: completions the claim did not write are written by the flusher
        # (again, a no-op, if it did); jobs a lost answer took are put back with their
        # attempt undone, then run.
        assert [(store.job(j.id).status, store.job(j.id).attempts) for j in jobs] == [
            ("succeeded", 1)
        ] * 6
        assert [store.job(j.id).outputs for j in jobs] == [i + 1 for i in range(6)]
