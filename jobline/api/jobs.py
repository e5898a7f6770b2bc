"""``/api/v1/jobs``: create, list (filters, cursor pages), get, logs, cancel, retry, bulk,
report."""

from __future__ import annotations

from typing import Any

from django.db import DEFAULT_DB_ALIAS, transaction
from django.db.models import Case, F, PositiveIntegerField, Q, QuerySet, Value, When
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from django.utils import timezone
from ninja import Path, Query, Router, Status
from ninja.errors import HttpError

from jobline.api.errors import FieldErrors, check_json_size, responses
from jobline.api.schemas import (
    MAX_ID,
    Count,
    JobCreate,
    JobFilter,
    JobLogOut,
    JobLogQuery,
    JobOut,
    JobPage,
    JobQuery,
    JobSelection,
    Report,
)
from jobline.core.states import JobStatus
from jobline.dispatch.kafka import Kafka
from jobline.exceptions import InputsError
from jobline.models import Job
from jobline.services import actions
from jobline.services.enqueue import enqueue
from jobline.services.job_logs import job_log

router = Router(tags=["jobs"])

JobId = Path(..., ge=1, le=MAX_ID)
ACTIVE = (JobStatus.QUEUED.value, JobStatus.RUNNING.value)


def get_job(job_id: int) -> Job:
    job = Job.objects.filter(pk=job_id).first()
    if job is None:
        raise HttpError(404, f"job {job_id} not found")
    return job


def filter_jobs(jobs: QuerySet[Job], where: JobFilter) -> QuerySet[Job]:
    """Jobs matching every criterion given in ``where``."""
    if where.status:
        jobs = jobs.filter(status__in=where.status)
    if where.type:
        jobs = jobs.filter(type__in=where.type)
    if where.queue:
        jobs = jobs.filter(queue__in=where.queue)
    if where.schedule:
        jobs = jobs.filter(schedule_id__in=where.schedule)
    if where.pipeline_run:
        jobs = jobs.filter(pipeline_run_id__in=where.pipeline_run)
    if where.created_after:
        jobs = jobs.filter(created_at__gte=where.created_after)
    if where.created_before:
        jobs = jobs.filter(created_at__lt=where.created_before)
    return jobs


def _selected(selection: JobSelection) -> QuerySet[Job]:
    jobs = filter_jobs(Job.objects.all(), selection)
    return jobs if selection.ids is None else jobs.filter(id__in=selection.ids)


@router.post("/jobs", response=responses({201: JobOut, 200: JobOut}, 400, 413, 422))
def create_job(request: HttpRequest, payload: JobCreate):
    """Enqueue a job. 201 with the job; 200 with the first job when its
    `idempotency_key` was used before."""
    check_json_size(payload.inputs, "inputs")
    try:
        with transaction.atomic():  # read back inside: the job as created, before any worker
            job = enqueue(payload.type, payload.inputs, **payload.options())
            return Status(201 if job.created else 200, get_job(job.id))
    except InputsError:  # a ValueError too: left to the API's handler (fields under inputs.)
        raise
    except ValueError as exc:  # options the schema cannot express (none known today)
        raise FieldErrors([{"field": "", "message": str(exc), "type": "value_error"}]) from None


def page(query: JobQuery, using: str = DEFAULT_DB_ALIAS) -> dict[str, Any]:
    """One page of jobs, newest first: keyset on id, so page 1,000 costs what page 1 does."""
    jobs = filter_jobs(Job.objects.using(using).defer("traceback"), query)
    if query.cursor is not None:
        jobs = jobs.filter(id__lt=query.cursor)
    rows = list(jobs.order_by("-id")[: query.limit + 1])
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    return {"items": rows, "next_cursor": rows[-1].id if more else None}


@router.get("/jobs", response=responses({200: JobPage}, 422))
def list_jobs(request: HttpRequest, query: Query[JobQuery]):
    """Jobs, newest first, a page at a time: follow `next_cursor` until it is null."""
    return page(query)


# Before /jobs/{job_id}, whose pattern would take "cancel" for an id.
@router.post("/jobs/cancel", response=responses({200: Count}, 400, 413, 422))
def cancel_jobs(request: HttpRequest, selection: JobSelection):
    """Terminate every queued or running job that matches."""
    return {"count": actions.cancel_jobs(_selected(selection))}


@router.post("/jobs/retry", response=responses({200: Count}, 400, 413, 422))
def retry_jobs(request: HttpRequest, selection: JobSelection):
    """Queue again every finished job that matches."""
    return {"count": actions.retry_jobs(_selected(selection))}


@router.get("/jobs/{job_id}", response=responses({200: JobOut}, 404, 422))
def get_job_view(request: HttpRequest, job_id: int = JobId):
    return get_job(job_id)


@router.get("/jobs/{job_id}/logs", response=responses({200: JobLogOut}, 404, 422))
def get_job_logs(request: HttpRequest, query: Query[JobLogQuery], job_id: int = JobId):
    """What the job logged through `logging` while it ran (and printed, with
    `JOBLINE_CAPTURE_PRINTS`), secrets masked: one attempt's lines after line `after`.

    An attempt's log is capped, the tail kept: `dropped` says how many first lines went.
    To follow a running job, call again with `after=next_after` (the `progress` events of
    `/api/v1/events` carry `log_lines`, the number of its newest line)."""
    return job_log(get_job(job_id), attempt=query.attempt, after=query.after, limit=query.limit)


@router.post("/jobs/{job_id}/cancel", response=responses({200: JobOut}, 404, 409, 422))
def cancel_job(request: HttpRequest, job_id: int = JobId):
    """Terminate: a queued job is cancelled now; a running one gets `cancel_requested` and
    its worker stops it within a second. 409 when the job has already finished."""
    job = get_job(job_id)
    if not actions.cancel_jobs([job.id]):
        raise HttpError(409, f"job {job_id} is {job.status}; only queued or running jobs cancel")
    return get_job(job_id)


@router.post("/jobs/{job_id}/retry", response=responses({200: JobOut}, 404, 409, 422))
def retry_job(request: HttpRequest, job_id: int = JobId):
    """Queue a finished job again with a fresh set of attempts. 409 while it is active."""
    job = get_job(job_id)
    if not actions.retry_jobs([job.id]):
        raise HttpError(409, f"job {job_id} is {job.status}; only finished jobs can be retried")
    return get_job(job_id)


@router.post("/jobs/{job_id}/report", response=responses({200: JobOut}, 400, 404, 409, 413, 422))
def report_job(request: HttpRequest, payload: Report, job_id: int = JobId):
    """An external executor reports on a job it handled.

    A `kafka` job succeeds when the broker acknowledges its message, and its `dispatch` is
    `delivered`. The executor that consumed it reports `running`, then `succeeded` (its
    `outputs` are kept as `dispatch_outputs`) or `failed` (the job fails with `error`).
    A report that arrives before the acknowledgement is recorded was delivered all the same:
    the job stops sending.

    Other jobs take a final report while queued or running: they end as reported, without
    retries, and `outputs` are stored as given. A queued job's report counts as its attempt.
    409 once the job has a final result, so the first report wins."""
    check_json_size(payload.outputs, "outputs")
    job = get_job(job_id)
    if job.type == Kafka.name:
        done = _report_dispatched(job_id, payload)
    elif payload.status == "running":
        raise HttpError(409, f"job {job_id} is a {job.type} job: only kafka jobs report running")
    else:
        done = Job.objects.filter(pk=job_id, status__in=ACTIVE).update(
            status=payload.status, outputs=payload.outputs, **_finished(payload)
        )
    job = get_job(job_id)
    if not done:
        raise HttpError(
            409, f"job {job_id} is {job.status} (dispatch: {job.dispatch or 'none'}): no report"
        )
    return job


def _report_dispatched(job_id: int, payload: Report) -> int:
    """Record an executor's report on a kafka job in one conditional update."""
    open_states = [Job.Dispatch.DELIVERED, Job.Dispatch.RUNNING]
    jobs = Job.objects.filter(
        Q(status__in=ACTIVE) | Q(status=JobStatus.SUCCEEDED, dispatch__in=open_states), pk=job_id
    )
    if payload.status == "running":
        return jobs.update(
            dispatch=payload.status,
            status=JobStatus.SUCCEEDED,
            attempts=_counted_attempts(),
            started_at=Coalesce(F("started_at"), Value(timezone.now())),
            finished_at=Coalesce(F("finished_at"), Value(timezone.now())),
            worker_id=None,
            cancel_requested=False,
        )
    status = JobStatus.FAILED if payload.status == "failed" else JobStatus.SUCCEEDED
    return jobs.update(
        dispatch=payload.status,
        dispatch_outputs=payload.outputs,
        status=status,
        **_finished(payload),
    )


def _finished(payload: Report) -> dict[str, Any]:
    """The fields a final report sets, whatever the kind of job."""
    now = timezone.now()
    return {
        "error": payload.error or ("reported failed" if payload.status == "failed" else ""),
        "attempts": _counted_attempts(),
        "started_at": Coalesce(F("started_at"), Value(now)),
        "finished_at": now,
        "worker_id": None,
        "cancel_requested": False,
    }


def _counted_attempts() -> Case:
    """A queued job's report counts as its attempt; a running one's attempt is counted."""
    return Case(
        When(status=JobStatus.QUEUED, then=F("attempts") + 1),
        default=F("attempts"),
        output_field=PositiveIntegerField(),
    )
