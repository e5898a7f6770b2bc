"""``/api/v1/queues``: each queue's jobs by status; pause and resume."""

from __future__ import annotations

from django.db.models import Count
from django.http import HttpRequest
from ninja import Path, Router, Schema

from jobline.api.errors import responses
from jobline.models import Job, Queue
from jobline.services import actions

router = Router(tags=["queues"])

QueueName = Path(..., min_length=1, max_length=100)


class QueueDepth(Schema):
    queued: int = 0
    running: int = 0
    succeeded: int = 0
    failed: int = 0
    cancelled: int = 0


class QueueOut(Schema):
    name: str
    paused: bool  #: workers take no new jobs from it; running ones finish
    jobs: QueueDepth


def queues(name: str | None = None) -> list[dict]:
    """Every queue that has jobs or settings (or just ``name``), with its jobs by status."""
    jobs = Job.objects.all() if name is None else Job.objects.filter(queue=name)
    rows = Queue.objects.all() if name is None else Queue.objects.filter(name=name)
    paused = dict(rows.values_list("name", "paused"))
    depth: dict[str, dict[str, int]] = {n: {} for n in paused}
    counts = jobs.values_list("queue", "status").annotate(n=Count("id")).order_by()
    for queue, status, n in counts:
        depth.setdefault(queue, {})[status] = n
    return [{"name": q, "paused": paused.get(q, False), "jobs": depth[q]} for q in sorted(depth)]


@router.get("/queues", response=responses({200: list[QueueOut]}))
def list_queues(request: HttpRequest):
    return queues()


@router.get("/queues/{name}", response=responses({200: QueueOut}, 422))
def get_queue(request: HttpRequest, name: str = QueueName):
    """A queue nobody has used yet answers with zero jobs."""
    found = queues(name)
    return found[0] if found else {"name": name, "paused": False, "jobs": {}}


@router.post("/queues/{name}/pause", response=responses({200: QueueOut}, 422))
def pause_queue(request: HttpRequest, name: str = QueueName):
    """Workers stop taking jobs from the queue (it may not exist yet); running jobs finish."""
    actions.pause_queue(name)
    return queues(name)[0]


@router.post("/queues/{name}/resume", response=responses({200: QueueOut}, 422))
def resume_queue(request: HttpRequest, name: str = QueueName):
    actions.resume_queue(name)
    return queues(name)[0]
