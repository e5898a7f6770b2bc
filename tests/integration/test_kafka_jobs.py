"""The ``kafka`` job type through real workers, against a real Kafka-compatible broker."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import time
from datetime import datetime, timedelta

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

import jobline
from jobline.models import Job
from jobline.services.firing import run_now
from jobline.testing import drain
from tests.conftest import ALL_DATABASES, free_port, jobline_process

pytestmark = ALL_DATABASES


def consume(bootstrap: str, topic: str, count: int, timeout: float = 20.0) -> list[ConsumerRecord]:
    """Read ``count`` messages of ``topic`` from the start (assigned partitions, no group)."""

    async def main() -> list[ConsumerRecord]:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        await consumer.start()
        try:
            await consumer.topics()  # fresh metadata, with the test's topic
            partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            records: list[ConsumerRecord] = []
            async with asyncio.timeout(timeout):
                while len(records) < count:
                    batches = await consumer.getmany(timeout_ms=200)
                    records += [r for batch in batches.values() for r in batch]
            return records
        finally:
            await consumer.stop()

    return asyncio.run(main())


def test_kafka__publishes_the_job_message_keyed_by_job_id(alias, kafka, kafka_broker):
    topic = f"{kafka}-explicit"
    configs = {"type": "CHANNEL", "id": "UC123", "labelizer": True}
    job = jobline.enqueue(
        "kafka",
        {"title": "scan", "job_type": "youtube", "configs": configs, "topic": topic},
        using=alias,
    )
    assert drain(1, using=alias) == 1
    row = Job.objects.using(alias).get(pk=job.id)
    assert (row.status, row.dispatch) == ("succeeded", "delivered") and row.outputs["sent"]
    (record,) = consume(kafka_broker, topic, 1)
    assert (row.outputs["topic"], row.outputs["partition"]) == (topic, record.partition)
    assert row.outputs["offset"] == record.offset
    assert record.key == str(job.id).encode()
    assert list(record.headers) == [("job_type", b"youtube")]
    value = json.loads(record.value)
    created_at = datetime.fromisoformat(value.pop("created_at"))
    assert created_at.utcoffset() == timedelta(0) and created_at == row.created_at
    assert value == {"id": job.id, "title": "scan", "job_type": "youtube", "configs": configs}


def test_kafka__a_scheduled_message_names_its_schedule(alias, kafka, kafka_broker):
    inputs = {"title": "nightly", "job_type": "report"}
    schedule = jobline.schedule("nightly-report", "kafka", inputs, every="1h", using=alias)
    (fired,) = run_now([schedule.id], using=alias)
    assert drain(1, using=alias) == 1
    (record,) = consume(kafka_broker, kafka, 1)
    value = json.loads(record.value)
    assert (value["id"], value["schedule"]) == (fired.job_id, "nightly-report")


def test_kafka__default_topic_comes_from_the_setting(alias, kafka, kafka_broker):
    job = jobline.enqueue("kafka", {"title": "t", "job_type": "x"}, using=alias)
    drain(1, using=alias)
    (record,) = consume(kafka_broker, kafka, 1)
    assert json.loads(record.value)["id"] == job.id


def test_kafka__disabled_logs_instead_of_sending(alias, kafka, settings, caplog):
    settings.JOBLINE_KAFKA_ENABLED = False
    caplog.set_level(logging.WARNING, "jobline.kafka")
    job = jobline.enqueue("kafka", {"title": "quiet", "job_type": "x"}, using=alias)
    drain(1, using=alias)
    row = Job.objects.using(alias).get(pk=job.id)
    assert row.status == "succeeded" and row.outputs["sent"] is False
    assert row.dispatch == ""  # logged, not delivered: no executor will report
    assert "KAFKA_ENABLED is false: message logged, not sent" in caplog.text
    assert f"key={job.id}" in caplog.text and '"title":"quiet"' in caplog.text


def test_kafka__unreachable_broker_fails_the_attempt_for_a_retry(alias, kafka, settings):
    settings.JOBLINE_KAFKA_BOOTSTRAP_SERVERS = f"127.0.0.1:{free_port()}"
    job = jobline.enqueue("kafka", {"title": "t", "job_type": "x"}, using=alias)
    drain(1, using=alias)
    row = Job.objects.using(alias).get(pk=job.id)
    assert (row.status, row.attempts) == ("queued", 1)
    assert "KafkaConnectionError" in row.error


def test_kafka__a_thousand_messages_arrive_none_lost(alias, kafka, kafka_broker):
    jobs = jobline.enqueue_many(
        "kafka", [{"title": f"n{i}", "job_type": "x"} for i in range(1000)], using=alias
    )
    assert drain(1000, using=alias, timeout=60) == 1000
    records = consume(kafka_broker, kafka, 1000)
    assert sorted(int(r.key) for r in records) == sorted(j.id for j in jobs)
    assert not Job.objects.using(alias).exclude(status="succeeded").exists()


def test_kafka__a_worker_killed_mid_send_loses_none(alias, kafka, kafka_broker, service_env):
    """At least once: jobs of the dead worker are sent again; duplicates share the key."""
    total = 600
    jobs = jobline.enqueue_many(
        "kafka", [{"title": f"n{i}", "job_type": "x"} for i in range(total)], using=alias
    )
    env = service_env(
        alias,
        KAFKA_ENABLED="true",
        KAFKA_BOOTSTRAP_SERVERS=kafka_broker,
        KAFKA_IDEMPOTENT="false",
        KAFKA_TOPIC=kafka,
    )
    done = Job.objects.using(alias).filter(status="succeeded")
    with jobline_process(env, "worker", "--concurrency", "20") as worker:
        try:
            deadline = time.monotonic() + 30
            while done.count() < 100:
                assert worker.poll() is None, worker.stdout.read()
                assert time.monotonic() < deadline, "the worker did not get going"
                time.sleep(0.01)
            os.kill(worker.pid, signal.SIGKILL)
        finally:
            worker.kill()
    left = total - done.count()
    assert left > 0, "the worker finished before it could be killed"
    # A new worker takes the dead one's jobs back once its lease (3 s here) lapses.
    assert drain(left, using=alias, timeout=60) == left
    assert done.count() == total
    records = consume(kafka_broker, kafka, total)
    keys = [int(r.key) for r in records]
    assert set(keys) == {j.id for j in jobs}
    for record in records:  # a duplicate is the same message again
        assert json.loads(record.value)["id"] == int(record.key)


def test_kafka__one_producer_per_worker(alias, kafka, monkeypatch):
    from jobline.dispatch import kafka as kafka_module

    started = []
    real_start = kafka_module.start_producer

    async def counting_start():
        started.append(1)
        return await real_start()

    monkeypatch.setattr(kafka_module, "start_producer", counting_start)
    jobline.enqueue_many("kafka", [{"title": "t", "job_type": "x"}] * 50, using=alias)
    assert drain(50, using=alias) == 50
    assert len(started) == 1
