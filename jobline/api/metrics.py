"""``/metrics`` in Prometheus text format: queued and running jobs by queue, jobs finished in the
last minutes, claim and run times,
limits' use and waiting jobs, and what may be stuck (``jobline.services.stuck``; example
alert rules in ``docs/how-to/monitoring.md``).

Latency histograms come from the live workers' heartbeats, so every process of a
deployment is covered by scraping any web process.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from jobline.core.states import JobStatus
from jobline.models import Job, OutboxEvent, Worker
from jobline.services import flow, stuck
from jobline.worker.stats import BUCKETS

FINISHED_WINDOW = timedelta(minutes=5)


class _Collector:
    def collect(self) -> Iterator[object]:
        jobs = GaugeMetricFamily(
            "jobline_jobs", "Queued and running jobs by queue", labels=["status", "queue"]
        )
        # Unfinished jobs only: they are few and indexed by status, while counting the
        # finished ones read every row of a table that only retention keeps in check
        # (1.9 s a scrape at 10,000,000 rows).
        unfinished = Job.objects.filter(status__in=[JobStatus.QUEUED, JobStatus.RUNNING])
        for row in unfinished.values("status", "queue").annotate(n=Count("id")).order_by():
            jobs.add_metric([row["status"], row["queue"]], row["n"])
        yield jobs
        yield _finished_recently()
        live = list(Worker.objects.filter(lease_expires_at__gt=timezone.now()))
        workers = GaugeMetricFamily("jobline_workers", "Live worker processes")
        workers.add_metric([], len(live))
        yield workers
        yield _histogram("jobline_claim_duration_seconds", "Seconds per claim query", live, "claim")
        yield _histogram("jobline_job_run_duration_seconds", "Seconds per job attempt", live, "run")
        yield from _stuck()
        yield from _limits()
        outbox = GaugeMetricFamily(
            "jobline_outbox_events", "Job events waiting for the relay (subscriptions)"
        )
        outbox.add_metric([], OutboxEvent.objects.count())
        yield outbox


def _limits() -> Iterator[GaugeMetricFamily]:
    """Each limit key with jobs: running against its limit, and due jobs waiting for it."""
    labels = ["type", "key"]
    running = GaugeMetricFamily(
        "jobline_limit_running", "Running jobs per limit key", labels=labels
    )
    cap = GaugeMetricFamily("jobline_limit_max", "A limit key's limit", labels=labels)
    waiting = GaugeMetricFamily(
        "jobline_limit_waiting",
        "Due queued jobs per limit key (held while it is full)",
        labels=labels,
    )
    for row in flow.limits_in_use():
        key = [row["type"], row["label"]]
        running.add_metric(key, row["running"])
        cap.add_metric(key, row["limit"] or 0)
        waiting.add_metric(key, row["waiting"])
    yield from (running, cap, waiting)


def _stuck() -> Iterator[GaugeMetricFamily]:
    now = timezone.now()
    oldest = GaugeMetricFamily(
        "jobline_queue_oldest_due_seconds",
        "Seconds the oldest due queued job of each queue has waited to start",
        labels=["queue"],
    )
    for queue, seconds in sorted(stuck.oldest_due(now).items()):
        oldest.add_metric([queue], seconds)
    yield oldest
    marks = list(stuck.running_marks(now).values())
    for name, label, doc in (
        ("jobline_jobs_past_timeout", stuck.PAST_TIMEOUT, "Running jobs past their timeout"),
        ("jobline_jobs_worker_lost", stuck.WORKER_LOST, "Running jobs whose worker's lease lapsed"),
    ):
        family = GaugeMetricFamily(name, doc)
        family.add_metric([], marks.count(label))
        yield family
    rescued = GaugeMetricFamily(
        "jobline_jobs_rescued",
        "Jobs whose last attempt was lost with its worker: queued or running again, or "
        "finished within the last hour",
        labels=["queue", "status"],
    )
    for (queue, status), n in sorted(stuck.rescued(now).items()):
        rescued.add_metric([queue, status], n)
    yield rescued
    lapsed = GaugeMetricFamily("jobline_workers_lapsed", "Workers whose lease lapsed")
    lapsed.add_metric([], len(stuck.lapsed_workers(now)))
    yield lapsed


def _finished_recently() -> GaugeMetricFamily:
    """Jobs finished in the last FINISHED_WINDOW, for alerts on failures: a range of the
    finished_at index, where counting every finished job would read the whole table."""
    family = GaugeMetricFamily(
        "jobline_jobs_finished_recently",
        f"Jobs finished in the last {FINISHED_WINDOW.seconds // 60} minutes, by queue and status",
        labels=["status", "queue"],
    )
    since = timezone.now() - FINISHED_WINDOW
    rows = Job.objects.filter(finished_at__gte=since).values("status", "queue")
    for row in rows.annotate(n=Count("id")).order_by():
        family.add_metric([row["status"], row["queue"]], row["n"])
    return family


def _histogram(name: str, doc: str, workers: list[Worker], key: str) -> HistogramMetricFamily:
    counts = [0] * (len(BUCKETS) + 1)
    total = 0.0
    for w in workers:
        h = (w.stats or {}).get(key) or {}
        for i, n in enumerate(h.get("counts", [])[: len(counts)]):
            counts[i] += n
        total += h.get("sum", 0.0)
    cumulative, running = [], 0
    for bound, n in zip([*map(str, BUCKETS), "+Inf"], counts, strict=True):
        running += n
        cumulative.append((bound, running))
    family = HistogramMetricFamily(name, doc)
    family.add_metric([], cumulative, total)
    return family


def metrics(request: HttpRequest) -> HttpResponse:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
