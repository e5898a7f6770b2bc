"""OpenTelemetry spans for jobs: enqueueing starts one, the job's run continues its trace.

jobline never requires OpenTelemetry: ``opentelemetry-api`` is an optional dependency (the
``tracing`` extra). It is used once the process has imported it (configuring a tracer
provider does); until then every function here returns a shared no-op at the cost of a
dictionary lookup, and a process that never traces is spared the import (a tenth of a
second). With a provider configured, spans go to it; without one they are the API's
non-recording spans and no context is stored. The spans (docs/how-to/tracing.md):

* ``jobline enqueue <type>`` (PRODUCER) around an enqueue (one for ``enqueue_many``, one per
  schedule firing); its W3C context is stored with the job(s);
* ``jobline enqueue pipeline <name>`` (PRODUCER) when a pipeline run starts; every step's
  job carries the run's context, so one run is one trace;
* ``jobline run <type>`` (CONSUMER) around each attempt, a child of the stored context and
  the current span while the job runs (its own spans and an ``http`` job's request join it).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from jobline.core.tracecontext import TraceContext
from jobline.core.values import ClaimedJob, Completion

_otel: _Api | None = None  #: the OpenTelemetry API, once the process has imported it


class _Api:
    """The parts of ``opentelemetry-api`` used here, imported once."""

    def __init__(self) -> None:
        # optional dependency (the "tracing" extra): jobline runs without it
        from opentelemetry import context, propagate, trace

        self.context, self.propagate, self.trace = context, propagate, trace
        # A proxy until the app sets its provider, then the provider's tracer.
        self.tracer = trace.get_tracer("jobline")
        self.error = trace.Status(trace.StatusCode.ERROR)


def _api() -> _Api | None:
    global _otel
    if _otel is None and sys.modules.get("opentelemetry.trace") is not None:
        _otel = _Api()
    return _otel


class Produced:
    """An enqueue's span; ``context`` is what to store with the job (None: not traced)."""

    __slots__ = ("context", "span")

    def __init__(self, span: Any = None, context: TraceContext | None = None):
        self.span, self.context = span, context

    def __enter__(self) -> Produced:
        return self

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> None:
        if self.span is not None:
            if exc is not None:
                _failed(self.span, exc)
            self.span.end()

    def attribute(self, key: str, value: Any) -> None:
        if self.span is not None:
            self.span.set_attribute(key, value)

    def enqueued(self, jobs: Sequence[Any]) -> None:
        """The jobs this span enqueued (with an ``id``): the id of one, the count of several."""
        if self.span is None:
            return
        if len(jobs) == 1:
            self.span.set_attribute("messaging.message.id", str(jobs[0].id))
            self.span.set_attribute("jobline.job.id", jobs[0].id)
        else:
            self.span.set_attribute("messaging.batch.message_count", len(jobs))


NOT_TRACED = Produced()


def _produce(name: str, attributes: dict[str, Any]) -> Produced:
    api = _api()
    if not api:
        return NOT_TRACED
    span = api.tracer.start_span(name, kind=api.trace.SpanKind.PRODUCER, attributes=attributes)
    if not span.get_span_context().is_valid:  # no provider configured, nothing to continue
        span.end()
        return NOT_TRACED
    carrier: TraceContext = {}
    api.propagate.inject(carrier, context=api.trace.set_span_in_context(span))
    return Produced(span, carrier or None)


def enqueue_span(job_type: str, queue: str, *, schedule: str | None = None) -> Produced:
    """The span of enqueueing jobs of one type (a schedule's firing names the schedule)."""
    if _api() is None:  # the common case without OpenTelemetry: no attributes built
        return NOT_TRACED
    attributes: dict[str, Any] = {
        "messaging.system": "jobline",
        "messaging.operation.type": "send",
        "messaging.destination.name": queue,
        "jobline.job.type": job_type,
    }
    if schedule is not None:
        attributes["jobline.schedule"] = schedule
    return _produce(f"jobline enqueue {job_type}", attributes)


def pipeline_span(pipeline: str) -> Produced:
    """The span that starts a pipeline run: the run's one trace."""
    if _api() is None:
        return NOT_TRACED
    attributes = {"messaging.system": "jobline", "jobline.pipeline": pipeline}
    return _produce(f"jobline enqueue pipeline {pipeline}", attributes)


class Running:
    """The span of one attempt, current while the job runs."""

    __slots__ = ("span", "token")

    def __init__(self, span: Any = None, token: Any = None):
        self.span, self.token = span, token

    def __enter__(self) -> Running:
        return self

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> None:
        if self.span is None:
            return
        if exc is not None:  # the worker cancelled it: terminated, or put back at shutdown
            self.span.set_attribute("jobline.job.status", "interrupted")
        _otel.context.detach(self.token)
        self.span.end()

    def failed(self, exc: BaseException) -> None:
        """The job raised ``exc`` (its completion says whether it is retried)."""
        if self.span is not None:
            self.span.record_exception(exc)

    def finished(self, done: Completion) -> None:
        if self.span is None:
            return
        self.span.set_attribute("jobline.job.status", done.status.value)
        if done.error:
            self.span.set_status(_otel.trace.Status(_otel.trace.StatusCode.ERROR, done.error))


NOT_RUNNING = Running()


def run_span(job: ClaimedJob, worker_id: str) -> Running:
    """Start the span of an attempt of ``job`` and make it current (until its ``__exit__``)."""
    api = _api()
    if not api:
        return NOT_RUNNING
    parent = api.propagate.extract(job.trace_context) if job.trace_context else None
    attributes = {
        "messaging.system": "jobline",
        "messaging.operation.type": "process",
        "messaging.destination.name": job.queue,
        "messaging.message.id": str(job.id),
        "jobline.job.id": job.id,
        "jobline.job.type": job.type,
        "jobline.job.attempt": job.attempt,
        "jobline.worker.id": worker_id,
    }
    if job.pipeline_run_id is not None:
        attributes["jobline.pipeline.run_id"] = job.pipeline_run_id
    span = api.tracer.start_span(
        f"jobline run {job.type}",
        context=parent,
        kind=api.trace.SpanKind.CONSUMER,
        attributes=attributes,
    )
    if not span.get_span_context().is_valid:  # no provider and nothing to pass on
        return NOT_RUNNING
    token = api.context.attach(api.trace.set_span_in_context(span))
    return Running(span, token)


def outgoing_headers() -> TraceContext:
    """The current trace context as headers for a request or message the job sends."""
    api = _api()
    carrier: TraceContext = {}
    if api:
        api.propagate.inject(carrier)
    return carrier


def _failed(span: Any, exc: BaseException) -> None:
    span.record_exception(exc)
    span.set_status(_otel.error)
