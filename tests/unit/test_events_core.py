"""``jobline.core.events``: the message subscribers receive, filters, and target checks."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from jobline.core.events import Filters, kinds_problem, message, target_problems

T0 = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)


def row(**fields) -> dict:
    values = {
        "id": 7,
        "kind": "succeeded",
        "job_id": 42,
        "type": "send",
        "queue": "mail",
        "status": "succeeded",
        "attempts": 2,
        "schedule_id": 3,
        "outputs": {"ok": True},
        "error": "",
        "created_at": T0,
        "started_at": T0,
        "finished_at": T0,
        "at": T0,
    }
    return values | fields


def test_message__carries_the_job_as_it_was_and_an_event_id():
    event = message(row())
    assert event["id"] == "evt_7" and event["event"] == "succeeded"
    assert event["at"] == "2026-12-04T10:00:00+00:00"
    assert event["job"] == {
        "id": 42,
        "type": "send",
        "queue": "mail",
        "status": "succeeded",
        "attempts": 2,
        "schedule_id": 3,
        "created_at": "2026-12-04T10:00:00+00:00",
        "started_at": "2026-12-04T10:00:00+00:00",
        "finished_at": "2026-12-04T10:00:00+00:00",
        "outputs": {"ok": True},
        "error": "",
    }


def test_message__outputs_and_error_only_once_the_job_ended():
    started = message(row(kind="started", status="running", finished_at=None, error="old"))
    assert started["job"]["outputs"] is None and started["job"]["error"] == ""
    assert started["job"]["finished_at"] is None
    assert message(row(kind="failed", error="boom"))["job"]["error"] == "boom"


@pytest.mark.parametrize(
    ("filters", "matches"),
    [
        (Filters(), True),
        (Filters(kinds=("failed",)), False),
        (Filters(kinds=("failed", "succeeded")), True),
        (Filters(job_type="send"), True),
        (Filters(job_type="other"), False),
        (Filters(queue="mail", schedule_id=3), True),
        (Filters(queue="default"), False),
        (Filters(schedule_id=4), False),
    ],
)
def test_filters(filters, matches):
    assert filters.match(message(row())) is matches


def test_targets_need_their_fields():
    assert target_problems("webhook", url="https://example.com/x") == {}
    assert "URL" in target_problems("webhook")["url"]
    assert "only http" in target_problems("webhook", url="file:///etc/passwd")["url"]
    assert "no host" in target_problems("webhook", url="http:///x")["url"]
    assert target_problems("kafka", topic="jobs.events") == {}
    assert "topic" in target_problems("kafka", topic="a b")
    assert target_problems("amqp", routing_key="q") == {}
    assert target_problems("amqp", exchange="x") == {}
    assert "routing_key" in target_problems("amqp")
    assert "target" in target_problems("smtp")


def test_kinds():
    assert kinds_problem(["created", "terminated"]) is None
    assert "unknown event kind 'done'" in kinds_problem(["done"])
    assert "at most once" in kinds_problem(["failed", "failed"])
    assert kinds_problem("failed") == "a list of event kinds"
