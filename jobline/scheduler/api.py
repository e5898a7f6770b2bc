"""``jobline.schedule(...)``: create or update a schedule by name, from code."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.db import DEFAULT_DB_ALIAS, IntegrityError, transaction

from jobline.core.jobtypes import JobType
from jobline.core.schedules import Kind, Misfire, format_duration, parse_duration
from jobline.models.schedules import Schedule
from jobline.scheduler import periodic

log = logging.getLogger("jobline.scheduler")

Duration = float | timedelta | str


def _duration(value: Duration) -> str:
    if isinstance(value, str):
        value = parse_duration(value)
    return format_duration(value)


def _kind_and_rule(
    cron: str | None, every: Duration | None, at: datetime | str | None, in_: Duration | None
) -> tuple[Kind, str]:
    given = [
        k for k, v in {"cron": cron, "every": every, "at": at, "in_": in_}.items() if v is not None
    ]
    if len(given) != 1:
        raise ValueError(
            f"pass exactly one of cron, every, at, in_ (got {', '.join(given) or 'none'})"
        )
    if cron is not None:
        return Kind.CRON, cron
    if every is not None:
        return Kind.INTERVAL, _duration(every)
    if in_ is not None:
        return Kind.IN, _duration(in_)
    assert at is not None
    if isinstance(at, datetime) and at.tzinfo is None:
        raise ValueError("at must be timezone-aware, or a string read in tz")
    return Kind.AT, at.isoformat() if isinstance(at, datetime) else at


def schedule(
    name: str,
    job_type: JobType | str,
    inputs: Any = None,
    *,
    cron: str | None = None,
    every: Duration | None = None,
    at: datetime | str | None = None,
    in_: Duration | None = None,
    tz: str = "UTC",
    title: str = "",
    queue: str | None = None,
    priority: int | None = None,
    is_active: bool | None = None,
    start_at: datetime | None = None,
    end_at: datetime | None = None,
    max_runs: int | None = None,
    misfire: Misfire | str = Misfire.RUN_ONCE,
    misfire_grace: float = 60.0,
    catch_up: int = 10,
    reschedule_after_finish: bool = False,
    using: str | None = None,
) -> Schedule:
    """Create the schedule ``name``, or update it to these values; returns it.

    Idempotent: the same call again changes nothing, so it may run at every deploy or in a
    data migration (in ``jobs.py``, prefer ``@jobline.periodic``: no database at import).
    Exactly one of ``cron`` (with ``tz``), ``every`` (seconds, timedelta or ``"5m"``),
    ``at`` (a datetime) or ``in_`` (a duration from now) says when. ``is_active`` left out
    keeps the stored value (new schedules are active). Raises
    ``django.core.exceptions.ValidationError`` naming each bad field.
    """
    kind, rule = _kind_and_rule(cron, every, at, in_)
    fields: dict[str, Any] = {
        "job_type": job_type.name if isinstance(job_type, JobType) else job_type,
        "inputs": {} if inputs is None else inputs,
        "kind": kind.value,
        "rule": rule,
        "timezone": tz,
        "title": title,
        "queue": queue or "",
        "priority": priority,
        "end_at": end_at,
        "max_runs": max_runs,
        "misfire_policy": Misfire(misfire).value,
        "misfire_grace": misfire_grace,
        "catch_up": catch_up,
        "reschedule_after_finish": reschedule_after_finish,
    }
    # Left out, these keep their stored values: a timer counts from its creation, not from
    # this call, and a schedule switched off in the admin stays off when its code starts.
    if start_at is not None:
        fields["start_at"] = start_at
    if is_active is not None:
        fields["is_active"] = is_active
    alias = using or DEFAULT_DB_ALIAS
    try:
        return _create_or_update(name, fields, alias)
    except IntegrityError:  # created meanwhile by another process: update that one
        return _create_or_update(name, fields, alias)


def _create_or_update(name: str, fields: dict[str, Any], alias: str) -> Schedule:
    with transaction.atomic(using=alias):
        obj = Schedule.objects.using(alias).select_for_update().filter(name=name).first()
        if obj is not None and all(getattr(obj, k) == v for k, v in fields.items()):
            return obj
        obj = obj or Schedule(name=name)
        for key, value in fields.items():
            setattr(obj, key, value)
        obj.full_clean(validate_unique=False)
        obj.save(using=alias)
    return obj


def sync_periodic(using: str = DEFAULT_DB_ALIAS) -> int:
    """Create or update every ``@jobline.periodic`` schedule; returns how many there are."""
    for name, spec in periodic.declared.items():
        schedule(name, using=using, **spec)
    if periodic.declared:
        log.info("periodic schedules in code: %s", ", ".join(sorted(periodic.declared)))
    return len(periodic.declared)
