"""The ``deliver_event`` job type: one job event to one subscription's target.

The relay (``jobline.services.subscriptions``) enqueues one per (subscription, event), so
a delivery is retried with backoff by the queue itself while its receiver is down, and is
at least once: receivers dedupe on the event's ``id``.

* **webhook**: ``POST`` of the event as JSON through the same client, address guard and
  signature (``X-Jobline-Signature``, see :func:`jobline.dispatch.http.sign`) as ``http``
  jobs; headers ``Idempotency-Key: <event id>`` and ``X-Jobline-Event: <kind>``.
* **kafka**: the event to the topic, keyed by the job id (the producer of ``kafka`` jobs).
* **amqp**: the event to the exchange with the routing key (:mod:`jobline.dispatch.amqp`).
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from pydantic import ConfigDict, Field
from pydantic.dataclasses import dataclass

from jobline import conf
from jobline.core.events import DELIVER_TYPE
from jobline.core.retry import RetryPolicy
from jobline.dispatch import amqp, http, kafka
from jobline.jobtypes import Job
from jobline.worker.resources import shared

log = logging.getLogger("jobline.events")

EVENT_HEADER = "X-Jobline-Event"


@dataclass(frozen=True, kw_only=True, config=ConfigDict(extra="forbid"))
class Destination:
    """A subscription's target, as it was when the event was relayed."""

    target: Literal["webhook", "kafka", "amqp"]
    url: str = ""
    sign_with: str = ""
    topic: str = ""
    exchange: str = ""
    routing_key: str = ""


@dataclass(frozen=True, kw_only=True, config=ConfigDict(extra="forbid"))
class Delivery:
    subscription: str = Field(description="The subscription's name.")
    destination: Destination
    event: dict[str, Any] = Field(description="The event, as its receiver gets it.")


class DeliverEvent(Job):
    """Deliver one job event to a subscription's webhook, Kafka topic or AMQP exchange."""

    name = DELIVER_TYPE
    user_triggered = False
    max_attempts = 30  # about 19 hours of retries (1 s doubling to an hour) for a receiver down
    retry = RetryPolicy(base=1.0, cap=3600.0)
    Inputs = Delivery

    async def run(self) -> dict[str, Any]:
        delivery: Delivery = self.inputs
        where, event = delivery.destination, delivery.event
        body = kafka.compact_json(event).encode()
        if where.target == "webhook":
            request = http.HttpRequest(
                url=where.url, method="POST", json=event, sign_with=where.sign_with or None
            )
            headers = {http.IDEMPOTENCY_HEADER: event["id"], EVENT_HEADER: event["event"]}
            response = await http.call(request, headers)
            return {"status": response.status}
        if where.target == "kafka":
            if not conf.get("JOBLINE_KAFKA_ENABLED"):
                log.warning("KAFKA_ENABLED is false: event %s not sent", event["id"])
                return {"sent": False}
            key, job_type = str(event["job"]["id"]), event["job"]["type"]
            async with shared(
                kafka.PRODUCER_KEY, kafka.start_producer, kafka.stop_producer
            ) as producer:
                sent = await kafka.publish(producer, where.topic, key, job_type, body)
            return {"sent": True, "partition": sent.partition, "offset": sent.offset}
        await amqp.publish(
            where.exchange,
            where.routing_key,
            body,
            message_id=event["id"],
            headers={"event": event["event"], "job_type": event["job"]["type"]},
        )
        return {"sent": True}
