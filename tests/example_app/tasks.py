"""django.tasks tasks used by the tests, found by jobline's autodiscovery of tasks.py."""

from __future__ import annotations

import asyncio
import time

import jobline

try:
    from django.tasks import task
except ImportError:  # Django 5.2: the django-tasks backport
    from django_tasks import task

FAST_RETRY = jobline.RetryPolicy(base=0.05, jitter=0)


class TaskBoom(ValueError):
    """Raised by :func:`explode`, to find its class path on the result."""


@task
def add(a: int, b: int) -> int:
    return a + b


@task
async def async_add(a: int, b: int = 1) -> dict[str, int]:
    await asyncio.sleep(0)
    return {"sum": a + b}


@task(queue_name="mail", priority=5)
def send_mail(to: str, subject: str = "") -> list[str]:
    return [to, subject]


@task
def explode(message: str) -> None:
    raise TaskBoom(message)


@task(takes_context=True, max_attempts=3, retry=FAST_RETRY)
def flaky(context, fail_times: int) -> dict[str, object]:
    """Fails its first ``fail_times`` attempts; reports what its context said."""
    if context.attempt <= fail_times:
        raise RuntimeError(f"boom on attempt {context.attempt}")
    result = context.task_result
    return {
        "attempt": context.attempt,
        "id": result.id,
        "status": str(result.status),
        "args": result.args,
        "kwargs": result.kwargs,
        "workers": len(result.worker_ids),
        "worker": result.worker_ids[-1],
    }


@task(takes_context=True)
async def async_context(context, label: str) -> dict[str, object]:
    await context.task_result.arefresh()  # the stored row: enqueued_at is known
    return {
        "label": label,
        "attempt": context.attempt,
        "id": context.task_result.id,
        "enqueued": context.task_result.enqueued_at is not None,
    }


@task(timeout=0.2, max_attempts=1)
async def hang(seconds: float) -> None:
    await asyncio.sleep(seconds)


@task(max_attempts=5)
def give_up() -> None:
    raise jobline.Fail("nothing to do")


@task(requires={"gpu"})
def render() -> str:
    return "rendered"


@task
def started_at() -> float:
    """When it ran: the tests compare the order of runs."""
    return time.time()
