"""Values any database and any page can hold: the checks input passes before it is stored.

PostgreSQL refuses NUL characters in text and JSON, Python cannot represent a time that a
time zone moves past year 1 or 9999, and names end up in URLs and logs. Refusing such values
where they come in (API, UI forms, admin, enqueue) keeps them from answering 500 later.
No I/O, no Django.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pydantic_core

#: Queue names: letters, digits and ``_ . : -``, up to 100 characters (docs/how-to/jobs.md).
QUEUE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,99}$")

MAX_DELAY = 100 * 365 * 86_400  #: seconds; beyond a century is a mistake, not a plan

# A day inside Python's calendar on each side: such a time shows in any time zone.
EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
LATEST = datetime(9999, 12, 30, tzinfo=UTC)

NUL_MESSAGE = "NUL characters (\\u0000) are not allowed"

_CONTROL = re.compile(r"[\x00-\x20\x7f]")


def nul_path(value: Any, path: str = "") -> str | None:
    """The dotted path of the first string (or key) in ``value`` holding a NUL character."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{path}.{key}" if path else str(key)
            if "\x00" in str(key):
                return here
            if (found := nul_path(item, here)) is not None:
                return found
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            if (found := nul_path(item, f"{path}.{index}" if path else str(index))) is not None:
                return found
    return None


def nul_errors(value: Any) -> list[dict[str, Any]]:
    """``value``'s NUL problem as field errors (``{"field", "message", "type"}``), or []."""
    try:  # JSON escapes every NUL as \u0000: one C pass rules most values out
        if b"\\u0000" not in pydantic_core.to_json(value):
            return []
    except (pydantic_core.PydanticSerializationError, ValueError, TypeError):
        pass  # no JSON form (or a circular one): walk it
    where = nul_path(value)
    return [] if where is None else [{"field": where, "message": NUL_MESSAGE, "type": "nul"}]


def datetime_problem(value: datetime) -> str | None:
    """Why ``value`` cannot be stored and shown, or None. Naive values count as UTC."""
    try:
        utc = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    except OverflowError:
        utc = None
    if utc is None or not EARLIEST <= utc <= LATEST:
        return (
            f"must be between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d} in UTC"
            f" (got {value.isoformat()})"
        )
    return None


def offset_problem(value: datetime) -> str | None:
    """Why ``value``'s UTC offset cannot be stored (PostgreSQL takes up to 15:59), or None."""
    offset = value.utcoffset()
    if offset is not None and abs(offset) >= timedelta(hours=16):
        return f"its UTC offset must be within ±15:59; send it in UTC (got {value.isoformat()})"
    return None


def datetime_problem_after(start: datetime, step: timedelta) -> str | None:
    """Why ``start + step`` cannot be stored and shown, or None."""
    try:
        return datetime_problem(start + step)
    except OverflowError:
        return f"must be between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d} in UTC"


def queue_problem(name: Any) -> str | None:
    """Why ``name`` is not a queue name, or None."""
    if isinstance(name, str) and QUEUE_NAME.match(name):
        return None
    return (
        f"queue name {name!r} is not allowed: use 1 to 100 letters, digits and '_.:-',"
        " starting with a letter, a digit or '_'"
    )


def url_problem(url: str) -> str | None:
    """Why ``url`` may not be called, or None: no spaces or control characters."""
    if match := _CONTROL.search(url):
        return f"URLs may not contain spaces or control characters (found {match.group()!r})"
    return None


def http_url_problem(url: str) -> str | None:
    """Why ``url`` is not an http(s) URL jobline may call (http jobs, webhooks), or None."""
    if problem := url_problem(url):
        return problem
    try:
        parsed = urlsplit(url)
        _ = parsed.port  # raises on a port that is not a number in range
    except ValueError as exc:
        return f"not a valid URL: {exc}"
    if parsed.scheme.lower() not in ("http", "https"):
        return "only http:// and https:// URLs can be called"
    if not parsed.hostname:
        return "the URL has no host"
    return None
