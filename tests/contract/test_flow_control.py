"""Flow control's contract, on every driver: limits, rates, queue rules, fairness, unique.

The claim enforces them from the jobs' rows; these tests drive the port directly, with the
harness of ``test_store``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from jobline.core.flow import FlowRules, Limit, QueueRules, Rate, Unique
from jobline.core.states import JobStatus
from jobline.core.values import ClaimFilter, Completion, NewJob
from jobline.services import actions
from jobline.store.memory import MemoryStore
from tests.contract.test_store import LEASE, Harness, harness, row, worker

__all__ = ["harness"]  # the fixture, shared with test_store

FLOW = ClaimFilter(queues=None, types=("t", "u"), tags=(), flow=True, rate_window=3600.0)


def flowing(rules: FlowRules, type: str = "t", **inputs: Any) -> NewJob:
    return row(type, inputs=inputs, flow=rules.keys(type, inputs))


def claim(h: Harness, worker_id: str, limit: int = 100, where: ClaimFilter = FLOW) -> list[Any]:
    async def go(session):
        await session.register_worker(worker(worker_id), LEASE)
        return await session.claim(worker_id, limit, where)

    return h.session(go)


def finish(h: Harness, worker_id: str, ids: list[int]) -> None:
    async def go(session):
        done = [Completion(id=i, status=JobStatus.SUCCEEDED, flow=True) for i in ids]
        await session.complete(worker_id, done)

    h.session(go)


def set_rules(h: Harness, rules: QueueRules) -> None:
    if isinstance(h.store, MemoryStore):
        h.store.set_queue_rules(rules)
    else:
        using = "default" if h.store.name == "sqlite" else "postgres"
        actions.set_queue_rules(
            rules.name, limit=rules.limit, rate=rules.rate, per=rules.per, using=using
        )


def by_account(jobs: list[Any]) -> dict[Any, int]:
    counts: dict[Any, int] = {}
    for j in jobs:
        counts[j.inputs["account"]] = counts.get(j.inputs["account"], 0) + 1
    return counts


def test_a_limit_holds_per_key_across_claimers_until_a_slot_is_freed(harness):
    two = FlowRules(limit=Limit(2, key="account"))
    harness.insert(*[flowing(two, account=a) for a in ("a", "b") for _ in range(5)])
    first = claim(harness, "w1")
    assert by_account(first) == {"a": 2, "b": 2} and all(j.flow for j in first)
    assert claim(harness, "w2") == []  # another worker sees the slots taken
    finish(harness, "w1", [next(j.id for j in first if j.inputs["account"] == "a")])
    assert by_account(claim(harness, "w3")) == {"a": 1}


def test_a_limit_without_a_key_covers_the_whole_type_and_not_other_types(harness):
    one = FlowRules(limit=Limit(1))
    harness.insert(flowing(one, n=1), flowing(one, n=2), row("u"), row("u"))
    claimed = claim(harness, "w1")
    assert sorted(j.type for j in claimed) == ["t", "u", "u"]


def test_a_worker_killed_holding_slots_frees_them_when_its_lease_lapses(harness):
    two = FlowRules(limit=Limit(2))
    harness.insert(*[flowing(two, n=i) for i in range(4)])
    assert len(claim(harness, "gone")) == 2
    assert claim(harness, "w2") == []

    async def lapse_and_rescue(session):
        await session.deregister_worker("gone")
        await session.register_worker(worker("gone"), -1.0)
        return await session.rescue_lost()

    assert len(harness.session(lapse_and_rescue)) == 2
    assert len(claim(harness, "w3")) == 2


def test_a_rate_caps_starts_in_its_window_and_the_idle_worker_knows_when_it_opens(harness):
    rate = FlowRules(rate=Rate(3, per=60, key="host"))
    harness.insert(*[flowing(rate, host=h) for h in ("x", "x", "x", "x", "x", "y")])
    claimed = claim(harness, "w1")
    assert sorted(j.inputs["host"] for j in claimed) == ["x", "x", "x", "y"]

    async def later(session):
        await session.register_worker(worker("w2"), LEASE)
        return await session.claim("w2", 100, FLOW), await session.next_due_in(FLOW)

    again, due_in = harness.session(later)
    assert again == [] and 55 < due_in <= 60  # the first start leaves the window in 60 s


def test_limit_and_rate_together_each_hold(harness):
    both = FlowRules(limit=Limit(5, key="account"), rate=Rate(2, per=3600, key="host"))
    harness.insert(*[flowing(both, account=a, host="h") for a in ("a", "b") for _ in range(3)])
    assert len(claim(harness, "w1")) == 2
    assert claim(harness, "w2") == []


def test_keys_take_turns_so_a_big_backlog_does_not_delay_another_key(harness):
    wide = FlowRules(limit=Limit(1000, key="account"))
    harness.insert(*[flowing(wide, account="big") for _ in range(5000)])
    [late] = harness.insert(flowing(wide, account="small"))
    assert late in [j.id for j in claim(harness, "w1", limit=5)]


def test_a_queue_limit_and_rate_hold_for_every_job_in_it(harness):
    set_rules(harness, QueueRules(name="slow", limit=2))
    harness.insert(*[row(queue="slow") for _ in range(4)], row())
    claimed = claim(harness, "w1")
    assert sorted(j.queue for j in claimed) == ["default", "slow", "slow"]
    assert claim(harness, "w2") == []
    set_rules(harness, QueueRules(name="slow", limit=None, rate=1, per=3600))
    assert [j.queue for j in claim(harness, "w3")] == []  # 2 started in the window already
    set_rules(harness, QueueRules(name="slow"))  # no rules: a plain queue again
    assert len(claim(harness, "w4", where=ClaimFilter(queues=None, types=("t",)))) == 2


def test_a_paused_queue_holds_flow_controlled_jobs_too(harness):
    [job] = harness.insert(replace(flowing(FlowRules(limit=Limit(2))), queue="paused"))
    harness.pause("paused")
    assert claim(harness, "w1") == []
    assert harness.read(job)["status"] == "queued"


def unique(h: Harness, *rows: NewJob) -> list[tuple[int, bool]]:
    return h.store.insert_unique(h.connection, list(rows))


def test_unique_keep_returns_the_live_job_and_a_new_key_makes_a_new_one(harness):
    rules = FlowRules(unique=Unique(300, key="report"))
    [(first, created)] = unique(harness, flowing(rules, report=1, v="a"))
    assert created
    assert unique(harness, flowing(rules, report=1, v="b")) == [(first, False)]
    [(other, created)] = unique(harness, flowing(rules, report=2, v="a"))
    assert created and other != first
    assert harness.read(first)["status"] == "queued"


def test_unique_replace_updates_the_pending_job(harness):
    rules = FlowRules(unique=Unique(300, key="report", on_conflict="replace"))
    [(first, _)] = unique(harness, flowing(rules, report=1, v="a"))
    assert unique(harness, flowing(rules, report=1, v="b")) == [(first, False)]
    [job] = claim(harness, "w1", where=ClaimFilter(queues=None, types=("t",)))
    assert job.inputs == {"report": 1, "v": "b"}


def test_unique_in_one_batch_makes_one_job_per_key(harness):
    rules = FlowRules(unique=Unique(300, key="report"))
    answers = unique(harness, *[flowing(rules, report=r % 2) for r in range(6)])
    assert [created for _, created in answers] == [True, True, False, False, False, False]
    assert len({job_id for job_id, _ in answers}) == 2


def test_unique_ignores_jobs_outside_its_states(harness):
    rules = FlowRules(unique=Unique(300, key="report"))
    [(first, _)] = unique(harness, flowing(rules, report=1))
    [job] = claim(harness, "w1", where=ClaimFilter(queues=None, types=("t",)))
    finish(harness, "w1", [job.id])
    [(second, created)] = unique(harness, flowing(rules, report=1))
    assert created and second != first


def test_plain_jobs_are_claimed_beside_flow_controlled_ones(harness):
    harness.insert(row(), row())
    assert [j.flow for j in claim(harness, "w1", where=FLOW)] == [False, False]
