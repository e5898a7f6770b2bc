"""The ``kafka`` job type: publish one job message for executors in other services.

The message is sent by a job in jobline's queue: a transactional outbox. Enqueue the job
inside your transaction and, once that commits, the message is produced at least once,
even if a worker dies mid-send (another worker sends it again). So a message may arrive
more than once: consumers dedupe on its key, the job id.

Message: key ``<job id>``, header ``job_type``, value (JSON)::

    {"id": 42, "title": "...", "job_type": "...", "configs": {...},
     "created_at": "<ISO 8601, UTC>", "schedule": "<name>"}

``created_at`` is when the job was created; ``schedule`` names the schedule that fired it
(absent when none did). The job succeeds once the broker acknowledges the message
(``acks=all``); its dispatch is then ``delivered`` until the executor reports back through
``POST /api/v1/jobs/{id}/report``.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import ConfigDict, Field
from pydantic.dataclasses import dataclass

from jobline import conf, tracing
from jobline.core.events import TOPIC_PATTERN
from jobline.core.jobtypes import current_job
from jobline.exceptions import Fail
from jobline.jobtypes import Job
from jobline.redact import redacted
from jobline.worker.resources import shared

if TYPE_CHECKING:
    from aiokafka import AIOKafkaProducer

log = logging.getLogger("jobline.kafka")

PRODUCER_KEY = "jobline.kafka.producer"


@dataclass(frozen=True, kw_only=True, config=ConfigDict(extra="forbid"))
class KafkaMessage:
    """The job message to publish."""

    title: str = Field(min_length=1, max_length=1000)
    job_type: str = Field(min_length=1, max_length=200, description="What executors should do.")
    configs: dict[str, Any] = Field(default_factory=dict, description="The executor's inputs.")
    topic: str | None = Field(
        None, pattern=TOPIC_PATTERN, description="Default: the KAFKA_TOPIC setting, else jobs."
    )


@dataclass(frozen=True, kw_only=True)
class KafkaDelivery:
    """Where the message went; ``sent`` is false when Kafka is disabled (it was logged)."""

    sent: bool
    topic: str
    partition: int | None = None
    offset: int | None = None


class Kafka(Job):
    """Publish a job message to a Kafka topic, keyed by the job id.

    The message and its guarantees: docs/how-to/http-and-kafka.md."""

    name = "kafka"
    user_triggered = True
    max_attempts = 10  # a broker that is down for a while loses nothing
    Inputs = KafkaMessage
    Outputs = KafkaDelivery

    @staticmethod
    def delivered(outputs: Any) -> bool:
        """The broker acknowledged it: the message is with its executors now."""
        return bool(outputs and outputs.get("sent"))

    async def run(self) -> KafkaDelivery:
        message: KafkaMessage = self.inputs
        job = current_job()
        job_id = job.id
        topic = message.topic or conf.get("JOBLINE_KAFKA_TOPIC") or "jobs"
        value = {
            "id": job_id,
            "title": message.title,
            "job_type": message.job_type,
            "configs": message.configs,
            # A job run by hand (no worker, no row) was created just now.
            "created_at": (job.created_at or datetime.now(UTC)).astimezone(UTC).isoformat(),
        }
        if job.schedule is not None:
            value["schedule"] = job.schedule
        if not conf.get("JOBLINE_KAFKA_ENABLED"):
            log.warning(
                "KAFKA_ENABLED is false: message logged, not sent topic=%s key=%s value=%s",
                topic,
                job_id,
                compact_json(redacted(value)),
            )
            return KafkaDelivery(sent=False, topic=topic)
        async with shared(PRODUCER_KEY, start_producer, stop_producer) as producer:
            data = compact_json(value).encode()
            return await publish(producer, topic, str(job_id), message.job_type, data)


def compact_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


async def publish(
    producer: AIOKafkaProducer, topic: str, key: str, job_type: str, value: bytes
) -> KafkaDelivery:
    """Send and wait for the broker's acknowledgement; errors no retry can fix fail the job."""
    from aiokafka import errors

    permanent = (
        errors.InvalidTopicError,
        errors.MessageSizeTooLargeError,
        errors.RecordTooLargeError,
        errors.TopicAuthorizationFailedError,
    )
    try:
        # With OpenTelemetry configured, the job's trace context (traceparent) goes along.
        headers = [("job_type", job_type.encode())]
        headers += [(k, v.encode()) for k, v in tracing.outgoing_headers().items()]
        sent = await producer.send_and_wait(topic, value, key=key.encode(), headers=headers)
    except permanent as exc:
        raise Fail(f"Kafka refused the message for topic {topic!r}: {exc!r}") from None
    return KafkaDelivery(sent=True, topic=sent.topic, partition=sent.partition, offset=sent.offset)


def producer_options() -> dict[str, Any]:
    """``AIOKafkaProducer`` keyword arguments from the ``JOBLINE_KAFKA_*`` settings."""
    options: dict[str, Any] = {
        "bootstrap_servers": conf.get("JOBLINE_KAFKA_BOOTSTRAP_SERVERS").replace(",", " ").split(),
        "client_id": "jobline",
        "acks": "all",
        "enable_idempotence": bool(conf.get("JOBLINE_KAFKA_IDEMPOTENT")),
        "security_protocol": conf.get("JOBLINE_KAFKA_SECURITY_PROTOCOL"),
    }
    if options["security_protocol"].startswith("SASL_"):
        options["sasl_mechanism"] = conf.get("JOBLINE_KAFKA_SASL_MECHANISM")
        options["sasl_plain_username"] = conf.get("JOBLINE_KAFKA_SASL_USERNAME") or None
        options["sasl_plain_password"] = conf.get("JOBLINE_KAFKA_SASL_PASSWORD") or None
    if options["security_protocol"] in ("SSL", "SASL_SSL"):
        from aiokafka.helpers import create_ssl_context

        options["ssl_context"] = create_ssl_context(
            cafile=conf.get("JOBLINE_KAFKA_SSL_CAFILE") or None,
            certfile=conf.get("JOBLINE_KAFKA_SSL_CERTFILE") or None,
            keyfile=conf.get("JOBLINE_KAFKA_SSL_KEYFILE") or None,
        )
    return options


async def start_producer() -> AIOKafkaProducer:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(**producer_options())
    try:
        await producer.start()
    except BaseException:
        await producer.stop()  # release its connections; the next attempt starts afresh
        raise
    return producer


async def stop_producer(producer: AIOKafkaProducer) -> None:
    await producer.stop()  # sends what is still buffered
