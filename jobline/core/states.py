"""Job states and the outcome of one attempt, decided without I/O."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from jobline.core.retry import RetryPolicy


class JobStatus(enum.StrEnum):
    QUEUED = "queued"  #: waiting for a worker (possibly until ``run_at``)
    RUNNING = "running"  #: claimed by a worker that holds a live lease
    SUCCEEDED = "succeeded"  #: finished; ``outputs`` holds the result
    FAILED = "failed"  #: out of attempts; ``error`` and ``traceback`` say why
    CANCELLED = "cancelled"  #: terminated before it could finish


FINISHED = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})


class Outcome(enum.StrEnum):
    """How one attempt ended, as seen by the worker."""

    SUCCEEDED = "succeeded"
    ERROR = "error"  #: the job raised; retried while attempts remain
    TIMEOUT = "timeout"  #: ran past its timeout; retried while attempts remain
    RETRY = "retry"  #: the job asked to be retried (``jobline.Retry``)
    FAIL = "fail"  #: the job gave up (``jobline.Fail``): failed without further attempts
    CANCELLED = "cancelled"  #: terminated on request
    LOST = "lost"  #: the worker that ran it stopped heartbeating


@dataclass(frozen=True, slots=True, kw_only=True)
class Transition:
    """Where a job goes after an attempt: its next status and, if queued again, when."""

    status: JobStatus
    retry_in: float | None = None  #: seconds until the next attempt when requeued


def after_attempt(
    outcome: Outcome,
    *,
    attempt: int,
    max_attempts: int,
    policy: RetryPolicy,
    rand: float,
    requested_delay: float | None = None,
) -> Transition:
    """Decide the job's next status once attempt number ``attempt`` (1-based) has ended.

    ``rand`` is a number in [0, 1) used for jitter, passed in so the decision is repeatable.
    """
    if outcome is Outcome.SUCCEEDED:
        return Transition(status=JobStatus.SUCCEEDED)
    if outcome is Outcome.CANCELLED:
        return Transition(status=JobStatus.CANCELLED)
    if outcome is Outcome.FAIL or attempt >= max_attempts:
        return Transition(status=JobStatus.FAILED)
    if requested_delay is not None:
        return Transition(status=JobStatus.QUEUED, retry_in=max(0.0, requested_delay))
    return Transition(status=JobStatus.QUEUED, retry_in=policy.delay(attempt, rand))


def after_lost(*, attempt: int, max_attempts: int, cancel_requested: bool) -> JobStatus:
    """Where a job goes when its worker's lease lapsed while attempt ``attempt`` ran.

    The lost attempt counts. A job asked to terminate is cancelled; one out of attempts is
    failed; any other is queued again at once (the worker vanished, the job did not fail).
    """
    if cancel_requested:
        return JobStatus.CANCELLED
    if attempt >= max_attempts:
        return JobStatus.FAILED
    return JobStatus.QUEUED
