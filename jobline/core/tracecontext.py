"""W3C trace context as jobline stores it with a job: the propagator's carrier.

A job's ``trace_context`` is the dict an OpenTelemetry propagator injected when it was
enqueued (``{"traceparent": ..., "tracestate": ...}``, plus whatever other propagators the
app configured), kept as JSON so the worker can extract it again. Only the
``traceparent`` is read here, to show the job's trace id (https://www.w3.org/TR/trace-context/).
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

# version-trace_id-parent_id-flags, lower-case hex; version ff is invalid
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_ZEROS = re.compile(r"0+")

TraceContext = dict[str, str]  #: a propagator's carrier: header names to values


class TraceParent(NamedTuple):
    trace_id: str  #: 32 hex digits
    span_id: str  #: 16 hex digits: the span the job's run continues from
    sampled: bool


def parse_traceparent(value: str) -> TraceParent | None:
    """The parts of a ``traceparent`` header, or None when it is not a valid one."""
    found = _TRACEPARENT.fullmatch(value.strip())
    if found is None:
        return None
    version, trace_id, span_id, flags = found.groups()
    if version == "ff" or _ZEROS.fullmatch(trace_id) or _ZEROS.fullmatch(span_id):
        return None
    return TraceParent(trace_id, span_id, bool(int(flags, 16) & 1))


def trace_id(context: Any) -> str | None:
    """The trace id of a stored trace context (None when there is none or it is not valid)."""
    if not isinstance(context, dict) or not isinstance(context.get("traceparent"), str):
        return None
    parent = parse_traceparent(context["traceparent"])
    return parent.trace_id if parent else None
