"""Run one attempt of one job and turn how it ended into a :class:`Completion`."""

from __future__ import annotations

import asyncio
import contextvars
import json
import random
import traceback
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

from jobline import tracing
from jobline.core import input_rules
from jobline.core.jobtypes import JobContext, JobType, Reporter, _current
from jobline.core.retry import DEFAULT_RETRY
from jobline.core.states import JobStatus, Outcome, after_attempt
from jobline.core.values import ClaimedJob, Completion
from jobline.exceptions import Fail, Retry
from jobline.redact import masked_text, storable

SyncCall = Callable[[Callable[..., Any], Any], Any]


def plain_sync_call(fn: Callable[..., Any], arg: Any) -> Any:
    return fn(arg)


async def run_attempt(
    job: ClaimedJob,
    job_type: JobType,
    *,
    threads: Executor,
    sync_call: SyncCall = plain_sync_call,
    worker_id: str = "",
    reporter: Reporter | None = None,
) -> Completion:
    """Run the job once, in its trace. Raises ``CancelledError`` when the worker cancels it."""
    with tracing.run_span(job, worker_id) as span:
        done = await _attempt(job, job_type, threads, sync_call, worker_id, reporter, span)
        span.finished(done)
        return done


async def _attempt(
    job: ClaimedJob,
    job_type: JobType,
    threads: Executor,
    sync_call: SyncCall,
    worker_id: str,
    reporter: Reporter | None,
    span: tracing.Running,
) -> Completion:
    token = _current.set(
        JobContext(
            id=job.id,
            type=job.type,
            attempt=job.attempt,
            max_attempts=job.max_attempts,
            queue=job.queue,
            worker_id=worker_id,
            created_at=job.created_at,
            schedule=job.schedule,
            reporter=reporter,
        )
    )
    try:
        inputs = job_type.inputs.validate(job.inputs)
        if job_type.is_async:
            async with asyncio.timeout(job.timeout):
                result = await job_type.invoke(inputs)
        else:
            call = contextvars.copy_context().run
            future = asyncio.get_running_loop().run_in_executor(
                threads, call, sync_call, job_type.invoke, inputs
            )
            # A thread cannot be stopped: on timeout its result is discarded.
            async with asyncio.timeout(job.timeout):
                result = await future
        data = None if result is None else job_type.outputs.to_json(result)
        outputs = None if data is None else json.dumps(data)
        if outputs is not None and "\\u0000" in outputs:  # no database stores NUL
            _refuse_nul(data)
        return Completion(
            id=job.id,
            status=JobStatus.SUCCEEDED,
            outputs=outputs,
            pipeline_run_id=job.pipeline_run_id,
            dispatch="delivered" if job_type.delivered(data) else None,
        )
    except TimeoutError:
        return failed(job, job_type, Outcome.TIMEOUT, f"timed out after {job.timeout} s", "")
    except Retry as exc:
        return failed(job, job_type, Outcome.RETRY, str(exc), "", delay=exc.delay)
    except Fail as exc:
        return failed(job, job_type, Outcome.FAIL, str(exc), "")
    except Exception as exc:
        span.failed(exc)
        return failed(
            job, job_type, Outcome.ERROR, f"{exception_name(exc)}: {exc}", traceback.format_exc()
        )
    finally:
        _current.reset(token)


def _refuse_nul(outputs: Any) -> None:
    where = input_rules.nul_path(outputs)
    if where is not None:  # else an escaped backslash before "u0000": a real value
        field = f"outputs.{where}" if where else "outputs"
        raise ValueError(f"{field}: {input_rules.NUL_MESSAGE}: no database stores them")


def exception_name(exc: BaseException) -> str:
    """The exception's class as tracebacks name it: with its module unless it is built in.

    The django.tasks backend reads the class path back from ``error``.
    """
    cls, module = type(exc), type(exc).__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


def failed(
    job: ClaimedJob,
    job_type: JobType | None,
    outcome: Outcome,
    error: str,
    tb: str,
    *,
    delay: float | None = None,
) -> Completion:
    """The completion for an attempt that did not succeed: retried or finished by policy."""
    transition = after_attempt(
        outcome,
        attempt=job.attempt,
        max_attempts=job.max_attempts,
        policy=job_type.retry if job_type else DEFAULT_RETRY,
        rand=random.random(),
        requested_delay=delay,
    )
    return Completion(
        id=job.id,
        status=transition.status,
        error=storable(masked_text(error)),  # shown in the UI and API: no URL passwords
        traceback=storable(masked_text(tb)),
        retry_in=transition.retry_in or 0.0,
        pipeline_run_id=job.pipeline_run_id,
    )
