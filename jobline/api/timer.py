"""The timer contract: ``POST /api/v1/timer`` calls a URL after hours, minutes and seconds.

A timer is a delayed job of the built-in ``http`` type, and its time left comes from the
job's ``run_at``. So timers survive restarts, retry like any http job, and show up in the
jobs list. Timer ids are UUIDs, as in the original service: the job's idempotency key is
``timer:<uuid>`` (unique and indexed, so the lookup is one probe), and the call carries the
UUID as its ``Idempotency-Key``. A job id (a number) also finds the timer it belongs to.
"""

from __future__ import annotations

import uuid
from typing import Self

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from ninja import Path, Router, Schema, Status
from ninja.errors import HttpError
from pydantic import Field, field_validator, model_validator

from jobline.api.errors import inputs_errors, responses
from jobline.api.schemas import MAX_DELAY, MAX_ID, Body
from jobline.api.timer_calls import CallStatus, call_state, refused_address
from jobline.core.states import JobStatus
from jobline.dispatch.http import IDEMPOTENCY_HEADER
from jobline.exceptions import InputsError
from jobline.models import Job
from jobline.services.enqueue import enqueue

router = Router(tags=["timer"])

HTTP_TYPE = "http"


KEY_PREFIX = "timer:"


class TimerIn(Body):
    hours: int = Field(0, ge=0, le=MAX_DELAY // 3600, strict=True)
    minutes: int = Field(0, ge=0, le=MAX_DELAY // 60, strict=True)
    seconds: int = Field(0, ge=0, le=MAX_DELAY, strict=True)
    url: str = Field(
        max_length=2000, pattern=r"^https?://[^\s/?#]+\S*$", description="Called then."
    )

    @field_validator("url")
    @classmethod
    def _reachable(cls, url: str) -> str:
        if why := refused_address(url):  # it would only fail when the time comes
            raise ValueError(why)
        return url

    @model_validator(mode="after")
    def _within_cap(self) -> Self:
        if self.delay() > MAX_DELAY:
            raise ValueError(f"hours, minutes and seconds add up to over {MAX_DELAY} seconds")
        return self

    def delay(self) -> int:
        return self.hours * 3600 + self.minutes * 60 + self.seconds


class TimerOut(Schema):
    id: str = Field(description="A UUID.")
    time_left: int = Field(
        ge=0, le=MAX_DELAY, description="Whole seconds until the URL is called; 0 once due."
    )


class TimerState(TimerOut):
    status: CallStatus = Field(
        description="The call: pending (not made yet, or being retried), succeeded or failed."
    )
    error: str | None = Field(description="Why the call (or its last attempt) failed.")
    http_status: int | None = Field(description="The status the URL answered, once it did.")


def time_left(job: Job) -> int:
    if job.status != JobStatus.QUEUED or job.attempts:  # started: a retry's backoff is not "left"
        return 0
    return min(MAX_DELAY, max(0, round((job.run_at - timezone.now()).total_seconds())))


def public_id(job: Job) -> str:
    key = job.idempotency_key or ""
    return key.removeprefix(KEY_PREFIX) if key.startswith(KEY_PREFIX) else str(job.id)


def find(timer: str) -> Job | None:
    """The timer's job, by UUID (or job id); None for anything else."""
    timers = Job.objects.filter(type=HTTP_TYPE)
    if timer.isascii() and timer.isdigit() and 0 < int(timer) <= MAX_ID:
        return timers.filter(pk=int(timer)).first()
    try:
        uid = uuid.UUID(timer)
    except ValueError:
        return None
    return timers.filter(idempotency_key=f"{KEY_PREFIX}{uid}").first()


@router.post("/timer", response=responses({201: TimerOut}, 400, 413, 422))
def create_timer(request: HttpRequest, payload: TimerIn):
    """Call `url` (POST) once `hours`, `minutes` and `seconds` have passed."""
    uid = str(uuid.uuid4())
    inputs = {"url": payload.url, "method": "POST", "headers": {IDEMPOTENCY_HEADER: uid}}
    try:
        with transaction.atomic():
            enqueue(HTTP_TYPE, inputs, delay=payload.delay(), idempotency_key=KEY_PREFIX + uid)
    except InputsError as exc:  # the http type's own checks on the URL
        raise inputs_errors(exc, prefix="") from None
    return Status(201, {"id": uid, "time_left": payload.delay()})


@router.get("/timer/{timer_id}", response=responses({200: TimerState}, 404))
def get_timer(request: HttpRequest, timer_id: str = Path(...)):
    """404 for any id that is not a timer's."""
    job = find(timer_id)
    if job is None:
        raise HttpError(404, "timer not found")
    return {"id": public_id(job), "time_left": time_left(job), **call_state(job)}
