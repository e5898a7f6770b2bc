"""``/api/v1/schedules``: stored schedules (CRUD), their run history, and ``run-now``.

The model validates and re-arms itself on save (``jobline.models.schedules``); the
scheduler owns ``next_run_at``, ``last_run_at``, ``last_job_id`` and ``run_count``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from ninja import Path, Query, Router, Schema, Status
from ninja.errors import HttpError
from pydantic import Field

from jobline.api.errors import FieldErrors, check_json_size, model_errors, responses
from jobline.api.jobs import get_job
from jobline.api.schemas import MAX_ID, QUEUE_OR_EMPTY, Body, IsoDatetime, JobOut
from jobline.core.schedules import Kind, Misfire, ScheduleError
from jobline.models.schedules import Schedule, ScheduleRun
from jobline.redact import masked_inputs, unmasked
from jobline.services.firing import run_now

router = Router(tags=["schedules"])

ScheduleId = Path(..., ge=1, le=MAX_ID)
KindName = Literal[tuple(k.value for k in Kind)]  # type: ignore[valid-type]
MisfireName = Literal[tuple(m.value for m in Misfire)]  # type: ignore[valid-type]


class ScheduleIn(Body):
    name: str = Field(min_length=1, max_length=200, description="Stable key.")
    title: str = Field("", max_length=200)
    job_type: str = Field(min_length=1, max_length=200)
    inputs: dict[str, Any] = Field(default_factory=dict)
    queue: str = Field(
        "", max_length=100, pattern=QUEUE_OR_EMPTY, description="Empty: the job type's queue."
    )
    priority: int | None = Field(None, ge=-100, le=100)
    is_active: bool = True
    kind: KindName = "cron"
    rule: str = Field(
        min_length=1,
        max_length=200,
        description="cron: `*/5 * * * *`; interval and in: `90`, `5m`, `1h30m`; "
        "at: `2030-01-31T09:00`.",
    )
    timezone: str = Field("UTC", min_length=1, max_length=64, description="IANA zone.")
    start_at: IsoDatetime | None = None
    end_at: IsoDatetime | None = None
    max_runs: int | None = Field(None, ge=1, le=2**31 - 1)
    misfire_policy: MisfireName = "run_once"
    misfire_grace: float = Field(60.0, ge=0, le=86_400 * 366)
    catch_up: int = Field(10, ge=0, le=10_000)
    reschedule_after_finish: bool = False


class SchedulePatch(Body):
    """Only the fields sent change; null clears the nullable ones."""

    # Non-nullable fields default to None only to tell "not sent"; an explicit null is refused.
    name: str = Field(None, min_length=1, max_length=200)
    title: str = Field(None, max_length=200)
    job_type: str = Field(None, min_length=1, max_length=200)
    inputs: dict[str, Any] = None  # type: ignore[assignment]
    queue: str = Field(None, max_length=100, pattern=QUEUE_OR_EMPTY)
    priority: int | None = Field(None, ge=-100, le=100)
    is_active: bool = None  # type: ignore[assignment]
    kind: KindName = None  # type: ignore[assignment]
    rule: str = Field(None, min_length=1, max_length=200)
    timezone: str = Field(None, min_length=1, max_length=64)
    start_at: IsoDatetime | None = None
    end_at: IsoDatetime | None = None
    max_runs: int | None = Field(None, ge=1, le=2**31 - 1)
    misfire_policy: MisfireName = None  # type: ignore[assignment]
    misfire_grace: float = Field(None, ge=0, le=86_400 * 366)
    catch_up: int = Field(None, ge=0, le=10_000)
    reschedule_after_finish: bool = None  # type: ignore[assignment]


class ScheduleOut(Schema):
    id: int
    name: str
    title: str
    job_type: str
    inputs: dict[str, Any]
    queue: str
    priority: int | None
    is_active: bool
    kind: str
    rule: str
    description: str = Field(description="The rule in words.")
    timezone: str
    start_at: datetime | None
    end_at: datetime | None
    max_runs: int | None
    misfire_policy: str
    misfire_grace: float
    catch_up: int = Field(ge=0)  # the admin allows more than the API's 10,000
    reschedule_after_finish: bool
    next_run_at: datetime | None
    last_run_at: datetime | None
    last_job_id: int | None
    run_count: int
    time_left: float = Field(description="Seconds until the next run; 0 when due or done.")
    created_at: datetime
    updated_at: datetime

    @staticmethod
    def resolve_inputs(schedule: Schedule) -> Any:
        return masked_inputs(schedule.job_type, schedule.inputs)  # as the jobs it fires show

    @staticmethod
    def resolve_description(schedule: Schedule) -> str:
        return schedule.describe()

    @staticmethod
    def resolve_time_left(schedule: Schedule) -> float:
        return round(schedule.time_left(), 3)


class RunOut(Schema):
    scheduled_for: datetime
    fired_at: datetime
    job_id: int | None
    skipped: int  #: missed runs dropped just before this one
    manual: bool  #: started with run-now
    error: str


def get_schedule(schedule_id: int) -> Schedule:
    schedule = Schedule.objects.filter(pk=schedule_id).first()
    if schedule is None:
        raise HttpError(404, f"schedule {schedule_id} not found")
    return schedule


def _save(schedule: Schedule) -> Schedule:
    """Validate as the admin does (422 naming fields), then save (which re-arms it)."""
    try:
        schedule.full_clean()
        with transaction.atomic():
            schedule.save()
    except ValidationError as exc:
        raise model_errors(exc) from None
    except ScheduleError as exc:
        raise FieldErrors(
            [{"field": exc.field, "message": exc.message, "type": "invalid"}]
        ) from None
    except IntegrityError:  # a concurrent create took the name after the check
        raise HttpError(409, f"a schedule named {schedule.name!r} exists") from None
    return schedule


@router.get("/schedules", response=responses({200: list[ScheduleOut]}, 422))
def list_schedules(
    request: HttpRequest,
    is_active: bool = Query(None),
    job_type: str = Query(None, max_length=200),
):
    schedules = Schedule.objects.all()
    if is_active is not None:
        schedules = schedules.filter(is_active=is_active)
    if job_type is not None:
        schedules = schedules.filter(job_type=job_type)
    return schedules


@router.post("/schedules", response=responses({201: ScheduleOut}, 400, 409, 413, 422))
def create_schedule(request: HttpRequest, payload: ScheduleIn):
    check_json_size(payload.inputs, "inputs")
    return Status(201, _save(Schedule(**payload.model_dump())))


@router.get("/schedules/{schedule_id}", response=responses({200: ScheduleOut}, 404, 422))
def get_schedule_view(request: HttpRequest, schedule_id: int = ScheduleId):
    return get_schedule(schedule_id)


@router.patch(
    "/schedules/{schedule_id}", response=responses({200: ScheduleOut}, 400, 404, 409, 413, 422)
)
def update_schedule(request: HttpRequest, payload: SchedulePatch, schedule_id: int = ScheduleId):
    schedule = get_schedule(schedule_id)
    changes = payload.model_dump(exclude_unset=True)
    check_json_size(changes.get("inputs"), "inputs")
    if changes.get("inputs") is not None:  # GET shows secrets masked: unchanged masks keep them
        changes["inputs"] = unmasked(schedule.job_type, changes["inputs"], schedule.inputs)
    for field, value in changes.items():
        setattr(schedule, field, value)
    return _save(schedule)


@router.delete("/schedules/{schedule_id}", response=responses({204: None}, 404, 422))
def delete_schedule(request: HttpRequest, schedule_id: int = ScheduleId):
    """Delete the schedule and its history; the jobs it fired stay."""
    get_schedule(schedule_id).delete()
    return Status(204, None)


@router.get("/schedules/{schedule_id}/runs", response=responses({200: list[RunOut]}, 404, 422))
def list_runs(
    request: HttpRequest,
    schedule_id: int = ScheduleId,
    limit: int = Query(50, ge=1, le=500),
):
    """The schedule's history, newest first."""
    get_schedule(schedule_id)
    return ScheduleRun.objects.filter(schedule_id=schedule_id)[:limit]


@router.post("/schedules/{schedule_id}/run-now", response=responses({201: JobOut}, 404, 409, 422))
def run_schedule_now(request: HttpRequest, schedule_id: int = ScheduleId):
    """Enqueue the schedule's job now; its pending runs stay as they are."""
    schedule = get_schedule(schedule_id)
    fired = run_now([schedule.pk])
    jobs = [f.job_id for f in fired if f.job_id is not None]
    if not jobs:  # e.g. its job type or inputs no longer fit (also kept in its history)
        why = "; ".join(f.error for f in fired if f.error) or "it was deleted meanwhile"
        raise HttpError(409, f"schedule {schedule.name!r} could not run: {why}")
    return Status(201, get_job(jobs[0]))
