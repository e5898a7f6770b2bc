"""Job events for subscriptions: what happened to a job, and who wants to hear about it.

An event is a row of the outbox (``jobline_outbox``), written by the database's triggers when
a job is created or its status changes, so it exists only once that change commits. This
module turns such a row into the message subscribers receive, and says which subscriptions
a message matches. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jobline.core import input_rules

#: Every kind of event, in a job's order. ``terminated``: cancelled (by a person, or with
#: its pipeline run).
KINDS = ("created", "started", "succeeded", "failed", "terminated")
#: The status a job moved to -> the event it makes (a retry back to ``queued`` makes none).
KIND_OF_STATUS = {
    "running": "started",
    "succeeded": "succeeded",
    "failed": "failed",
    "cancelled": "terminated",
}
TARGETS = ("webhook", "kafka", "amqp")  #: where a subscription delivers
#: The job type that delivers events: its own jobs make no events (or they would feed
#: themselves).
DELIVER_TYPE = "deliver_event"


@dataclass(frozen=True, slots=True, kw_only=True)
class Filters:
    """What a subscription wants: empty kinds means every kind; None means any."""

    kinds: tuple[str, ...] = ()
    job_type: str | None = None
    queue: str | None = None
    schedule_id: int | None = None

    def match(self, event: Mapping[str, Any]) -> bool:
        job = event["job"]
        return (
            (not self.kinds or event["event"] in self.kinds)
            and (self.job_type is None or job["type"] == self.job_type)
            and (self.queue is None or job["queue"] == self.queue)
            and (self.schedule_id is None or job["schedule_id"] == self.schedule_id)
        )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def message(row: Mapping[str, Any]) -> dict[str, Any]:
    """The event as subscribers receive it, from an outbox row (``jobline.store``'s
    ``take_events``). ``id`` is unique per event: receivers dedupe on it, since delivery is
    at least once. Outputs and error come as stored; the caller masks them."""
    finished = row["kind"] in ("succeeded", "failed", "terminated")
    return {
        "id": f"evt_{row['id']}",
        "event": row["kind"],
        "at": _iso(row["at"]),
        "job": {
            "id": row["job_id"],
            "type": row["type"],
            "queue": row["queue"],
            "status": row["status"],
            "attempts": row["attempts"],
            "schedule_id": row["schedule_id"],
            "created_at": _iso(row["created_at"]),
            "started_at": _iso(row["started_at"]),
            "finished_at": _iso(row["finished_at"]),
            "outputs": row["outputs"] if finished else None,
            "error": row["error"] if finished else "",
        },
    }


def kinds_problem(kinds: Sequence[Any]) -> str | None:
    """Why a list of event kinds is not one, or None."""
    if not isinstance(kinds, list | tuple):
        return "a list of event kinds"
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        return f"unknown event kind {unknown[0]!r}; choose from {', '.join(KINDS)}"
    if len(set(kinds)) != len(kinds):
        return "each event kind at most once"
    return None


TOPIC_PATTERN = r"^[A-Za-z0-9._-]{1,249}$"  #: Kafka's rule for topic names
_TOPIC = re.compile(TOPIC_PATTERN)


def target_problems(
    target: str, *, url: str = "", topic: str = "", exchange: str = "", routing_key: str = ""
) -> dict[str, str]:
    """Why a subscription's target cannot be delivered to, by field (empty when it can).

    webhook: an http(s) ``url``; kafka: a ``topic``; amqp: an ``exchange`` and/or a
    ``routing_key`` (the default exchange routes by key to the queue of that name)."""
    if target not in TARGETS:
        return {"target": f"choose from {', '.join(TARGETS)}"}
    problems: dict[str, str] = {}
    if target == "webhook":
        if not url:
            problems["url"] = "a webhook needs a URL"
        elif problem := input_rules.http_url_problem(url):
            problems["url"] = problem
    elif target == "kafka" and not _TOPIC.match(topic):
        problems["topic"] = "a Kafka topic: 1 to 249 letters, digits and '._-'"
    elif target == "amqp" and not (exchange or routing_key):
        problems["routing_key"] = "give an exchange, a routing key, or both"
    return problems
