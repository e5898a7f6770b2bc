"""Job events delivered for real: a worker, the relay, a webhook receiver on loopback and the
local RabbitMQ (5672), on SQLite and PostgreSQL.

Every expected event arrives at least once, signed; none arrives before its job's change
commits; a receiver that was down gets its events once it is back (the deliveries retry).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db import connections, transaction

import jobline
from jobline.core.events import DELIVER_TYPE
from jobline.core.jobtypes import registry
from jobline.core.retry import RetryPolicy
from jobline.dispatch.http import verify_signature
from jobline.exceptions import Fail
from jobline.models import Job, Subscription
from jobline.services.subscriptions import Relay
from jobline.testing import running_worker
from tests.conftest import ALL_DATABASES, free_port, jobline_process, stop_process, wait_until
from tests.integration.test_kafka_jobs import consume

aio_pika = pytest.importorskip("aio_pika")

pytestmark = ALL_DATABASES

SECRET = "webhook-secret"
AMQP_URL = "amqp://guest:guest@localhost:5672/"


@jobline.job(name="tests.events.explode", max_attempts=1)
def explode() -> None:
    raise Fail("boom with https://user:hunter2@example.com")


class Hooks(ThreadingHTTPServer):
    """A webhook receiver: records each event (by id) whose signature checks out."""

    daemon_threads = True

    def __init__(self, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), _Hook)
        self.events: dict[str, dict] = {}
        self.requests = 0
        self.bad_signatures = 0
        self.lock = threading.Lock()

    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/events"

    def received(self) -> dict[str, dict]:
        with self.lock:  # the server's threads add to it meanwhile
            return dict(self.events)


class _Hook(BaseHTTPRequestHandler):
    server: Hooks

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        signed = verify_signature(SECRET, self.headers.get("X-Jobline-Signature", ""), body)
        event = json.loads(body)
        with self.server.lock:
            self.server.requests += 1
            if signed and self.headers["Idempotency-Key"] == event["id"]:
                self.server.events[event["id"]] = event
            else:
                self.server.bad_signatures += 1
        self.send_response(200 if signed else 401)
        self.send_header("Content-Length", "0")
        self.end_headers()


@contextlib.contextmanager
def serving(server: Hooks) -> Iterator[Hooks]:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def running_relay(alias: str) -> Iterator[Relay]:
    """The relay on an event loop of its own, in a thread, for the ``with`` block."""
    relay = Relay(alias, poll=0.05)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(relay.run(),), daemon=True)
    thread.start()
    try:
        yield relay
    finally:
        loop.call_soon_threadsafe(relay.stop)
        thread.join(30)
        loop.close()


class Rabbit:
    """A queue of its own on the local RabbitMQ, read from the test's thread."""

    def __init__(self) -> None:
        self.queue = f"jobline-test-{uuid.uuid4().hex[:12]}"
        self.events: dict[str, dict] = {}

    async def _call(self, fn) -> object:
        connection = await aio_pika.connect(AMQP_URL)
        async with connection:
            return await fn(await connection.channel())

    def declare(self) -> None:
        args = {"x-expires": 600_000}  # gone 10 minutes after its last use, whatever happens
        asyncio.run(self._call(lambda ch: ch.declare_queue(self.queue, arguments=args)))

    def delete(self) -> None:
        asyncio.run(self._call(lambda ch: ch.queue_delete(self.queue)))

    def read(self) -> dict[str, dict]:
        """Every message waiting now, by event id (taken off the queue)."""

        async def take(channel) -> None:
            queue = await channel.get_queue(self.queue)
            while (message := await queue.get(fail=False, no_ack=True)) is not None:
                assert message.message_id == json.loads(message.body)["id"]
                self.events[message.message_id] = json.loads(message.body)

        asyncio.run(self._call(take))
        return self.events


@pytest.fixture
def rabbit() -> Iterator[Rabbit]:
    found = Rabbit()
    try:
        found.declare()
    except Exception as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"RabbitMQ unavailable in CI at {AMQP_URL}: {exc}")
        pytest.skip(f"no RabbitMQ at {AMQP_URL}: {exc} (never skipped with CI=true)")
    yield found
    found.delete()


@pytest.fixture
def events_settings(settings):
    settings.JOBLINE_HTTP_ALLOWED_NETWORKS = "127.0.0.0/8"
    settings.JOBLINE_HTTP_SIGNING_SECRETS = {"hooks": SECRET}
    settings.JOBLINE_AMQP_URL = AMQP_URL


@pytest.fixture
def fast_retries(monkeypatch):
    monkeypatch.setattr(registry.get(DELIVER_TYPE), "retry", RetryPolicy(base=0.05, cap=0.2))


def subscribe(alias: str, name: str, **fields) -> Subscription:
    subscription = Subscription(name=name, **fields)
    subscription.full_clean()
    subscription.save(using=alias)
    return subscription


def expected(alias: str, kinds: dict[str, tuple[str, ...]]) -> set[tuple[int, str]]:
    """(job id, event kind) of every job but the deliveries, by the job's final status."""
    jobs = Job.objects.using(alias).exclude(type=DELIVER_TYPE).values_list("id", "status")
    return {(job_id, kind) for job_id, status in jobs for kind in kinds[status]}


def seen(events: dict[str, dict]) -> set[tuple[int, str]]:
    return {(e["job"]["id"], e["event"]) for e in events.values()}


def test_a_thousand_jobs_send_every_event_signed_to_a_webhook_and_to_rabbitmq(
    alias, events_settings, rabbit
):
    with serving(Hooks()) as hooks:
        subscribe(alias, "hook", target="webhook", url=hooks.url(), sign_with="hooks")
        subscribe(alias, "rabbit", target="amqp", routing_key=rabbit.queue)
        jobline.enqueue_many("noop", [{}] * 1000, using=alias)
        failing = [jobline.enqueue("tests.events.explode", {}, using=alias) for _ in range(5)]
        cancelled = jobline.enqueue("noop", {}, using=alias, delay=3600)
        Job.objects.using(alias).filter(pk=cancelled.id).update(status="cancelled")
        kinds = {
            "succeeded": ("created", "started", "succeeded"),
            "failed": ("created", "started", "failed"),
            "cancelled": ("created", "terminated"),
        }
        with running_worker(alias), running_relay(alias):
            wait_until(
                lambda: Job.objects.using(alias).filter(status="queued").count() == 0,
                timeout=120,
                what="every job and delivery finished",
            )
            want = expected(alias, kinds)
            assert len(want) == 1000 * 3 + 5 * 3 + 2
            wait_until(lambda: seen(hooks.received()) >= want, timeout=120, what="webhook events")
            wait_until(lambda: seen(rabbit.read()) >= want, timeout=60, what="AMQP events")
        assert hooks.bad_signatures == 0
        assert seen(hooks.received()) == want == seen(rabbit.events)  # nothing else either
        (boom,) = {e["job"]["error"] for e in hooks.events.values() if e["event"] == "failed"}
        assert "hunter2" not in boom and "boom" in boom  # masked as the UI shows it
        done = next(e for e in rabbit.events.values() if e["event"] == "succeeded")
        assert done["job"]["type"] == "noop" and done["job"]["status"] == "succeeded"
        assert {"created_at", "started_at", "finished_at"} <= done["job"].keys() and done["at"]
        assert {e["job"]["id"] for e in hooks.events.values() if e["event"] == "failed"} == {
            j.id for j in failing
        }


def committed_elsewhere(alias: str):
    """A job enqueued and committed on another connection (another thread's)."""
    made = []

    def enqueue() -> None:
        made.append(jobline.enqueue("noop", {}, queue="elsewhere", using=alias))
        connections.close_all()

    thread = threading.Thread(target=enqueue)
    thread.start()
    thread.join(30)
    return made[0]


def test_no_event_before_its_commit(alias, events_settings):
    with serving(Hooks()) as hooks:
        subscribe(alias, "hook", target="webhook", url=hooks.url(), sign_with="hooks")
        with running_relay(alias), running_worker(alias, only=(DELIVER_TYPE,)):
            with contextlib.suppress(RuntimeError), transaction.atomic(using=alias):
                jobline.enqueue("noop", {}, using=alias, queue="rolled-back")
                raise RuntimeError("roll back")
            marker = jobline.enqueue("noop", {}, using=alias, queue="marker")
            wait_until(lambda: (marker.id, "created") in seen(hooks.received()), what="the marker")
            if alias == "postgres":  # SQLite's one writer would wait for the transaction
                with transaction.atomic(using=alias):
                    held = jobline.enqueue("noop", {}, using=alias, queue="held")
                    late = committed_elsewhere(alias)
                    wait_until(lambda: (late.id, "created") in seen(hooks.received()), what="late")
                    assert (held.id, "created") not in seen(hooks.received())
                wait_until(lambda: (held.id, "created") in seen(hooks.received()), what="commit")
        assert "rolled-back" not in {e["job"]["queue"] for e in hooks.events.values()}


def test_a_receiver_that_was_down_gets_the_events_afterwards(alias, events_settings, fast_retries):
    port = free_port()  # nothing listens there yet: connections are refused
    url = f"http://127.0.0.1:{port}/events"
    subscribe(alias, "hook", target="webhook", url=url, sign_with="hooks", events=["succeeded"])
    jobs = jobline.enqueue_many("noop", [{}] * 20, using=alias)
    with running_worker(alias), running_relay(alias):
        wait_until(
            lambda: (
                Job.objects.using(alias).filter(type=DELIVER_TYPE, attempts__gte=2).count() == 20
            ),
            what="every delivery failed twice",
        )
        with serving(Hooks(port)) as hooks:
            want = {(j.id, "succeeded") for j in jobs}
            wait_until(lambda: seen(hooks.received()) >= want, what="events after the outage")
    assert seen(hooks.received()) == want


def test_jobline_scheduler_and_worker_processes_deliver_events(alias, service_env):
    """The relay runs beside ``jobline scheduler``: events reach the receiver from processes."""
    env = service_env(
        alias,
        JOBLINE_HTTP_ALLOWED_NETWORKS="127.0.0.0/8",
        JOBLINE_HTTP_SIGNING_SECRETS=f"hooks={SECRET}",
    )
    with serving(Hooks()) as hooks:
        subscribe(alias, "hook", target="webhook", url=hooks.url(), sign_with="hooks")
        procs = [jobline_process(env, "scheduler"), jobline_process(env, "worker")]
        try:
            job = jobline.enqueue("noop", {}, using=alias)
            want = {(job.id, kind) for kind in ("created", "started", "succeeded")}
            wait_until(lambda: seen(hooks.received()) >= want, what="events from processes")
        finally:
            for proc in procs:
                stop_process(proc)
    assert hooks.bad_signatures == 0


def test_a_kafka_subscription_publishes_each_event_keyed_by_job_id(alias, kafka, kafka_broker):
    subscribe(alias, "topic", target="kafka", topic=kafka, events=["created", "succeeded"])
    jobs = jobline.enqueue_many("noop", [{}] * 10, using=alias)
    delivered = Job.objects.using(alias).filter(type=DELIVER_TYPE, status="succeeded")
    with running_worker(alias), running_relay(alias):
        wait_until(lambda: delivered.count() == 20, what="20 deliveries")
    records = consume(kafka_broker, kafka, 20)
    events = [json.loads(r.value) for r in records]
    assert {(e["job"]["id"], e["event"]) for e in events} == {
        (j.id, kind) for j in jobs for kind in ("created", "succeeded")
    }
    assert all(r.key.decode() == str(json.loads(r.value)["job"]["id"]) for r in records)
    assert {dict(r.headers)["job_type"] for r in records} == {b"noop"}
