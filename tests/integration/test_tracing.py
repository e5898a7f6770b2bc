"""Traces on real SQLite and PostgreSQL with a real worker, caught by the SDK's in-memory
exporter: enqueue to finish, a pipeline run, an ``http`` job's request, a kafka message,
a schedule's job."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanKind

import jobline
from jobline.core.tracecontext import parse_traceparent
from jobline.models import Job
from jobline.services.firing import tick
from jobline.testing import drain
from tests.conftest import ALL_DATABASES
from tests.integration.test_kafka_jobs import consume
from tests.integration.test_pipelines import CHAIN, finish
from tests.otel import hex_trace_id, named

pytestmark = ALL_DATABASES


def test_one_trace_from_enqueue_to_finish(alias, spans):
    job = jobline.enqueue("add", {"a": 1}, queue="traced", using=alias)
    row = Job.objects.using(alias).get(pk=job.id)
    drain(1, using=alias, queues=("traced",), timeout=30)
    (enqueue,) = named(spans.get_finished_spans(), "jobline enqueue add")
    (run,) = named(spans.get_finished_spans(), "jobline run add")
    assert row.trace_id == hex_trace_id(enqueue) == hex_trace_id(run)
    assert run.parent.span_id == enqueue.context.span_id
    assert (enqueue.kind, run.kind) == (SpanKind.PRODUCER, SpanKind.CONSUMER)
    assert enqueue.attributes["jobline.job.id"] == job.id
    assert {k: run.attributes[k] for k in ("jobline.job.id", "jobline.job.attempt")} == {
        "jobline.job.id": job.id,
        "jobline.job.attempt": 1,
    }
    assert run.attributes["messaging.destination.name"] == "traced"
    assert run.attributes["jobline.job.status"] == "succeeded"
    assert run.end_time >= run.start_time >= enqueue.end_time


def test_a_pipeline_run_of_three_steps_is_one_trace(alias, spans):
    run = CHAIN.enqueue({"n": 1}, using=alias)
    finish(run)
    assert run.status == "succeeded"
    finished = spans.get_finished_spans()
    (start,) = named(finished, "jobline enqueue pipeline test-chain")
    steps = named(finished, "jobline run pl_add")
    assert len(steps) == 3
    assert {hex_trace_id(s) for s in steps} == {hex_trace_id(start)}
    assert {s.parent.span_id for s in steps} == {start.context.span_id}
    assert sorted(s.attributes["jobline.job.id"] for s in steps) == sorted(
        run.jobs.using(alias).values_list("id", flat=True)
    )
    assert {s.attributes["jobline.pipeline.run_id"] for s in steps} == {run.id}
    run.refresh_from_db()
    assert start.attributes["jobline.pipeline.run_id"] == run.id
    assert parse_traceparent(run.trace_context["traceparent"]).trace_id == hex_trace_id(start)


class Receiver(ThreadingHTTPServer):
    """Answers 200 and keeps the ``traceparent`` header of each request."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.traceparents: list[str | None] = []


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.traceparents.append(self.headers.get("traceparent"))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def receiver(settings) -> Iterator[Receiver]:
    settings.JOBLINE_HTTP_ALLOWED_NETWORKS = "127.0.0.0/8"
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_an_http_job_sends_its_trace_to_the_receiver(alias, spans, receiver):
    url = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
    job = jobline.enqueue("http", {"url": url, "method": "post", "json": {}}, using=alias)
    drain(1, using=alias, timeout=30)
    assert Job.objects.using(alias).get(pk=job.id).status == "succeeded"
    (run,) = named(spans.get_finished_spans(), "jobline run http")
    (sent,) = receiver.traceparents
    parent = parse_traceparent(sent or "")
    assert parent is not None, sent
    assert (parent.trace_id, parent.span_id) == (
        hex_trace_id(run),
        trace.format_span_id(run.context.span_id),
    )


def test_a_scheduled_job_is_traced(alias, spans):
    made = jobline.schedule("traced-timer", "add", {"a": 1}, in_="1m", using=alias)
    (fired,) = tick(alias, now=made.next_run_at).fired
    drain(1, using=alias, timeout=30)
    finished = spans.get_finished_spans()
    (enqueue,) = named(finished, "jobline enqueue add")
    (run,) = named(finished, "jobline run add")
    assert enqueue.attributes["jobline.schedule"] == "traced-timer"
    assert enqueue.parent is None  # each firing starts a trace of its own
    assert run.parent.span_id == enqueue.context.span_id
    assert Job.objects.using(alias).get(pk=fired.job_id).trace_id == hex_trace_id(run)


def test_a_kafka_message_carries_its_job_s_trace(alias, spans, kafka, kafka_broker):
    inputs = {"title": "scan", "job_type": "youtube", "configs": {}, "topic": kafka}
    jobline.enqueue("kafka", inputs, using=alias)
    drain(1, using=alias, timeout=30)
    (run,) = named(spans.get_finished_spans(), "jobline run kafka")
    (record,) = consume(kafka_broker, kafka, 1)
    headers = dict(record.headers)
    assert headers["job_type"] == b"youtube"
    parent = parse_traceparent(headers["traceparent"].decode())
    assert parent is not None
    assert (parent.trace_id, parent.span_id) == (
        hex_trace_id(run),
        trace.format_span_id(run.context.span_id),
    )
