"""Jobs pages: the list (filters, id search, keyset pages), a job, and the actions on jobs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any
from urllib.parse import urlencode

from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils import timezone

from jobline.core.jobtypes import registry
from jobline.core.states import FINISHED, JobStatus
from jobline.models import Job, Queue
from jobline.models.schedules import Schedule
from jobline.redact import masked_inputs
from jobline.services import actions, flow
from jobline.services import stuck as stuck_jobs
from jobline.web.base import action, flash, page, render

PAGE_SIZES = (25, 50, 100, 200)
COUNT_CAP = 10_000  #: the bulk confirmation counts at most this many jobs
LIST_FIELDS = (
    "id",
    "type",
    "queue",
    "priority",
    "status",
    "attempts",
    "max_attempts",
    "error",
    "run_at",
    "created_at",
    "started_at",
    "finished_at",
    "cancel_requested",
    "dispatch",
)
RANGES = {
    "15m": ("last 15 minutes", timedelta(minutes=15)),
    "1h": ("last hour", timedelta(hours=1)),
    "24h": ("last 24 hours", timedelta(days=1)),
    "7d": ("last 7 days", timedelta(days=7)),
}
ACTIVE = [JobStatus.QUEUED.value, JobStatus.RUNNING.value]


def _local(text: str, offset_minutes: int) -> datetime | None:
    """A ``datetime-local`` value in the browser's zone (``tz``: JS's getTimezoneOffset)."""
    try:
        naive = datetime.fromisoformat(text)
    except ValueError:
        return None
    if naive.tzinfo is not None:
        return naive
    return (naive + timedelta(minutes=offset_minutes)).replace(tzinfo=UTC)


def first_id_since(moment: datetime) -> int:
    """The smallest id of the jobs created at or after ``moment`` (a larger one if none).

    There is no index on ``created_at`` (it would cost every claim and completion), but ids
    grow with creation times, so bisecting the primary key finds the place in ~20 lookups;
    the time filters then scan only their own stretch of ids. The exact ``created_at``
    condition is kept too; jobs whose concurrent inserts committed out of order within a
    moment of the boundary may fall on either side of it.
    """
    ids = Job.objects.order_by("id").values_list("id", flat=True)
    lo, hi = ids.first(), ids.last()
    if lo is None:
        return 0

    def created(at_least: int) -> datetime:
        return (
            Job.objects.filter(id__gte=at_least)
            .order_by("id")
            .values_list("created_at", flat=True)[0]
        )

    if created(lo) >= moment:
        return lo
    if created(hi) < moment:
        return hi + 1
    while hi - lo > 1:  # created(lo) < moment <= created(hi)
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if created(mid) >= moment else (mid, hi)
    return ids.filter(id__gte=hi).first()


@dataclass(frozen=True)
class Filters:
    """What the jobs list shows, read from the query string (bad values are ignored)."""

    status: str = ""
    type: str = ""
    queue: str = ""
    schedule: int | None = None
    range: str = ""
    created_from: str = ""
    created_to: str = ""
    tz: int = 0
    stuck: str = ""  #: a key of ``jobline.services.stuck.KINDS``: running jobs that look stuck

    @classmethod
    def parse(cls, params: Any) -> Filters:
        status = params.get("status", "")
        schedule = params.get("schedule", "")
        try:
            tz = max(-900, min(900, int(params.get("tz", 0))))
        except ValueError:
            tz = 0
        return cls(
            status=status if status in JobStatus._value2member_map_ else "",
            type=params.get("type", "").strip()[:200],
            queue=params.get("queue", "").strip()[:100],
            schedule=int(schedule) if schedule.isdigit() else None,
            range=params.get("range", "") if params.get("range") in RANGES else "",
            created_from=params.get("from", "")[:30],
            created_to=params.get("to", "")[:30],
            tz=tz,
            stuck=params.get("stuck", "") if params.get("stuck") in stuck_jobs.KINDS else "",
        )

    def apply(self, jobs: QuerySet[Job]) -> QuerySet[Job]:
        if self.status:
            jobs = jobs.filter(status=self.status)
        if self.type:
            jobs = jobs.filter(type=self.type)
        if self.queue:
            jobs = jobs.filter(queue=self.queue)
        if self.schedule is not None:
            jobs = jobs.filter(schedule_id=self.schedule)
        if self.stuck:
            jobs = stuck_jobs.only(jobs, self.stuck)
        starts = [_local(self.created_from, self.tz) if self.created_from else None]
        if self.range:
            starts.append(timezone.now() - RANGES[self.range][1])
        for start in filter(None, starts):
            jobs = jobs.filter(created_at__gte=start, id__gte=first_id_since(start))
        if self.created_to and (end := _local(self.created_to, self.tz)):
            jobs = jobs.filter(created_at__lt=end, id__lt=first_id_since(end))
        return jobs

    def params(self) -> dict[str, str]:
        """The filters as query parameters (for links and the bulk forms)."""
        values = {
            "status": self.status,
            "type": self.type,
            "queue": self.queue,
            "schedule": "" if self.schedule is None else str(self.schedule),
            "range": self.range,
            "from": self.created_from,
            "to": self.created_to,
            "tz": str(self.tz) if self.created_from or self.created_to else "",
            "stuck": self.stuck,
        }
        return {k: v for k, v in values.items() if v}

    def query(self, **extra: Any) -> str:
        return urlencode({**self.params(), **{k: v for k, v in extra.items() if v}})

    @property
    def active(self) -> bool:
        return bool(self.params())


def _page_size(params: Any) -> int:
    try:
        size = int(params.get("limit", 50))
    except ValueError:
        return 50
    return size if size in PAGE_SIZES else 50


def cursor_param(params: Any, name: str) -> int | None:
    value = params.get(name, "")
    return int(value) if value.isdigit() else None


def keyset_page(
    jobs: QuerySet[Job], *, before: int | None, after: int | None, size: int
) -> tuple[list[Job], int | None, int | None]:
    """One page, newest first, by id; returns it with the cursors of the older / newer page.

    ``id < before`` (or ``id > after``) on the primary key, so page 10,000 costs as
    little as page 1 on any number of jobs.
    """
    if after is not None:
        rows = list(jobs.filter(id__gt=after).order_by("id")[: size + 1])
        more_newer = len(rows) > size
        rows = rows[:size][::-1]
        older = rows[-1].id if rows else after + 1
        return rows, older, rows[0].id if rows and more_newer else None
    if before is not None:
        jobs = jobs.filter(id__lt=before)
    rows = list(jobs.order_by("-id")[: size + 1])
    more_older = len(rows) > size
    rows = rows[:size]
    newer = rows[0].id if rows and before is not None else None
    return rows, rows[-1].id if more_older else None, newer


def known_queues() -> list[str]:
    names = {jt.queue for jt in registry} | set(Queue.objects.values_list("name", flat=True))
    return sorted(names)


def _search(request: HttpRequest, text: str) -> HttpResponse | None:
    """``q``: a job id (``123`` or ``#123``) or an idempotency key opens that job."""
    text = text.strip().lstrip("#")
    found = None
    if text.isdigit() and len(text) < 19:
        found = Job.objects.filter(pk=int(text)).values_list("id", flat=True).first()
    if found is None and text:
        found = Job.objects.filter(idempotency_key=text).values_list("id", flat=True).first()
    if found is None:
        flash(request, f"No job with id or idempotency key {text!r}.", "error")
        return None
    return redirect("jobline:job", pk=found)


@page
def jobs_list(request: HttpRequest) -> HttpResponse:
    params = request.GET
    if q := params.get("q", "").strip():
        if (found := _search(request, q)) is not None:
            return found
    filters = Filters.parse(params)
    size = _page_size(params)
    before, after = cursor_param(params, "before"), cursor_param(params, "after")
    rows, older, newer = keyset_page(
        filters.apply(Job.objects.only(*LIST_FIELDS)), before=before, after=after, size=size
    )
    limit = "" if size == 50 else str(size)
    context = {
        "live_query": filters.query(before=before, after=after, limit=limit, partial=1),
        "jobs": rows,
        "filters": filters,
        "first_page": filters.query(limit=limit),
        "older": filters.query(before=older, limit=limit) if older else "",
        "newer": filters.query(after=newer, limit=limit) if newer else "",
        "is_first_page": before is None and after is None,
        "statuses": [s.value for s in JobStatus],
        "types": registry.names(),
        "queues": known_queues(),
        "ranges": RANGES,
        "page_sizes": PAGE_SIZES,
        "size": size,
        "schedules": Schedule.objects.only("id", "name", "title").order_by("name")[:500],
        "stuck_kinds": stuck_jobs.KINDS,
        "marks": stuck_jobs.running_marks(),
    }
    template = "jobline/_job_rows.html" if params.get("partial") else "jobline/jobs.html"
    return render(request, template, context)


def _bulk_jobs(filters: Filters, what: str) -> QuerySet[Job]:
    jobs = filters.apply(Job.objects.all())
    if what == "terminate":
        return jobs.filter(status__in=ACTIVE)
    return jobs.filter(status__in=[s.value for s in FINISHED])


@page
def jobs_count(request: HttpRequest) -> JsonResponse:
    """How many jobs a bulk action would touch (for its confirmation), up to ``COUNT_CAP``."""
    what = "terminate" if request.GET.get("action") == "terminate" else "retry"
    ids = _bulk_jobs(Filters.parse(request.GET), what).values("id")[: COUNT_CAP + 1]
    n = ids.count()
    return JsonResponse({"count": min(n, COUNT_CAP), "more": n > COUNT_CAP})


@action
def jobs_bulk(request: HttpRequest) -> HttpResponse:
    """Terminate, or retry, every job that matches the filters of the list."""
    filters = Filters.parse(request.POST)
    what = request.POST.get("action")
    if what == "terminate":
        n = actions.cancel_jobs(_bulk_jobs(filters, what))
        flash(request, f"Cancelled {n} job{'s' * (n != 1)} (running ones stop within a second).")
    elif what == "retry":
        n = actions.retry_jobs(_bulk_jobs(filters, what))
        flash(request, f"Queued {n} finished job{'s' * (n != 1)} again.")
    else:
        flash(request, "Unknown action.", "error")
    return redirect(f"{reverse('jobline:jobs')}?{filters.query()}")


def timeline(job: Job) -> list[dict[str, Any]]:
    """The job's life so far, as steps with the time spent in between."""
    steps = [{"label": "Created", "at": job.created_at, "state": "done"}]
    if job.run_at and job.run_at - job.created_at > timedelta(seconds=1):
        ahead = job.run_at > timezone.now() and job.status == JobStatus.QUEUED
        steps.append({"label": "Due", "at": job.run_at, "state": "wait" if ahead else "done"})
    if job.started_at:
        label = f"Started (attempt {job.attempts} of {job.max_attempts})"
        steps.append({"label": label, "at": job.started_at, "state": "done"})
    if job.finished_at and job.dispatch:
        steps += dispatch_steps(job)
    elif job.finished_at:
        steps.append(
            {"label": job.get_status_display(), "at": job.finished_at, "state": job.status}
        )
    elif job.status == JobStatus.RUNNING:
        note = "terminating" if job.cancel_requested else "running"
        steps.append({"label": note.capitalize(), "at": None, "state": "running"})
    else:
        steps.append({"label": "Waiting for a worker", "at": None, "state": "queued"})
    for prev, step in pairwise(steps):
        if prev["at"] and step["at"]:
            step["after"] = step["at"] - prev["at"]
    return steps


DISPATCH_LABELS = {
    "delivered": "delivered: waiting for its executor to report",
    "running": "delivered: its executor is running it",
    "succeeded": "its executor succeeded",
    "failed": "its executor failed",
}


def dispatch_steps(job: Job) -> list[dict[str, Any]]:
    """A dispatched job's end: delivered (when the broker acked, if still known), then what
    its executor reported. A final report moves ``finished_at`` to its own time."""
    if job.dispatch in ("delivered", "running"):
        steps = [{"label": "Delivered", "at": job.finished_at, "state": "done"}]
        if job.dispatch == "running":
            steps.append({"label": "Executor running", "at": None, "state": "wait"})
        return steps
    label = f"Executor {job.dispatch}"
    return [
        {"label": "Delivered", "at": None, "state": "done"},
        {"label": label, "at": job.finished_at, "state": job.dispatch},
    ]


@page
def job_detail(request: HttpRequest, pk: int) -> HttpResponse:
    job = get_object_or_404(Job.objects.select_related("schedule"), pk=pk)
    context = {
        "job": job,
        "inputs": masked_inputs(job.type, job.inputs),
        "timeline": timeline(job),
        "dispatch_label": DISPATCH_LABELS.get(job.dispatch, ""),
        "active": job.status in ACTIVE,
        "rerun": job.type in registry and registry.get(job.type).user_triggered,
        "stuck": stuck_jobs.running_marks().get(job.id, "") if job.status == "running" else "",
        "waiting": flow.waiting(job),  # held back by a limit or a rate: which, and why
    }
    template = "jobline/_job.html" if request.GET.get("partial") else "jobline/job.html"
    return render(request, template, context)


@action
def job_terminate(request: HttpRequest, pk: int) -> HttpResponse:
    job = get_object_or_404(Job, pk=pk)
    if actions.cancel_jobs([job.id]):
        running = job.status == JobStatus.RUNNING
        # The status it ends in is "cancelled", as its badge and the filters say.
        flash(request, f"Job {pk} {'is being stopped' if running else 'is cancelled'}.")
    else:
        flash(request, f"Job {pk} is {job.status}: only queued or running jobs stop.", "error")
    return redirect("jobline:job", pk=pk)


@action
def job_retry(request: HttpRequest, pk: int) -> HttpResponse:
    job = get_object_or_404(Job, pk=pk)
    if actions.retry_jobs([job.id]):
        flash(request, f"Job {pk} is queued again.")
    else:
        flash(request, f"Job {pk} is {job.status}: only finished jobs can be retried.", "error")
    return redirect("jobline:job", pk=pk)
