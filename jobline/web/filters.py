"""Template filters and tags of the UI (a builtin of its template engine)."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from typing import Any

from django import template
from django.urls import reverse
from django.utils.html import escape
from django.utils.safestring import mark_safe

register = template.Library()


@register.simple_tag
def asset(name: str) -> str:
    """URL of a file in ``jobline/web/static/jobline/``, versioned by its content."""
    from jobline.web.base import asset_version

    name = str.__str__(name)  # a plain str: pathlib refuses the template's SafeString
    return f"{reverse('jobline:asset', args=[name])}?v={asset_version(name)}"


@register.filter
def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, default=str)


@register.filter
def duration(value: timedelta | float | None) -> str:
    """``12 ms``, ``2.25 s``, ``42 s``, ``3 min 4 s``, ``2 h 5 min``, ``3 d 4 h``."""
    if value is None:
        return ""
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 10:
        return f"{seconds:.2f} s".replace(".00 s", " s")
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, s = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {s} s" if s else f"{minutes} min"
    hours, m = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {m} min" if m else f"{hours} h"
    days, h = divmod(hours, 24)
    return f"{days} d {h} h" if h else f"{days} d"


@register.filter
def minus(end: datetime | None, start: datetime | None) -> timedelta | None:
    """``end|minus:start``: the time between two datetimes, if both are known."""
    return end - start if end and start else None


@register.filter
def percent(fraction: float | None) -> int:
    """A job's progress (0 to 1) as a whole percentage, for bars and labels."""
    return round((fraction or 0.0) * 100)


@register.filter
def iso(value: datetime | None) -> str:
    return value.isoformat() if value else ""


@register.filter
def utc(value: datetime | None) -> str:
    """A readable UTC time; the browser replaces it with local time (``<time>`` elements)."""
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else ""


@register.filter
def first_line(value: str, length: int = 160) -> str:
    lines = (value or "").strip().splitlines()
    return lines[0][:length] if lines else ""


@register.filter
def get(mapping: dict[str, Any], key: str) -> Any:
    return mapping.get(key, 0) if mapping else 0


_INLINE = [  # docstring markup (reST and Markdown alike) shown as HTML; longest marks first
    (re.compile(r"``(.+?)``"), r"<code>\1</code>"),
    (re.compile(r"`([^`]+?)`"), r"<code>\1</code>"),
    (re.compile(r"\*\*(.+?)\*\*"), r"<strong>\1</strong>"),
    (re.compile(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])"), r"<em>\1</em>"),
]


@register.filter
def markup(value: Any) -> str:
    """A job type's description (a docstring) with its inline code and emphasis rendered;
    everything else is escaped first, so a description cannot inject HTML."""
    text = str(escape(value or ""))
    for pattern, replacement in _INLINE:
        text = pattern.sub(replacement, text)
    return mark_safe(text)  # safe: built from escaped text
