"""Tracing without a database: the traceparent helpers, the no-op without OpenTelemetry, and
the worker loop on the memory store continuing the enqueueing trace."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode

import jobline
from jobline import tracing
from jobline.core.tracecontext import TraceParent, parse_traceparent, trace_id
from jobline.core.values import ClaimedJob
from jobline.testing import drain, memory_store
from tests.conftest import ROOT
from tests.example_app.jobs import flaky
from tests.otel import hex_trace_id, named

VALID = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@jobline.job(name="trace_probe_sync")
def trace_probe_sync() -> str:
    """The trace a sync job runs in, as its own code sees it (in a worker thread)."""
    return trace.format_trace_id(trace.get_current_span().get_span_context().trace_id)


@jobline.job(name="trace_probe_async")
async def trace_probe_async() -> str:
    return trace.format_trace_id(trace.get_current_span().get_span_context().trace_id)


def test_traceparent_parts():
    assert parse_traceparent(VALID) == TraceParent(
        "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331", True
    )
    assert parse_traceparent(VALID[:-2] + "00").sampled is False


@pytest.mark.parametrize(
    "value",
    [
        "",
        VALID.upper(),  # lower-case hex only
        "ff" + VALID[2:],  # version ff is invalid
        "00-" + "0" * 32 + "-b7ad6b7169203331-01",  # all-zero trace id
        "00-0af7651916cd43dd8448eb211c80319c-" + "0" * 16 + "-01",  # all-zero span id
        VALID[:-1],
        VALID + "-extra",
    ],
)
def test_invalid_traceparents_are_refused(value):
    assert parse_traceparent(value) is None


def test_trace_id_of_a_stored_context():
    assert trace_id({"traceparent": VALID, "tracestate": "a=b"}) == VALID[3:35]
    assert trace_id(None) is None
    assert trace_id({}) is None
    assert trace_id({"traceparent": "nonsense"}) is None
    assert trace_id("00-not-a-dict") is None


def _python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_without_opentelemetry_tracing_is_a_no_op():
    """A fresh process where ``import opentelemetry`` fails, as when it is not installed."""
    done = _python(
        """
        import sys
        sys.modules["opentelemetry"] = None  # import fails: not installed
        from jobline import tracing
        from jobline.core.values import ClaimedJob
        with tracing.enqueue_span("noop", "default") as span:
            assert span is tracing.NOT_TRACED and span.context is None
        assert tracing.pipeline_span("p") is tracing.NOT_TRACED
        job = ClaimedJob(id=1, type="noop", queue="default", inputs={}, attempt=1,
                         max_attempts=3, timeout=None,
                         trace_context={"traceparent": sys.argv[1]})
        with tracing.run_span(job, "w") as running:
            assert running is tracing.NOT_RUNNING
        assert tracing.outgoing_headers() == {}
        assert "opentelemetry.trace" not in sys.modules
        print("no-op")
        """,
        VALID,
    )
    assert done.stdout.strip() == "no-op", done.stderr


def test_installed_but_not_configured_is_not_even_imported():
    """A process that never imported OpenTelemetry (no provider) does not pay its import."""
    done = _python(
        """
        import sys
        from jobline import tracing
        with tracing.enqueue_span("noop", "default") as span:
            assert span is tracing.NOT_TRACED
        assert tracing.outgoing_headers() == {}
        assert "opentelemetry.trace" not in sys.modules
        print("not imported")
        """
    )
    assert done.stdout.strip() == "not imported", done.stderr


def test_imported_without_a_provider_nothing_is_stored():
    """opentelemetry-api imported but no SDK configured: spans do not record, no context."""
    done = _python(
        """
        import opentelemetry.trace
        from jobline import tracing
        with tracing.enqueue_span("noop", "default") as span:
            assert span.context is None
        assert tracing._api() is not None  # it did look
        print("nothing stored")
        """
    )
    assert done.stdout.strip() == "nothing stored", done.stderr


def test_a_stored_context_is_the_parent_of_the_run_span(spans):
    with tracing.enqueue_span("noop", "mail") as produced:
        pass
    job = ClaimedJob(
        id=7,
        type="noop",
        queue="mail",
        inputs={},
        attempt=2,
        max_attempts=3,
        timeout=None,
        trace_context=produced.context,
    )
    with tracing.run_span(job, "worker-1"):
        headers = tracing.outgoing_headers()
    enqueue, run = spans.get_finished_spans()
    assert parse_traceparent(produced.context["traceparent"]) == (
        TraceParent(hex_trace_id(enqueue), trace.format_span_id(enqueue.context.span_id), True)
    )
    assert (enqueue.name, enqueue.kind) == ("jobline enqueue noop", SpanKind.PRODUCER)
    assert (run.name, run.kind) == ("jobline run noop", SpanKind.CONSUMER)
    assert run.parent.span_id == enqueue.context.span_id
    assert run.context.trace_id == enqueue.context.trace_id
    assert run.attributes["jobline.job.attempt"] == 2
    assert run.attributes["messaging.destination.name"] == "mail"
    # what a job sends while it runs carries the run span's context
    assert parse_traceparent(headers["traceparent"]).span_id == trace.format_span_id(
        run.context.span_id
    )


def test_jobs_run_in_the_trace_that_enqueued_them(spans):
    with memory_store() as store:
        sync_job = jobline.enqueue("trace_probe_sync")
        async_job = jobline.enqueue("trace_probe_async")
        assert drain(2, timeout=30) == 2
    finished = spans.get_finished_spans()
    for job in (sync_job, async_job):
        row = store.job(job.id)
        (enqueue,) = [s for s in named(finished, f"jobline enqueue {job.type}")]
        (run,) = named(finished, f"jobline run {job.type}")
        assert enqueue.attributes["jobline.job.id"] == job.id
        assert run.attributes["jobline.job.id"] == job.id
        assert run.attributes["jobline.job.status"] == "succeeded"
        assert run.parent.span_id == enqueue.context.span_id
        # the job's own code sees the trace, in a thread as on the event loop
        assert row.outputs == hex_trace_id(run) == trace_id(row.trace_context)


def test_a_span_around_the_enqueue_is_the_trace_s_root(spans):
    with memory_store():
        with trace.get_tracer("app").start_as_current_span("request") as request:
            jobs = jobline.enqueue_many("add", [{"a": 1}, {"a": 2}, {"a": 3}])
        drain(3, timeout=30)
    finished = spans.get_finished_spans()
    (enqueue,) = named(finished, "jobline enqueue add")  # one span for the batch
    assert enqueue.parent.span_id == request.get_span_context().span_id
    assert enqueue.attributes["messaging.batch.message_count"] == 3
    runs = named(finished, "jobline run add")
    assert sorted(r.attributes["jobline.job.id"] for r in runs) == sorted(j.id for j in jobs)
    assert {r.parent.span_id for r in runs} == {enqueue.context.span_id}


def test_a_failed_attempt_records_its_error(spans):
    with memory_store():
        flaky.enqueue(fail_times=1)
        drain(timeout=30)
    first, second = named(spans.get_finished_spans(), "jobline run flaky")
    assert first.status.status_code is StatusCode.ERROR
    assert first.attributes["jobline.job.status"] == "queued"  # retried
    assert [e.name for e in first.events] == ["exception"]
    assert "boom on attempt 1" in first.events[0].attributes["exception.message"]
    assert second.attributes["jobline.job.status"] == "succeeded"
    assert second.status.status_code is StatusCode.UNSET
    assert first.context.trace_id == second.context.trace_id  # both attempts in one trace
