"""The dashboard's numbers: queues, workers, and throughput / failures / depth over time.

Every query is served by an index (status, the partial ``finished_at`` index, the primary
key), so the dashboard stays quick on a table of millions of finished jobs. Results are
kept a few seconds per process (the 24-hour view longer), so many open dashboards cost one
set of queries.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, F, Func, IntegerField, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from jobline.core.jobtypes import registry
from jobline.core.states import JobStatus
from jobline.models import Job, Queue, Worker
from jobline.services import flow


@dataclass(frozen=True, slots=True)
class Window:
    key: str
    label: str
    span: timedelta
    step: timedelta
    cache: float  #: seconds its numbers are kept: a bucket's length is a fine grain

    @property
    def buckets(self) -> int:
        return int(self.span / self.step)


WINDOWS = {
    w.key: w
    for w in (
        Window("1h", "last hour", timedelta(hours=1), timedelta(minutes=1), cache=3),
        Window("24h", "last 24 hours", timedelta(hours=24), timedelta(minutes=30), cache=30),
    )
}


class Epoch(Func):
    """Seconds since 1970 of a datetime column, as an integer, on SQLite and PostgreSQL."""

    output_field = IntegerField()

    def as_sqlite(self, compiler, connection, **extra):
        template = "CAST((julianday(%(expressions)s) - 2440587.5) * 86400 AS INTEGER)"
        return self.as_sql(compiler, connection, template=template, **extra)

    def as_postgresql(self, compiler, connection, **extra):
        template = "floor(EXTRACT(EPOCH FROM %(expressions)s))::bigint"
        return self.as_sql(compiler, connection, template=template, **extra)


def _bucket(column: str, first: int, step: int) -> Any:
    """The bucket index (0 = the window's first) of a datetime column."""
    return Epoch(F(column)) / step - first


def _window(window: Window, now: datetime) -> tuple[datetime, int, int]:
    """The window's start (aligned to its buckets), bucket size and first bucket number."""
    step = int(window.step.total_seconds())
    end = (int(now.timestamp()) // step + 1) * step
    start_epoch = end - step * window.buckets
    return datetime.fromtimestamp(start_epoch, tz=now.tzinfo), step, start_epoch // step


def finished(window: Window, now: datetime) -> dict[tuple[int, str, str], int]:
    """``{(bucket, queue, status): count}`` of jobs finished in the window (one index scan)."""
    start, step, first = _window(window, now)
    rows = (
        Job.objects.filter(finished_at__gte=start)
        .annotate(bucket=_bucket("finished_at", first, step))
        .values_list("bucket", "queue", "status")
        .annotate(n=Count("id"))
        .order_by()
    )
    return {(b, q, s): n for b, q, s, n in rows}


def series(window: Window, now: datetime, done: dict[tuple[int, str, str], int]) -> dict:
    """Per bucket (oldest first): succeeded, failed, failure rate (%) and queue depth."""
    start, step, first = _window(window, now)
    n = window.buckets
    ok, failed = [0] * n, [0] * n
    for (b, _, status), count in done.items():
        if 0 <= b < n and status in (JobStatus.SUCCEEDED, JobStatus.FAILED):
            (ok if status == JobStatus.SUCCEEDED else failed)[b] += count
    rate = [round(100 * f / (s + f), 1) if s + f else None for s, f in zip(ok, failed, strict=True)]
    return {
        "starts": [start + i * window.step for i in range(n)],
        "succeeded": ok,
        "failed": failed,
        "failure_rate": rate,
        "depth": _depth(start, step, first, n),
    }


def _depth(start: datetime, step: int, first: int, n: int) -> list[int]:
    """Jobs waiting at the end of each bucket, walked back from now by arrivals and departures.

    A job arrives when created and departs when it starts (or is cancelled unstarted).
    Those that arrived or departed in the window are active now or finished in it; one
    query counts them by (arrival bucket, departure bucket). A retried job counts once.
    """
    active = Q(status__in=[JobStatus.QUEUED.value, JobStatus.RUNNING.value])
    moves = (
        Job.objects.filter(active | Q(finished_at__gte=start))
        .annotate(
            came=_bucket("created_at", first, step),
            left=Epoch(Coalesce("started_at", "finished_at")) / step - first,
        )
        .values_list("came", "left")
        .annotate(n=Count("id"))
        .order_by()
    )
    change = [0] * n  # arrivals minus departures per bucket
    for came, left, count in moves:
        if came is not None and 0 <= came < n:
            change[came] += count
        if left is not None and 0 <= left < n:
            change[left] -= count
    waiting = Job.objects.filter(status=JobStatus.QUEUED.value).count()
    depth = [0] * n
    for i in reversed(range(n)):
        depth[i] = max(waiting, 0)
        waiting -= change[i]
    return depth


def queues(done: dict[tuple[int, str, str], int]) -> list[dict[str, Any]]:
    """Each known queue: waiting and running jobs now, finished in the window, paused."""
    names = {jt.queue for jt in registry} | set(Queue.objects.values_list("name", flat=True))
    counts: dict[str, dict[str, int]] = {}
    active = Job.objects.filter(status__in=[JobStatus.QUEUED.value, JobStatus.RUNNING.value])
    by_queue = active.values_list("queue", "status").annotate(n=Count("id")).order_by()
    for queue, status, n in by_queue:
        counts.setdefault(queue, {})[status] = n
    for (_, queue, status), n in done.items():
        by_status = counts.setdefault(queue, {})
        by_status[status] = by_status.get(status, 0) + n
    settings = {q.name: q for q in Queue.objects.all()}
    return [
        {
            "name": name,
            "paused": name in settings and settings[name].paused,
            "rules": settings[name].rules if name in settings else None,
            **counts.get(name, {}),
        }
        for name in sorted(names | counts.keys())
    ]


def workers(now: datetime) -> list[Worker]:
    return list(Worker.objects.filter(lease_expires_at__gt=now).order_by("hostname", "pid"))


def totals(queue_rows: list[dict[str, Any]]) -> dict[str, int]:
    keys = ("queued", "running", "succeeded", "failed", "cancelled")
    return {k: sum(q.get(k, 0) for q in queue_rows) for k in keys}


_cache: dict[str, tuple[float, dict[str, Any]]] = {}
_generation = [0]  #: bumped by clear_cache, so that a slower, older read is not kept


def dashboard(window: Window) -> dict[str, Any]:
    """Everything the dashboard shows, at most ``window.cache`` seconds old."""
    hit = _cache.get(window.key)
    if hit and time.monotonic() - hit[0] < window.cache:
        return hit[1]
    generation = _generation[0]
    now = timezone.now()
    done = finished(window, now)
    queue_rows = queues(done)
    data = {
        "now": now,
        "window": window,
        "series": series(window, now, done),
        "queues": queue_rows,
        "totals": totals(queue_rows),
        "workers": workers(now),
        "limits": flow.limits_in_use(),
        "failures": list(
            Job.objects.filter(status=JobStatus.FAILED.value)
            .only("id", "type", "queue", "error", "finished_at")
            .order_by("-id")[:6]
        ),
    }
    if generation == _generation[0]:
        _cache[window.key] = (time.monotonic(), data)
    return data


def clear_cache() -> None:
    """After a change made here (pause, resume), show it on the next dashboard at once."""
    _generation[0] += 1
    _cache.clear()
