"""Request and response bodies shared by the API's resources."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal, Self

from ninja import Schema
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    model_validator,
)

from jobline.core import input_rules
from jobline.redact import masked_inputs

if TYPE_CHECKING:
    from jobline.models import Job

MAX_DELAY = input_rules.MAX_DELAY
MAX_ID = 2**63 - 1  # ids are 64-bit; larger numbers cannot name a row

ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]")

RowId = Annotated[int, Field(ge=1, le=MAX_ID)]


def _iso_8601(value: Any) -> Any:
    # pydantic would also read numbers (and numeric text) as Unix times; the schema says text.
    if isinstance(value, datetime) or (isinstance(value, str) and ISO_DATE.match(value)):
        return value
    raise ValueError("expected an ISO 8601 datetime with a time zone, e.g. 2030-01-31T09:00:00Z")


def _storable(value: datetime) -> datetime:
    if problem := input_rules.datetime_problem(value):
        raise ValueError(problem)
    return value.astimezone(UTC)  # any offset ISO 8601 allows, stored as PostgreSQL can


#: A timezone-aware datetime, sent as ISO 8601 text (in a query string or a body).
IsoDatetime = Annotated[
    AwareDatetime, Strict(False), BeforeValidator(_iso_8601), AfterValidator(_storable)
]

#: A queue's name (``jobline.core.input_rules.QUEUE_NAME``).
QueueName = Annotated[
    str, Field(min_length=1, max_length=100, pattern=input_rules.QUEUE_NAME.pattern)
]
#: A queue's name, or "" for the job type's queue.
QUEUE_OR_EMPTY = f"^(|{input_rules.QUEUE_NAME.pattern[1:-1]})$"

JobStatusName = Literal["queued", "running", "succeeded", "failed", "cancelled"]
DispatchName = Literal["delivered", "running", "succeeded", "failed"]


class Body(Schema):
    """A request body: unknown fields are errors, and values must have the schema's JSON type
    ("5" is not an integer, 0 not a boolean)."""

    model_config = ConfigDict(extra="forbid", strict=True)


class JobOptions(Body):
    """How to enqueue: each option left out takes the job type's (or template's) default."""

    queue: QueueName | None = None
    priority: int | None = Field(None, ge=-100, le=100, description="Higher runs first.")
    run_at: IsoDatetime | None = Field(None, description="Not before this time.")
    delay: float | None = Field(None, ge=0, le=MAX_DELAY, description="Seconds from now.")
    max_attempts: int | None = Field(None, ge=1, le=1000)
    timeout: float | None = Field(None, gt=0, le=MAX_DELAY, description="Seconds per attempt.")
    idempotency_key: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        description="A second job with the same key is not created: the first is returned.",
    )

    @model_validator(mode="after")
    def _one_start_time(self) -> Self:
        if self.run_at is not None and self.delay is not None:
            raise ValueError("give run_at or delay, not both")
        return self

    def options(self) -> dict[str, Any]:
        return self.model_dump(exclude={"type", "inputs"}, exclude_none=True)


class JobCreate(JobOptions):
    type: str = Field(min_length=1, max_length=200, description="A job type's name.")
    inputs: dict[str, Any] = Field(
        default_factory=dict, description="Validated against the job type's inputs schema."
    )


class JobSummary(Schema):
    id: int
    type: str
    status: JobStatusName
    queue: str
    priority: int
    inputs: Any
    outputs: Any
    error: str
    attempts: int
    max_attempts: int
    timeout: float | None
    requires: list[str]
    idempotency_key: str | None
    run_at: datetime
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    worker_id: str | None
    cancel_requested: bool
    schedule_id: int | None = Field(description="The schedule that fired it.")
    pipeline_run_id: int | None = Field(description="The pipeline run it is a step of.")
    pipeline_step: str | None
    dispatch: DispatchName | None = Field(
        description="A dispatched (kafka) job's executor side: `delivered` once the broker has "
        "the message, then what its executor reported; null for other jobs."
    )
    dispatch_outputs: Any = Field(description="The outputs its executor reported.")
    progress: float | None = Field(
        description="How far the running job says it is, from 0 to 1 "
        "(`jobline.current_job().progress`); null if it never said."
    )
    progress_message: str = Field(description="What it said with its latest progress.")
    log_lines: int = Field(
        description="Lines its latest attempt logged (`GET /api/v1/jobs/{id}/logs`)."
    )
    trace_id: str | None = Field(
        description="The OpenTelemetry trace it runs in (enqueued with tracing configured); "
        "null when it was not traced."
    )

    @staticmethod
    def resolve_inputs(job: Job) -> Any:
        return masked_inputs(job.type, job.inputs)  # secrets masked, as in the UI and logs

    @staticmethod
    def resolve_dispatch(job: Job) -> str | None:
        return job.dispatch or None


class JobOut(JobSummary):
    traceback: str
    waiting: str | None = Field(
        None,
        description="Why a due queued job has not started: its type's limit or rate, or its "
        'queue\'s ("waiting: 2 of 2 running for account_id=42"); null when nothing holds it.',
    )

    @staticmethod
    def resolve_waiting(job: Job) -> str | None:
        from jobline.services import flow  # the models load after this module

        return flow.waiting(job)


class JobPage(Schema):
    items: list[JobSummary]
    next_cursor: int | None = Field(
        description="Pass as `cursor` for the next (older) page; null on the last page."
    )


class JobFilter(Schema):
    """Which jobs: every given criterion must match (values of one criterion are ORed).

    Criteria default to None for "not given", but null is refused: the schema stays
    plain (no ``anyOf`` with null) in query strings and bodies alike."""

    status: list[JobStatusName] = Field(None, max_length=5)  # type: ignore[assignment]
    type: list[Annotated[str, Field(max_length=200)]] = Field(None, max_length=100)  # type: ignore[assignment]
    queue: list[Annotated[str, Field(max_length=100)]] = Field(None, max_length=100)  # type: ignore[assignment]
    schedule: list[RowId] = Field(  # type: ignore[assignment]
        None, max_length=100, description="Fired by these schedules (ids)."
    )
    pipeline_run: list[RowId] = Field(  # type: ignore[assignment]
        None, max_length=100, description="Steps of these pipeline runs (ids)."
    )
    created_after: IsoDatetime = None  # type: ignore[assignment]
    created_before: IsoDatetime = None  # type: ignore[assignment]


class JobQuery(JobFilter):
    cursor: int = Field(  # type: ignore[assignment]
        None, ge=1, le=MAX_ID, description="`next_cursor` of the previous page."
    )
    limit: int = Field(50, ge=1, le=500)


class JobSelection(JobFilter, Body):
    """Bulk actions: the jobs matching a filter, and/or listed by id."""

    model_config = Body.model_config
    ids: list[RowId] = Field(None, max_length=1000)  # type: ignore[assignment]

    @model_validator(mode="after")
    def _not_everything(self) -> Self:
        if not self.model_dump(exclude_unset=True):
            raise ValueError("give at least one criterion (e.g. status) or ids")
        return self


class JobLogQuery(Schema):
    attempt: int = Field(  # type: ignore[assignment]
        None, ge=1, le=1_000_000, description="Which attempt (default: the latest that logged)."
    )
    after: int = Field(
        0, ge=0, le=2**31 - 1, description="Only lines numbered above this (`next_after`)."
    )
    limit: int = Field(1000, ge=1, le=5000)


class LogLineOut(Schema):
    attempt: int
    seq: int = Field(description="The line's number in its attempt, from 1.")
    level: str = Field(description="`INFO`, `WARNING`, ...; `PRINT` for a captured print.")
    time: datetime
    text: str = Field(description="As logged, with secrets masked.")


class LogLimits(Schema):
    max_lines: int
    max_bytes: int


class JobLogOut(Schema):
    job_id: int
    status: JobStatusName
    attempt: int | None = Field(description="The attempt of these lines; null if none logged.")
    attempts: list[int] = Field(description="The attempts that logged lines.")
    lines: list[LogLineOut]
    dropped: int = Field(
        description="Lines of this attempt dropped before the first one stored: an attempt's "
        "log keeps its last `limits.max_lines` lines and `limits.max_bytes` bytes."
    )
    truncated: bool = Field(description="Whether any were dropped.")
    next_after: int = Field(description="Pass as `after` for newer lines (follow a running job).")
    more: bool = Field(description="More lines follow than `limit` allowed.")
    limits: LogLimits


class Count(Schema):
    count: int = Field(description="How many jobs the action applied to.")


class Report(Body):
    """An external executor's progress (`running`, dispatched jobs only) or result."""

    status: Literal["running", "succeeded", "failed"]
    outputs: Any = None
    error: str = Field("", max_length=10_000)
