"""``/api/v1/queues``: each queue's jobs by status; pause and resume; its limit and rate."""

from __future__ import annotations

from django.db.models import Count
from django.http import HttpRequest
from ninja import Field, Path, Router, Schema

from jobline.api.errors import responses
from jobline.api.schemas import Body
from jobline.core.flow import MAX_RATE_PER, QueueRules
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
    limit: int | None = Field(None, description="At most this many of its jobs run at once.")
    rate: int | None = Field(None, description="At most this many starts per `per` seconds.")
    per: float = Field(1.0, description="Seconds of the rate's window.")
    jobs: QueueDepth


class QueuePatch(Body):
    """Change a queue at run time; workers apply it at their next claims. Fields left out
    stay as they are; null removes a limit or a rate."""

    paused: bool = None  # type: ignore[assignment]
    limit: int | None = Field(None, ge=1, le=1_000_000)
    rate: int | None = Field(None, ge=1, le=1_000_000)
    per: float = Field(None, gt=0, le=MAX_RATE_PER)  # type: ignore[assignment]


def queues(name: str | None = None) -> list[dict]:
    """Every queue that has jobs or settings (or just ``name``), with its jobs by status."""
    jobs = Job.objects.all() if name is None else Job.objects.filter(queue=name)
    rows = Queue.objects.all() if name is None else Queue.objects.filter(name=name)
    settings = {q.name: q for q in rows}
    depth: dict[str, dict[str, int]] = {n: {} for n in settings}
    counts = jobs.values_list("queue", "status").annotate(n=Count("id")).order_by()
    for queue, status, n in counts:
        depth.setdefault(queue, {})[status] = n
    return [_out(q, settings.get(q), depth[q]) for q in sorted(depth)]


def _out(name: str, queue: Queue | None, jobs: dict[str, int]) -> dict:
    if queue is None:
        return {"name": name, "paused": False, "jobs": jobs}
    return {
        "name": name,
        "paused": queue.paused,
        "limit": queue.concurrency_limit,
        "rate": queue.rate_limit,
        "per": queue.rate_per,
        "jobs": jobs,
    }


@router.get("/queues", response=responses({200: list[QueueOut]}))
def list_queues(request: HttpRequest):
    return queues()


@router.get("/queues/{name}", response=responses({200: QueueOut}, 422))
def get_queue(request: HttpRequest, name: str = QueueName):
    """A queue nobody has used yet answers with zero jobs."""
    found = queues(name)
    return found[0] if found else {"name": name, "paused": False, "jobs": {}}


@router.patch("/queues/{name}", response=responses({200: QueueOut}, 400, 413, 422))
def patch_queue(request: HttpRequest, payload: QueuePatch, name: str = QueueName):
    """Pause or resume a queue, set or remove its fleet-wide concurrency `limit` and its
    `rate` (`rate` starts per `per` seconds), without restarting workers."""
    given = payload.model_fields_set
    if given & {"limit", "rate", "per"}:
        current = Queue.objects.filter(name=name).first()
        rules = current.rules if current is not None else QueueRules(name=name)
        actions.set_queue_rules(
            name,
            limit=payload.limit if "limit" in given else rules.limit,
            rate=payload.rate if "rate" in given else rules.rate,
            per=payload.per if "per" in given and payload.per is not None else rules.per,
        )
    if "paused" in given and payload.paused is not None:
        (actions.pause_queue if payload.paused else actions.resume_queue)(name)
    return queues(name)[0] if queues(name) else _out(name, None, {})


@router.post("/queues/{name}/pause", response=responses({200: QueueOut}, 422))
def pause_queue(request: HttpRequest, name: str = QueueName):
    """Workers stop taking jobs from the queue (it may not exist yet); running jobs finish."""
    actions.pause_queue(name)
    return queues(name)[0]


@router.post("/queues/{name}/resume", response=responses({200: QueueOut}, 422))
def resume_queue(request: HttpRequest, name: str = QueueName):
    actions.resume_queue(name)
    return queues(name)[0]
