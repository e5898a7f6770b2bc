"""The report jobs, found by jobline in this app's jobs.py; schedule them in the admin."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone
from pydantic import AwareDatetime, PositiveInt

import jobline
from reports.events import events_between
from reports.models import VisitorReport


@jobline.job(timeout=300)
def build_reports_between(start: AwareDatetime, end: AwareDatetime) -> dict[str, Any]:
    """Count each visitor's views of each page from ``start`` up to (not including) ``end``."""
    if end <= start:
        raise jobline.Fail(f"end ({end}) must be after start ({start})")
    visits = Counter((e["visitor_id"], e["page"]) for e in events_between(start, end))
    with transaction.atomic():
        # A job may run more than once (a retry, or a worker lost mid-job): a window's
        # reports are replaced, never added to.
        VisitorReport.objects.filter(window_start=start, window_end=end).delete()
        VisitorReport.objects.bulk_create(
            VisitorReport(window_start=start, window_end=end, visitor_id=v, page=p, visits=n)
            for (v, p), n in visits.items()
        )
    return {
        "start": start.isoformat(),
        "end": end.isoformat(),
        "visits": visits.total(),
        "reports": len(visits),
    }


@jobline.job(timeout=300)
def build_reports_last_minutes(minutes: PositiveInt) -> dict[str, Any]:
    """Report on the last ``minutes`` whole minutes (a run at 10:05:02 covers 10:00-10:05)."""
    end = timezone.now().replace(second=0, microsecond=0)
    return build_reports_between(end - timedelta(minutes=minutes), end)
