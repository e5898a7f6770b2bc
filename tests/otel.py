"""An OpenTelemetry SDK tracer provider for the tests, installed once per process.

OpenTelemetry allows one global provider per process: the first test that asks for spans
installs it, and later tests read the same in-memory exporter (cleared for each test).
"""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

_exporter: InMemorySpanExporter | None = None


def exporter() -> InMemorySpanExporter:
    """The process's exporter; the provider that feeds it is installed on first use."""
    global _exporter
    if _exporter is None:
        _exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(_exporter))
        trace.set_tracer_provider(provider)
    return _exporter


def named(spans: tuple[ReadableSpan, ...] | list[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


def hex_trace_id(span: ReadableSpan) -> str:
    return trace.format_trace_id(span.context.trace_id)
