"""``@jobline.periodic``: schedules declared next to the jobs they run, in code.

Declarations are collected as modules import (no database access); ``jobline scheduler``,
``jobline trigger`` and ``jobline up`` create or update them by name when they start
(``jobline.scheduler.api.sync_periodic``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from jobline.core.jobtypes import JobType
from jobline.core.schedules import Kind, Timing, format_duration
from jobline.exceptions import JobDefinitionError

T = TypeVar("T")

#: schedule name -> keyword arguments of ``jobline.schedule``
declared: dict[str, dict[str, Any]] = {}


def periodic(
    *,
    cron: str | None = None,
    every: float | timedelta | str | None = None,
    name: str | None = None,
    inputs: Any = None,
    tz: str = "UTC",
    **options: Any,
) -> Any:
    """Run a job type on a cron rule or every interval; goes above ``@jobline.job``.

    ``name`` (default: the job type's name) identifies the schedule; ``options`` are those
    of :func:`jobline.schedule` (``queue``, ``priority``, ``misfire``, ``max_runs``, ...).
    Removing the decorator leaves the schedule in the database: disable it in the admin.
    """
    if (cron is None) == (every is None):
        raise JobDefinitionError("@jobline.periodic takes either cron=... or every=...")
    kind, rule = (Kind.CRON, cron) if cron is not None else (Kind.INTERVAL, every)
    rule = rule if isinstance(rule, str) else format_duration(rule)  # type: ignore[arg-type]
    Timing(kind=kind, rule=rule, tz=tz, start_at=datetime.now(UTC))  # a bad rule fails at import

    def register(target: T) -> T:
        job_type = target if isinstance(target, JobType) else getattr(target, "job_type", None)
        if not isinstance(job_type, JobType):
            raise JobDefinitionError(
                "@jobline.periodic goes above @jobline.job, or on a jobline.Job class"
            )
        spec = {"cron": cron} if cron is not None else {"every": rule}
        declared[name or job_type.name] = {
            "job_type": job_type.name,
            "inputs": inputs,
            "tz": tz,
            **spec,
            **options,
        }
        return target

    return register
