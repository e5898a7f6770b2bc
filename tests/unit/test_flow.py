"""Flow control's pure parts: the rules, the keys a job's row carries, unique batches, and
the reason a held job gives."""

from __future__ import annotations

import pytest

import jobline
from jobline.core.flow import FlowKeys, FlowRules, Limit, QueueRules, Rate, Unique, waiting_reason
from jobline.core.unique import Match, plan_unique
from jobline.core.values import NewJob
from jobline.exceptions import JobDefinitionError


def test_keys_read_the_inputs_and_name_the_type():
    rules = FlowRules(limit=Limit(2, key="account_id"), rate=Rate(10, key=["host", "port"]))
    keys = rules.keys("export", {"account_id": 42, "host": "api.example.com", "port": 443})
    assert keys is not None
    assert (keys.limit_key, keys.limit_n) == ("export:account_id=42", 2)
    assert keys.rate_key == "export:host=api.example.com,port=443"
    assert keys.claim_key == keys.limit_key  # keys take turns by the limit's key
    assert FlowRules(limit=Limit(1)).keys("export", {}).limit_key == "export"  # type: ignore[union-attr]
    assert FlowRules().keys("export", {}) is None  # no rules: the row pays nothing


@pytest.mark.parametrize(
    "make",
    [
        lambda: Limit(0),
        lambda: Rate(5, per=0),
        lambda: Rate(5, per=90_000),
        lambda: Unique(0),
        lambda: Unique(60, on_conflict="merge"),
        lambda: Unique(60, states=("done",)),
        lambda: Limit(2, key=""),
    ],
)
def test_bad_rules_are_refused_when_defined(make):
    with pytest.raises(JobDefinitionError):
        make()


def test_a_key_must_be_an_input_field():
    with pytest.raises(JobDefinitionError, match="limit key \\['tenant'\\] is not an input field"):

        @jobline.job(name="flow_bad_key", limit=jobline.Limit(2, key="tenant"))
        async def bad(account_id: int) -> None: ...


def _row(report: int, v: str, *, replace: bool = False) -> NewJob:
    rules = FlowRules(unique=Unique(60, key="report", on_conflict="replace" if replace else "keep"))
    inputs = {"report": report, "v": v}
    return NewJob(
        type="t",
        queue="default",
        priority=0,
        inputs=inputs,
        max_attempts=1,
        timeout=None,
        requires=(),
        idempotency_key=None,
        delay=0.0,
        flow=rules.keys("t", inputs),
    )


def test_a_unique_batch_inserts_one_row_per_new_key_and_returns_matches():
    rows = [_row(1, "a"), _row(2, "a"), _row(1, "b")]
    plan = plan_unique(rows, {"t:report=2": Match(7, "queued")})
    assert [r.inputs for r in plan.insert] == [{"report": 1, "v": "a"}] and plan.replace == []
    assert plan.answers([(5, None)]) == [(5, True), (7, False), (5, False)]


def test_replace_takes_the_last_row_s_inputs_for_a_queued_match_only():
    rows = [_row(1, "a", replace=True), _row(1, "b", replace=True), _row(2, "c", replace=True)]
    plan = plan_unique(rows, {"t:report=1": Match(7, "queued"), "t:report=2": Match(8, "running")})
    assert [(i, r.inputs["v"]) for i, r in plan.replace] == [(7, "b")]  # a running job stays
    assert plan.answers([]) == [(7, False), (7, False), (8, False)]


def test_a_held_job_says_why():
    keys = FlowKeys(
        limit_key="export:account_id=42", limit_n=2, rate_key="export:host=h", rate_n=10, rate_per=1
    )
    assert waiting_reason(keys, limit_used=1, rate_used=3) is None
    assert waiting_reason(keys, limit_used=2, rate_used=10) == (
        "waiting: 2 of 2 running for account_id=42; rate 10/s for host=h"
    )
    queue = QueueRules(name="mail", limit=5, rate=3, per=60)
    assert waiting_reason(FlowKeys(), limit_used=0, rate_used=0, queue=queue, queue_running=5) == (
        "waiting: 5 of 5 running in queue mail"
    )
