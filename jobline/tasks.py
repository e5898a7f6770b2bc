"""A backend for Django's tasks framework: ``@task`` functions run as jobline jobs.

``TASKS = {"default": {"BACKEND": "jobline.tasks.Backend", "QUEUES": [...], "OPTIONS": {...}}}``
works with ``django.tasks`` (Django 6.0+) and with the ``django-tasks`` backport (Django 5.2).

Each task function is a jobline job type named ``django_task:<module path>`` whose inputs are
``{"args": [...], "kwargs": {...}}``, so its jobs show in the admin, the API and the UI and can
be scheduled like any other. The type is registered when the framework validates the task (at
``@task``) and jobline's app config imports every installed app's ``tasks.py`` when this
backend is configured, so workers know every task. Enqueue writes the job on the caller's
connection: inside ``transaction.atomic()`` it commits or rolls back with the caller's work.

``OPTIONS`` (named as django-tasks-db names its own): ``database``, the alias the jobs live
in (default ``"default"``), and ``max_attempts``, the attempts of tasks that set none
(default 1: the framework runs a task once). ``@task(...)`` also takes jobline's job
options ``max_attempts``, ``timeout``, ``retry``, ``requires`` and ``idempotency_key``
(Django 6.1+ and the backport pass them on); ``task.using(...)`` takes ``max_attempts``,
``timeout`` and ``idempotency_key`` for one enqueue.
"""

from __future__ import annotations

import dataclasses
import inspect
import traceback
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

import pydantic
from django.apps import apps
from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone
from django.utils.module_loading import import_string

from jobline.core.jobtypes import JobType, current_job, registry
from jobline.core.retry import DEFAULT_RETRY, RetryPolicy
from jobline.core.schema import Schema
from jobline.core.states import JobStatus
from jobline.exceptions import Fail

try:
    from django.tasks import TaskContext, TaskResult, TaskResultStatus
    from django.tasks.backends.base import BaseTaskBackend
    from django.tasks.base import Task as BaseTask
    from django.tasks.base import TaskError
    from django.tasks.exceptions import InvalidTask, TaskResultDoesNotExist
    from django.tasks.signals import task_enqueued, task_finished, task_started
    from django.utils.json import normalize_json
except ImportError:  # Django 5.2: the django-tasks backport
    try:
        from django_tasks import TaskContext, TaskResult, TaskResultStatus
        from django_tasks.backends.base import BaseTaskBackend
        from django_tasks.base import Task as BaseTask
        from django_tasks.base import TaskError
        from django_tasks.exceptions import InvalidTaskError as InvalidTask
        from django_tasks.exceptions import TaskResultDoesNotExist
        from django_tasks.signals import task_enqueued, task_finished, task_started
        from django_tasks.utils import normalize_json
    except ImportError as exc:
        raise ImproperlyConfigured(
            "jobline.tasks needs django.tasks (Django 6.0+) or, on Django 5.2, the "
            "django-tasks package: pip install 'jobline[django-tasks]'"
        ) from exc

PREFIX = "django_task:"  #: job types of tasks are named PREFIX + the task's module path

_STATUS = {
    JobStatus.QUEUED: TaskResultStatus.READY,  # also between attempts: "ready to run again"
    JobStatus.RUNNING: TaskResultStatus.RUNNING,
    JobStatus.SUCCEEDED: TaskResultStatus.SUCCESSFUL,
    JobStatus.FAILED: TaskResultStatus.FAILED,
    JobStatus.CANCELLED: TaskResultStatus.FAILED,  # the framework has no cancelled state
}


class TaskCall(pydantic.BaseModel):
    """The inputs of a task's job type: the arguments of one call, as JSON."""

    model_config = pydantic.ConfigDict(extra="forbid")

    args: list[Any] = []
    kwargs: dict[str, Any] = {}


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Task(BaseTask):
    """The framework's Task plus jobline's job options (None: the backend's default)."""

    max_attempts: int | None = None
    timeout: float | None = None  #: seconds per attempt
    retry: RetryPolicy | None = None  #: backoff between attempts
    requires: frozenset[str] = frozenset()  #: worker tags needed (``jobline worker --tag``)
    idempotency_key: str | None = None  #: a second enqueue with this key returns the first

    def __post_init__(self) -> None:
        if isinstance(self.requires, str) or not isinstance(self.requires, Iterable):
            raise InvalidTask("requires must be a collection of tag names.")
        object.__setattr__(self, "requires", frozenset(self.requires))
        BaseTask.__post_init__(self)  # validates; zero-argument super() fails in slots classes

    def using(
        self,
        *,
        priority: int | None = None,
        queue_name: str | None = None,
        run_after: datetime | None = None,
        backend: str | None = None,
        max_attempts: int | None = None,
        timeout: float | None = None,
        idempotency_key: str | None = None,
    ) -> Task:
        """A copy with other options: the framework's, plus jobline's per-enqueue ones.

        ``retry`` and ``requires`` belong to the task's job type, so only ``@task`` sets them.
        """
        changes = {
            "priority": priority,
            "queue_name": queue_name,
            "run_after": run_after,
            "backend": backend,
            "max_attempts": max_attempts,
            "timeout": timeout,
            "idempotency_key": idempotency_key,
        }
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


class Backend(BaseTaskBackend):
    """Runs ``django.tasks`` tasks as jobline jobs; results are read from the job rows."""

    task_class = Task

    supports_defer = True  # run_after becomes the job's run_at
    supports_async_task = True  # coroutines run on the worker's event loop
    supports_get_result = True  # results are job rows, readable from any process
    supports_priority = True  # same range and direction as jobline's: higher runs first

    def __init__(self, alias: str, params: dict[str, Any]) -> None:
        super().__init__(alias, params)
        unknown = set(self.options) - {"database", "max_attempts"}
        if unknown:
            raise ImproperlyConfigured(
                f"TASKS[{alias!r}]: unknown OPTIONS {sorted(unknown)}; "
                "jobline.tasks.Backend takes database and max_attempts"
            )
        self.database: str = self.options.get("database", "default")
        self.max_attempts: int = self.options.get("max_attempts", 1)
        if not isinstance(self.max_attempts, int) or self.max_attempts < 1:
            raise ImproperlyConfigured(f"TASKS[{alias!r}]: max_attempts must be an int >= 1")

    def validate_task(self, task: BaseTask) -> None:
        super().validate_task(task)
        if len(PREFIX + task.module_path) > 200:
            raise InvalidTask("Task module path must be at most 188 characters.")
        if len(task.queue_name) > 100:
            raise InvalidTask("Queue names must be at most 100 characters.")
        max_attempts = getattr(task, "max_attempts", None)
        if max_attempts is not None and (not isinstance(max_attempts, int) or max_attempts < 1):
            raise InvalidTask("max_attempts must be a whole number >= 1.")
        timeout = getattr(task, "timeout", None)
        if timeout is not None and not timeout > 0:
            raise InvalidTask("timeout must be more than 0 seconds.")
        key = getattr(task, "idempotency_key", None)
        if key is not None and not 0 < len(key) <= 200:
            raise InvalidTask("idempotency_key must be 1 to 200 characters.")
        _register(task, self.max_attempts)

    def enqueue(self, task: BaseTask, args: Any, kwargs: Any) -> TaskResult:
        from jobline.services.enqueue import enqueue

        self.validate_task(task)
        if _resolve(task.module_path).func is not task.func:
            raise InvalidTask(
                f"Task function must be importable from its module path ({task.module_path!r})."
            )
        call = {"args": normalize_json(list(args)), "kwargs": normalize_json(dict(kwargs))}
        run_after = task.run_after
        if run_after is not None and timezone.is_naive(run_after):  # allowed when USE_TZ = False
            run_after = timezone.make_aware(run_after)
        job = enqueue(
            PREFIX + task.module_path,
            call,
            using=self.database,
            queue=task.queue_name,
            priority=int(task.priority),
            run_at=run_after,
            max_attempts=getattr(task, "max_attempts", None) or self.max_attempts,
            timeout=getattr(task, "timeout", None),
            idempotency_key=getattr(task, "idempotency_key", None),
        )
        if not job.created:  # the idempotency key matched: this is the first job's result
            return self.get_result(str(job.id))
        result = TaskResult(
            task=task,
            id=str(job.id),
            status=TaskResultStatus.READY,
            enqueued_at=timezone.now(),
            started_at=None,
            last_attempted_at=None,
            finished_at=None,
            args=call["args"],
            kwargs=call["kwargs"],
            backend=self.alias,
            errors=[],
            worker_ids=[],
        )
        task_enqueued.send(type(self), task_result=result)
        return result

    def get_result(self, result_id: str) -> TaskResult:
        from jobline.models import Job

        try:
            job = Job.objects.using(self.database).get(pk=int(result_id))
        except (ValueError, TypeError, Job.DoesNotExist):
            raise TaskResultDoesNotExist(result_id) from None
        if not job.type.startswith(PREFIX):  # a job, but not a task's
            raise TaskResultDoesNotExist(result_id)
        return self._result(job)

    def _result(self, job: Any) -> TaskResult:
        deferred = job.run_at > job.created_at  # the requested run_after, or a retry's time
        task = _restore(
            _resolve(job.type.removeprefix(PREFIX)),
            priority=job.priority,
            queue_name=job.queue,
            run_after=job.run_at if deferred else None,
            backend=self.alias,
            max_attempts=job.max_attempts,
            timeout=job.timeout,
            idempotency_key=job.idempotency_key,
        )
        status = _STATUS[JobStatus(job.status)]
        result = TaskResult(
            task=task,
            id=str(job.id),
            status=status,
            enqueued_at=job.created_at,
            started_at=job.started_at,
            last_attempted_at=job.started_at,
            finished_at=job.finished_at,
            args=job.inputs.get("args", []),
            kwargs=job.inputs.get("kwargs", {}),
            backend=self.alias,
            errors=_errors(job),
            worker_ids=_worker_ids(job.attempts, job.worker_id),
        )
        if status == TaskResultStatus.SUCCESSFUL:
            object.__setattr__(result, "_return_value", job.outputs)
        return result

    def check(self, **kwargs: Any) -> Iterable[checks.CheckMessage]:
        yield from super().check(**kwargs)
        if not apps.is_installed("jobline"):
            yield checks.Error(
                f"TASKS[{self.alias!r}] uses jobline.tasks.Backend, but jobline is not installed",
                hint="Add 'jobline' to INSTALLED_APPS.",
                id="jobline.E001",
            )
        if self.database not in settings.DATABASES:
            yield checks.Error(
                f"TASKS[{self.alias!r}]: OPTIONS database {self.database!r} is not in DATABASES",
                id="jobline.E002",
            )


def _resolve(path: str) -> BaseTask:
    """The task at ``path``: workers and results find tasks by their module path."""
    try:
        found = import_string(path)
    except ImportError as exc:
        raise InvalidTask(f"Cannot import task {path!r}: {exc}") from exc
    if not isinstance(found, BaseTask):
        raise InvalidTask(f"{path!r} is not a task; decorate it with @task at module level.")
    return found


def _restore(task: BaseTask, **changes: Any) -> BaseTask:
    """A copy of ``task`` with ``changes`` to the fields it has, not validated again: a stored
    job stays readable after QUEUES or the task's options change."""
    copy = object.__new__(type(task))
    for field in dataclasses.fields(task):
        object.__setattr__(copy, field.name, changes.get(field.name, getattr(task, field.name)))
    return copy


def _worker_ids(attempts: int, current: str | None) -> list[str]:
    """One entry per attempt (``TaskResult.attempts`` counts them). jobline records only the
    worker of the running attempt; earlier ones are empty strings."""
    if attempts == 0:
        return []
    return [""] * (attempts - 1) + [current or ""]


def _errors(job: Any) -> list[TaskError]:
    if not job.error:
        return []
    return [TaskError(exception_class_path=_exception_path(job), traceback=job.traceback)]


def _exception_path(job: Any) -> str:
    """The class of the exception that failed the last attempt.

    When the task raised, the worker wrote ``"<class>: <message>"`` with the class named as
    tracebacks name it (``jobline.worker.executor.exception_name``). The other failures,
    without a traceback, are cancellations, timeouts, lost workers, and tasks that raised
    ``jobline.Fail`` (or ``jobline.Retry`` on their last attempt).
    """
    if job.traceback:
        name = job.error.split(": ", 1)[0]
        return name if "." in name else f"builtins.{name}"
    if job.status == JobStatus.CANCELLED:
        return "asyncio.exceptions.CancelledError"
    if job.error.startswith("timed out"):
        return "builtins.TimeoutError"
    if job.error.startswith("worker lost"):
        return "jobline.exceptions.JoblineError"
    return "jobline.exceptions.Fail"


# -- job types: one per task function ------------------------------------------------------

_registered: dict[str, Callable[..., Any]] = {}  # job type name -> the function it runs


def _register(task: BaseTask, default_attempts: int) -> None:
    """Register the task's job type once per function (again if a reload redefined it)."""
    name = PREFIX + task.module_path
    if _registered.get(name) is task.func:
        return
    is_async = inspect.iscoroutinefunction(task.func)
    run = (_run_async if is_async else _run_sync)(task.module_path)
    run.__qualname__ = task.func.__qualname__
    registry.add(
        JobType(
            name=name,
            run=run,
            is_async=is_async,
            inputs=Schema.from_type(name, TaskCall),
            outputs=Schema.from_type(name, None),
            call_with_kwargs=False,
            queue=task.queue_name,
            priority=int(task.priority),
            max_attempts=getattr(task, "max_attempts", None) or default_attempts,
            timeout=getattr(task, "timeout", None),
            retry=getattr(task, "retry", None) or DEFAULT_RETRY,
            requires=getattr(task, "requires", ()),
            description=inspect.getdoc(task.func) or "",
        )
    )
    _registered[name] = task.func


class _Attempt:
    """One attempt of a task inside a worker: its context and the framework's signals."""

    def __init__(self, path: str, call: TaskCall):
        self.task = _resolve(path)
        self.job = current_job()
        now = timezone.now()
        # Built from what the worker knows, without reading the row: ``context.task_result``
        # has no enqueued_at or earlier errors until ``refresh()`` / ``arefresh()``.
        self.result = TaskResult(
            task=_restore(self.task, queue_name=self.job.queue, max_attempts=self.job.max_attempts),
            id=str(self.job.id),
            status=TaskResultStatus.RUNNING,
            enqueued_at=None,
            started_at=now,
            last_attempted_at=now,
            finished_at=None,
            args=call.args,
            kwargs=call.kwargs,
            backend=self.task.backend,
            errors=[],
            worker_ids=_worker_ids(self.job.attempt, self.job.worker_id),
        )
        self.args = (TaskContext(task_result=self.result), *call.args)
        if not self.task.takes_context:
            self.args = self.args[1:]

    def succeeded(self, value: Any) -> Any:
        value = normalize_json(value)
        self._finish(TaskResultStatus.SUCCESSFUL)
        object.__setattr__(self.result, "_return_value", value)
        return value

    def failed(self, exc: Exception) -> bool:
        """Record the failure; True if the job ends here (no attempt follows)."""
        if not (isinstance(exc, Fail) or self.job.attempt >= self.job.max_attempts):
            return False
        cls = type(exc)
        self.result.errors.append(
            TaskError(
                exception_class_path=f"{cls.__module__}.{cls.__qualname__}",
                traceback="".join(traceback.format_exception(exc)),
            )
        )
        self._finish(TaskResultStatus.FAILED)
        return True

    def _finish(self, status: TaskResultStatus) -> None:
        object.__setattr__(self.result, "status", status)
        object.__setattr__(self.result, "finished_at", timezone.now())


def _run_sync(path: str) -> Callable[[TaskCall], Any]:
    def run(call: TaskCall) -> Any:
        attempt = _Attempt(path, call)
        task_started.send(Backend, task_result=attempt.result)
        try:
            value = attempt.succeeded(attempt.task.func(*attempt.args, **call.kwargs))
        except Exception as exc:
            if attempt.failed(exc):  # sent inside the handler: receivers may log exc_info
                task_finished.send(Backend, task_result=attempt.result)
            raise
        task_finished.send(Backend, task_result=attempt.result)
        return value

    return run


def _run_async(path: str) -> Callable[[TaskCall], Any]:
    async def run(call: TaskCall) -> Any:
        attempt = _Attempt(path, call)
        await task_started.asend(Backend, task_result=attempt.result)
        try:
            value = attempt.succeeded(await attempt.task.func(*attempt.args, **call.kwargs))
        except Exception as exc:
            if attempt.failed(exc):
                await task_finished.asend(Backend, task_result=attempt.result)
            raise
        await task_finished.asend(Backend, task_result=attempt.result)
        return value

    return run
