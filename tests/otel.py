"""An OpenTelemetry SDK tracer provider for the tests, installed once per process.

OpenTelemetry allows one global provider per process, for good. The one installed here
records (into an in-memory exporter) only while a test holds :func:`recording` (the
``spans`` fixture); at other times it is the API's no-op, as if tracing were not configured,
so other tests see jobs, requests and messages exactly as without tracing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


class _Switched(trace.TracerProvider):
    """The SDK's provider while ``on``, else the API's no-op tracer."""

    def __init__(self, sdk: TracerProvider):
        self.sdk, self.on = sdk, False

    def get_tracer(self, *args: Any, **kwargs: Any) -> trace.Tracer:
        return _SwitchedTracer(self, self.sdk.get_tracer(*args, **kwargs))


class _SwitchedTracer(trace.Tracer):
    def __init__(self, switch: _Switched, real: trace.Tracer):
        self.switch, self.real, self.off = switch, real, trace.NoOpTracer()

    def _tracer(self) -> trace.Tracer:
        return self.real if self.switch.on else self.off

    def start_span(self, *args: Any, **kwargs: Any) -> trace.Span:
        return self._tracer().start_span(*args, **kwargs)

    def start_as_current_span(self, *args: Any, **kwargs: Any) -> Any:
        return self._tracer().start_as_current_span(*args, **kwargs)


_installed: tuple[_Switched, InMemorySpanExporter] | None = None


@contextlib.contextmanager
def recording() -> Iterator[InMemorySpanExporter]:
    """Tracing configured inside the block; its finished spans, from this block only."""
    global _installed
    if _installed is None:
        exporter, sdk = InMemorySpanExporter(), TracerProvider()
        sdk.add_span_processor(SimpleSpanProcessor(exporter))
        _installed = (_Switched(sdk), exporter)
        trace.set_tracer_provider(_installed[0])
    switch, exporter = _installed
    exporter.clear()
    switch.on = True
    try:
        yield exporter
    finally:
        switch.on = False
        exporter.clear()


def named(spans: tuple[ReadableSpan, ...] | list[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


def hex_trace_id(span: ReadableSpan) -> str:
    return trace.format_trace_id(span.context.trace_id)
