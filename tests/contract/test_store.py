"""The store port's contract, run against every driver: memory, SQLite and PostgreSQL.

What a driver must do is written here once; a new driver passes this file or is not done.
The worker's side (``Session``) runs on its own event loop, as in a worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from django.conf import settings

from jobline.core.flow import FlowRules, Limit
from jobline.core.states import JobStatus
from jobline.core.values import ClaimFilter, Completion, NewJob, WorkerInfo
from jobline.exceptions import DatabaseLocked, DatabaseReadOnly
from jobline.models import Job, Subscription
from jobline.services import actions, database
from jobline.store import CONTROL, JOBS, Store
from jobline.store.memory import MemoryStore

LEASE = 30.0
ALL = ClaimFilter(queues=None, types=("t", "u"), tags=())


def row(type: str = "t", **overrides: Any) -> NewJob:
    values: dict[str, Any] = {
        "type": type,
        "queue": "default",
        "priority": 0,
        "inputs": {"n": 1},
        "max_attempts": 3,
        "timeout": None,
        "requires": (),
        "idempotency_key": None,
        "delay": 0.0,
    }
    return NewJob(**(values | overrides))


def worker(worker_id: str) -> WorkerInfo:
    return WorkerInfo(id=worker_id, hostname="h", pid=1, queues=None, tags=(), concurrency=10)


@dataclass
class Harness:
    """A driver, and how a test reads and changes its jobs from outside the port."""

    store: Store
    connection: Any
    read: Any  # job id -> {"status", "attempts", "outputs", "error", "dispatch"}
    cancel: Any  # job ids -> None (a person terminates them)
    pause: Any  # queue -> None
    subscribe: Any  # () -> None: an active subscription exists from now on (job events)

    def insert(self, *rows: NewJob) -> list[int]:
        return [job_id for job_id, _ in self.store.insert_jobs(self.connection, rows)]

    def session(self, fn) -> Any:
        """Run ``fn(session)`` on an open session, on an event loop of its own."""

        async def main() -> Any:
            session = self.store.session()
            await session.open()
            try:
                return await fn(session)
            finally:
                await session.close()

        return asyncio.run(main())


def _memory() -> Harness:
    store = MemoryStore()

    def read(job_id: int) -> dict[str, Any]:
        job = store.job(job_id)
        return {
            "status": str(job.status),
            "attempts": job.attempts,
            "outputs": job.outputs,
            "error": job.error,
            "dispatch": job.dispatch,
        }

    def subscribe() -> None:
        store.subscribed = True

    return Harness(store, None, read, store.terminate, store.pause, subscribe)


def _database(alias: str) -> Harness:
    def read(job_id: int) -> dict[str, Any]:
        fields = ("status", "attempts", "outputs", "error", "dispatch")
        return Job.objects.using(alias).values(*fields).get(pk=job_id)

    return Harness(
        database.store(alias),
        database.connection(alias),
        read,
        lambda ids: actions.cancel_jobs(ids, using=alias),
        lambda queue: actions.pause_queue(queue, using=alias),
        lambda: Subscription.objects.using(alias).create(
            name="all", target="webhook", url="https://example.com/hook"
        ),
    )


SQL_DRIVERS = [
    pytest.param("sqlite", marks=pytest.mark.django_db(transaction=True)),
    pytest.param("postgres", marks=pytest.mark.django_db(transaction=True, databases=["postgres"])),
]
#: For behaviour only a database has (another process's lock, a read-only file or standby).
ON_SQL_DRIVERS = pytest.mark.parametrize("harness", SQL_DRIVERS, indirect=True)


@pytest.fixture(params=["memory", *SQL_DRIVERS])
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    if request.param == "memory":
        yield _memory()
        return
    alias = "default" if request.param == "sqlite" else "postgres"
    if alias not in settings.DATABASES:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL unreachable in CI: {settings.POSTGRES_ERROR}")
        pytest.skip(f"PostgreSQL unreachable ({settings.POSTGRES_ERROR})")
    request.getfixturevalue("transactional_db")
    yield _database(alias)


def claim(h: Harness, worker_id: str = "w1", limit: int = 10, where: ClaimFilter = ALL):
    async def go(session):
        await session.register_worker(worker(worker_id), LEASE)
        return await session.claim(worker_id, limit, where)

    return h.session(go)


def test_claims_in_priority_then_age_order_up_to_the_limit(harness):
    low, high, low2, low3 = harness.insert(
        row(priority=-1), row(priority=5), row(priority=-1), row(priority=-1)
    )
    assert [j.id for j in claim(harness, "w1", limit=1)] == [high]
    claimed = claim(harness, "w2", limit=2)  # one batch: they start together, in any order
    assert sorted(j.id for j in claimed) == [low, low2]
    assert [(j.attempt, j.inputs) for j in claimed] == [(1, {"n": 1})] * 2
    assert harness.read(low3)["status"] == "queued"
    assert harness.read(high)["status"] == "running"


def test_a_claimed_job_is_nobody_else_s(harness):
    harness.insert(row(), row())
    first = claim(harness, "w1")
    second = claim(harness, "w2")
    assert len(first) == 2 and second == []


def test_claims_only_what_the_filter_allows(harness):
    plain, tagged, other_type, other_queue = harness.insert(
        row(), row(requires=("gpu",)), row(type="x"), row(queue="mail")
    )
    where = ClaimFilter(queues=("default",), types=("t",), tags=())
    assert [j.id for j in claim(harness, where=where)] == [plain]
    gpu = ClaimFilter(queues=("default",), types=("t",), tags=("gpu",))
    assert [j.id for j in claim(harness, "w2", where=gpu)] == [tagged]
    assert harness.read(other_type)["status"] == harness.read(other_queue)["status"] == "queued"


def test_paused_queues_are_not_claimed(harness):
    [job] = harness.insert(row(queue="paused"))
    harness.pause("paused")
    assert claim(harness) == []
    assert harness.read(job)["status"] == "queued"


def test_a_delayed_job_waits_and_the_idle_worker_knows_how_long(harness):
    harness.insert(row(delay=3600))

    async def go(session):
        await session.register_worker(worker("w1"), LEASE)
        return await session.claim("w1", 10, ALL), await session.next_due_in(ALL)

    claimed, due_in = harness.session(go)
    assert claimed == [] and 3500 < due_in <= 3600


def test_an_idempotency_key_keeps_the_first_job(harness):
    [(first, key)] = harness.store.insert_jobs(harness.connection, [row(idempotency_key="k")])
    again = harness.store.insert_jobs(harness.connection, [row(idempotency_key="k")])
    assert key == "k" and again == []
    assert harness.store.find_keys(harness.connection, ["k", "other"]) == {"k": first}


def test_async_inserts_commit_on_the_store_s_own_connection(harness):
    async def go() -> Any:
        one = await harness.store.ainsert_jobs([row(idempotency_key="a")])
        again = await harness.store.ainsert_jobs([row(idempotency_key="a")])
        many = await harness.store.ainsert_jobs([row(), row("u", inputs={"x": [1, "\u00e9"]})])
        return one, again, many, await harness.store.afind_keys(["a", "zz"])

    one, again, many, found = asyncio.run(go())
    assert [key for _, key in one] == ["a"] and again == [] and found == {"a": one[0][0]}
    assert [key for _, key in many] == [None, None]
    assert [harness.read(job_id)["status"] for job_id, _ in one + many] == ["queued"] * 3
    # committed: another connection (the worker's) sees them
    assert sorted(j.id for j in claim(harness)) == sorted(job_id for job_id, _ in one + many)


def test_completions_write_results_only_for_the_job_s_owner(harness):
    ok, retried, stolen = harness.insert(row(), row(), row())

    async def go(session):
        await session.register_worker(worker("w1"), LEASE)
        await session.claim("w1", 10, ALL)
        await session.complete(
            "w1",
            [
                Completion(
                    id=ok, status=JobStatus.SUCCEEDED, outputs='{"a": 1}', dispatch="delivered"
                ),
                Completion(id=retried, status=JobStatus.QUEUED, error="boom", retry_in=3600),
            ],
        )
        await session.complete("w2", [Completion(id=stolen, status=JobStatus.FAILED)])

    harness.session(go)
    assert harness.read(ok) | {"error": ""} == {
        "status": "succeeded",
        "attempts": 1,
        "outputs": {"a": 1},
        "error": "",
        "dispatch": "delivered",
    }
    assert (harness.read(retried)["status"], harness.read(retried)["error"]) == ("queued", "boom")
    assert harness.read(stolen)["status"] == "running"  # w2 never owned it
    assert claim(harness, "w3") == []  # the retry is not due for an hour


@pytest.mark.parametrize("where", [ALL, dataclasses.replace(ALL, flow=True)], ids=["plain", "flow"])
def test_a_claim_writes_the_completions_it_carries_first(harness, where):
    first, retried, stolen, *rest = harness.insert(row(), row(), row(), row(), row())

    async def go(session):
        await session.register_worker(worker("w1"), LEASE)
        await session.register_worker(worker("w2"), LEASE)
        [a, b] = await session.claim("w1", 2, ALL)
        [c] = await session.claim("w2", 1, ALL)
        assert (a.id, b.id, c.id) == (first, retried, stolen)
        done = [
            Completion(id=first, status=JobStatus.SUCCEEDED, outputs='{"a": 1}'),
            Completion(id=retried, status=JobStatus.QUEUED, error="boom", retry_in=3600),
            Completion(id=stolen, status=JobStatus.FAILED),  # w2's: w1 writes nothing to it
        ]
        return await session.claim("w1", 10, where, done=done)

    claimed = harness.session(go)
    assert sorted(j.id for j in claimed) == rest  # the retry is not due for an hour
    assert (harness.read(first)["status"], harness.read(first)["outputs"]) == (
        "succeeded",
        {"a": 1},
    )
    assert (harness.read(retried)["status"], harness.read(retried)["error"]) == ("queued", "boom")
    assert harness.read(stolen)["status"] == "running"


def test_put_back_undoes_the_attempt(harness):
    [job] = harness.insert(row())

    async def go(session):
        await session.register_worker(worker("w1"), LEASE)
        await session.claim("w1", 10, ALL)
        await session.put_back("w1", [job])

    harness.session(go)
    assert (harness.read(job)["status"], harness.read(job)["attempts"]) == ("queued", 0)
    assert [j.attempt for j in claim(harness, "w2")] == [1]


def test_a_heartbeat_renews_the_lease_and_hands_over_terminations(harness):
    keep, stop = harness.insert(row(), row())
    claim(harness, "w1")
    harness.cancel([stop])

    async def go(session):
        return await session.heartbeat("w1", LEASE, running=2, processed=0, stats=json.dumps({}))

    reply = harness.session(go)
    assert reply.alive and reply.cancel == [stop]
    assert harness.read(keep)["status"] == "running"


def test_a_worker_whose_lease_lapsed_is_told_so(harness):
    async def go(session):
        await session.register_worker(worker("gone"), -1.0)  # its lease ended a second ago
        return await session.heartbeat("gone", LEASE, running=0, processed=0, stats="{}")

    assert harness.session(go).alive is False


def test_the_rescue_decides_by_attempts_and_termination(harness):
    again, spent, asked = harness.insert(row(), row(max_attempts=1), row())

    async def go(session):
        await session.register_worker(worker("gone"), LEASE)
        await session.claim("gone", 10, ALL)
        await session.register_worker(worker("w2"), LEASE)
        return session

    harness.session(go)
    harness.cancel([asked])

    async def lapse_and_rescue(session):
        # The lost worker's lease lapses: it re-registers under the same id with none left.
        await session.deregister_worker("gone")
        await session.register_worker(worker("gone"), -1.0)
        return await session.rescue_lost()

    assert sorted(harness.session(lapse_and_rescue)) == sorted([again, spent, asked])
    assert harness.read(again)["status"] == "queued"
    assert harness.read(spent)["status"] == "failed"
    assert harness.read(spent)["error"].startswith("worker lost")
    assert harness.read(asked)["status"] == "cancelled"
    assert [j.attempt for j in claim(harness, "w3")] == [2]


def test_listeners_wake_on_new_jobs_and_on_control(harness):
    async def go() -> tuple[bool, bool]:
        listener = harness.store.listener((JOBS, CONTROL))
        await listener.open()
        try:
            await asyncio.to_thread(harness.insert, row())
            jobs = await _woken(listener.event(JOBS))
            if not harness.store.supports_listen:  # it sees commits, not channels: done
                return jobs, listener.event(CONTROL).is_set()
            listener.event(CONTROL).clear()
            await asyncio.to_thread(harness.store.notify, harness.connection, CONTROL)
            return jobs, await _woken(listener.event(CONTROL))
        finally:
            await listener.close()

    assert asyncio.run(go()) == (True, True)


async def _woken(event: asyncio.Event) -> bool:
    try:
        await asyncio.wait_for(event.wait(), 10)
    except TimeoutError:
        return False
    return True


def test_a_worker_can_ask_which_jobs_it_holds(harness):
    mine, theirs = harness.insert(row(), row(type="u"))
    claim(harness, "w1", where=ClaimFilter(queues=None, types=("t",), tags=()))
    claim(harness, "w2", where=ClaimFilter(queues=None, types=("u",), tags=()))

    async def go(session):
        return await session.running("w1"), await session.running("nobody")

    assert harness.session(go) == ([mine], [])
    assert harness.read(theirs)["status"] == "running"


def test_a_maintenance_lock_is_held_by_one_at_a_time(harness):
    """Pruning runs in one process of the fleet: the lock is taken without waiting."""
    store = harness.store
    assert store.try_lock(harness.connection, 7) is True
    try:
        if store.supports_skip_locked:  # SQLite's single writer needs no lock
            other = _second_connection(harness)
            try:
                assert store.try_lock(other, 7) is False
            finally:
                if other is not None:
                    other.close()
    finally:
        store.unlock(harness.connection, 7)


def _second_connection(harness: Harness) -> Any:
    if isinstance(harness.store, MemoryStore):
        return None  # a memory store is one process: the same lock set
    return psycopg.connect(harness.store.dsn, autocommit=True)


TRACE = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}


def test_a_job_s_trace_context_comes_back_with_its_claim(harness):
    """Every insert path stores it (one row, a batch, flow keys, async), and the claim,
    plain or flow-controlled, returns it; jobs without one come back without."""
    traced = {"traceparent": TRACE["traceparent"], "tracestate": "vendor=x"}
    [one] = harness.insert(row(trace_context=traced))
    batch = harness.insert(row(trace_context=TRACE), row(), row("u", trace_context=TRACE))
    [flowing] = harness.insert(
        row(trace_context=TRACE, flow=FlowRules(limit=Limit(5)).keys("t", {"n": 1}))
    )
    [(later, _)] = asyncio.run(harness.store.ainsert_jobs([row(trace_context=traced)]))
    flow_filter = ClaimFilter(queues=None, types=("t", "u"), tags=(), flow=True)
    found = {j.id: j.trace_context for j in claim(harness, limit=10, where=flow_filter)}
    assert found == {
        one: traced,
        batch[0]: TRACE,
        batch[1]: None,
        batch[2]: TRACE,
        flowing: TRACE,
        later: traced,
    }


# -- the database's state, explained (``Store.explain``) ---------------------------------------


def test_errors_that_are_not_the_database_s_state_are_not_explained(harness):
    assert harness.store.explain(ValueError("a bug")) is None
    assert harness.store.explain(KeyError("status")) is None


def test_the_store_s_own_errors_explain_themselves_through_a_chain(harness):
    locked = DatabaseLocked("held elsewhere")
    try:
        try:
            raise locked
        except DatabaseLocked as exc:
            raise RuntimeError("wrapped, as Django wraps its driver's errors") from exc
    except RuntimeError as wrapped:
        assert harness.store.explain(wrapped) is locked


@contextlib.contextmanager
def _write_lock_held_elsewhere(harness: Harness) -> Iterator[None]:
    """Another connection holds the write lock; this one gives up waiting in 0.1 s."""
    store, conn = harness.store, harness.connection
    if store.name == "sqlite":
        other = sqlite3.connect(store.path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        conn.execute("PRAGMA busy_timeout = 100")
        try:
            yield
        finally:
            conn.execute(f"PRAGMA busy_timeout = {round(store.busy_timeout * 1000)}")
            other.close()
        return
    other = psycopg.connect(store.dsn)
    other.execute("LOCK TABLE jobline_job IN ACCESS EXCLUSIVE MODE")
    conn.execute("SET lock_timeout = '100ms'")
    try:
        yield
    finally:
        conn.execute("RESET lock_timeout")
        other.close()


@contextlib.contextmanager
def _read_only(harness: Harness) -> Iterator[None]:
    conn = harness.connection
    if harness.store.name == "sqlite":
        conn.execute("PRAGMA query_only = 1")
        try:
            yield
        finally:
            conn.execute("PRAGMA query_only = 0")
        return
    conn.execute("SET default_transaction_read_only = on")  # as on a standby
    try:
        yield
    finally:
        conn.execute("RESET default_transaction_read_only")


def _refused_write(harness: Harness) -> Exception:
    with pytest.raises(Exception) as refused:
        harness.insert(row())
    return refused.value


@ON_SQL_DRIVERS
def test_a_write_lock_held_elsewhere_is_explained_as_locked(harness):
    with _write_lock_held_elsewhere(harness):
        explained = harness.store.explain(_refused_write(harness))
    assert isinstance(explained, DatabaseLocked)
    assert "lock" in str(explained)
    assert harness.insert(row())  # and once it is free, writes work


@ON_SQL_DRIVERS
def test_a_read_only_database_is_explained_as_read_only(harness):
    with _read_only(harness):
        explained = harness.store.explain(_refused_write(harness))
    assert isinstance(explained, DatabaseReadOnly)
    assert "read-only" in str(explained)
    assert harness.insert(row())
