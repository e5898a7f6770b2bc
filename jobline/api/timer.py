"""The timer contract: ``POST /api/v1/timer`` calls a URL after hours, minutes and seconds.

A timer is a delayed job of the built-in ``http`` type: its id is the job's id, and its time
left comes from the job's ``run_at``. So timers survive restarts, retry like any http job, and
show up in the jobs list.
"""

from __future__ import annotations

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from ninja import Path, Router, Schema, Status
from ninja.errors import HttpError
from pydantic import Field, field_validator

from jobline.api.errors import inputs_errors, responses
from jobline.api.schemas import MAX_DELAY, MAX_ID, Body
from jobline.api.timer_calls import CallStatus, call_state, refused_address
from jobline.core.states import JobStatus
from jobline.enqueuing import enqueue
from jobline.exceptions import InputsError
from jobline.models import Job

router = Router(tags=["timer"])

HTTP_TYPE = "http"


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


class TimerOut(Schema):
    id: int
    time_left: int = Field(description="Whole seconds until the URL is called; 0 once due.")


class TimerState(TimerOut):
    status: CallStatus = Field(
        description="The call: pending (not made yet, or being retried), succeeded or failed."
    )
    error: str | None = Field(description="Why the call (or its last attempt) failed.")
    http_status: int | None = Field(description="The status the URL answered, once it did.")


def time_left(job: Job) -> int:
    if job.status != JobStatus.QUEUED or job.attempts:  # started: a retry's backoff is not "left"
        return 0
    return max(0, round((job.run_at - timezone.now()).total_seconds()))


@router.post("/timer", response=responses({201: TimerOut}, 400, 413, 422))
def create_timer(request: HttpRequest, payload: TimerIn):
    """Call `url` (POST) once `hours`, `minutes` and `seconds` have passed."""
    delay = payload.hours * 3600 + payload.minutes * 60 + payload.seconds
    try:
        with transaction.atomic():
            job = enqueue(HTTP_TYPE, {"url": payload.url, "method": "POST"}, delay=delay)
    except InputsError as exc:  # the http type's own checks on the URL
        raise inputs_errors(exc, prefix="") from None
    return Status(201, {"id": job.id, "time_left": delay})


@router.get("/timer/{timer_id}", response=responses({200: TimerState}, 404, 422))
def get_timer(request: HttpRequest, timer_id: int = Path(..., ge=1, le=MAX_ID)):
    job = Job.objects.filter(pk=timer_id, type=HTTP_TYPE).first()
    if job is None:
        raise HttpError(404, f"timer {timer_id} not found")
    return {"id": job.id, "time_left": time_left(job), **call_state(job)}
