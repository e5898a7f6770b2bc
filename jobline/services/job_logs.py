"""A job's captured log, as the API and the UI show it: one attempt's lines after a line
number (so a client following a running job asks only for what is new), and how many of
that attempt's first lines the cap dropped (the stored log is the tail)."""

from __future__ import annotations

from typing import Any

from django.db import DEFAULT_DB_ALIAS
from django.db.models import F

from jobline import conf
from jobline.models import Job, JobLog


def limits() -> dict[str, int]:
    return {
        "max_lines": int(conf.get("JOBLINE_JOB_LOG_MAX_LINES")),
        "max_bytes": int(conf.get("JOBLINE_JOB_LOG_MAX_BYTES")),
    }


def job_log(
    job: Job,
    *,
    attempt: int | None = None,
    after: int = 0,
    limit: int = 1000,
    using: str = DEFAULT_DB_ALIAS,
) -> dict[str, Any]:
    """Lines of ``attempt`` (default: the latest that logged) numbered above ``after``, at
    most ``limit`` of them."""
    logs = JobLog.objects.using(using).filter(job_id=job.id)
    attempts = sorted(logs.order_by().values_list("attempt", flat=True).distinct())
    if attempt is None:
        attempt = attempts[-1] if attempts else None
    of_attempt = logs.filter(attempt=attempt)
    rows = list(
        of_attempt.filter(seq__gt=after)
        .order_by("seq")
        .values("attempt", "seq", "level", "text", time=F("created_at"))[: limit + 1]
    )
    first = of_attempt.order_by("seq").values_list("seq", flat=True).first()
    dropped = first - 1 if first else 0
    lines = rows[:limit]
    return {
        "job_id": job.id,
        "status": job.status,
        "attempt": attempt,
        "attempts": attempts,
        "lines": lines,
        "dropped": dropped,
        "truncated": dropped > 0,
        "next_after": lines[-1]["seq"] if lines else after,
        "more": len(rows) > limit,
        "limits": limits(),
    }
