"""Job types and their registry: what a job type is, without how jobs are enqueued.

``@jobline.job`` and ``jobline.Job`` (``jobline.jobtypes``) build these and register them;
the worker, the store's pipeline plans and the services look them up here by name.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from jobline.core.flow import FlowRules, Limit, Rate, Unique
from jobline.core.progress import checked_fraction
from jobline.core.retry import DEFAULT_RETRY, RetryPolicy
from jobline.core.schema import Schema
from jobline.exceptions import JobDefinitionError, UnknownJobType


class Reporter(Protocol):
    """Where a running job's progress and captured log lines go (the worker running it)."""

    def progress(self, job: JobContext, fraction: float, message: str) -> None: ...
    def log(self, job: JobContext, level: str, text: str, created: float) -> None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class JobContext:
    """What a running job may want to know about itself (``jobline.current_job()``), and how
    it tells how far it is (:meth:`progress`)."""

    id: int
    type: str
    attempt: int
    max_attempts: int
    queue: str
    worker_id: str = ""  #: the jobline worker running this attempt
    created_at: datetime | None = None  #: when the job was enqueued (UTC)
    schedule: str | None = None  #: the name of the schedule that fired it, if one did
    reporter: Reporter | None = field(default=None, repr=False, compare=False)

    def progress(self, fraction: float, message: str = "") -> None:
        """Record how far the job is: ``fraction`` from 0 to 1 and a short message.

        Cheap enough for a tight loop: the worker writes at most one value per
        ``JOBLINE_PROGRESS_SECONDS`` per job, always the latest, and the last one when the
        attempt ends. Raises ``ValueError`` for a fraction outside [0, 1]."""
        value = checked_fraction(fraction)
        if self.reporter is not None:
            self.reporter.progress(
                self, value, message if isinstance(message, str) else str(message)
            )


_current: contextvars.ContextVar[JobContext] = contextvars.ContextVar("jobline_current_job")


def current_job() -> JobContext:
    """The context of the job running in this task or thread."""
    try:
        return _current.get()
    except LookupError:
        raise RuntimeError("current_job() called outside a running jobline job") from None


class JobType:
    """A registered kind of job: how to validate its inputs and how to run it."""

    def __init__(
        self,
        *,
        name: str,
        run: Callable[..., Any],
        is_async: bool,
        inputs: Schema,
        outputs: Schema,
        call_with_kwargs: bool,
        queue: str = "default",
        priority: int = 0,
        max_attempts: int = 3,
        timeout: float | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        requires: Iterable[str] = (),
        description: str = "",
        user_triggered: bool = False,
        delivered: Callable[[Any], bool] | None = None,
        limit: Limit | None = None,
        rate: Rate | None = None,
        unique: Unique | None = None,
    ):
        if max_attempts < 1:
            raise JobDefinitionError(f"job {name!r}: max_attempts must be >= 1")
        if timeout is not None and timeout <= 0:
            raise JobDefinitionError(f"job {name!r}: timeout must be > 0 seconds")
        self.name = name
        self.run = run
        self.is_async = is_async
        self.inputs = inputs
        self.outputs = outputs
        self.call_with_kwargs = call_with_kwargs
        self.queue = queue
        self.priority = priority
        self.max_attempts = max_attempts
        self.timeout = timeout
        self.retry = retry
        self.requires = frozenset(requires)
        self.description = description
        self.user_triggered = user_triggered
        self._delivered = delivered
        for value, cls in ((limit, Limit), (rate, Rate), (unique, Unique)):
            if value is not None and not isinstance(value, cls):
                raise JobDefinitionError(f"job {name!r}: expected jobline.{cls.__name__}(...)")
        self.flow = FlowRules(limit, rate, unique)  #: enforced where jobs are claimed
        self.flow.check(name, inputs.json_schema().get("properties"))

    def delivered(self, outputs: Any) -> bool:
        """Whether a succeeded job's outputs say its work went to an executor elsewhere
        (a kafka message the broker acknowledged): its dispatch is ``delivered`` then."""
        return self._delivered is not None and bool(self._delivered(outputs))

    def __repr__(self) -> str:
        return f"<JobType {self.name}>"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Calling a function job calls the function itself, inline."""
        return self.run(*args, **kwargs)

    def invoke(self, inputs: Any) -> Any:
        """Call the job with validated inputs: a coroutine for async jobs, the result otherwise."""
        if self.call_with_kwargs:
            return self.run(**self.inputs.as_kwargs(inputs))
        return self.run(inputs)


class Registry:
    """Job types by name. One process-wide instance, filled as ``jobs.py`` modules import."""

    def __init__(self) -> None:
        self._types: dict[str, JobType] = {}

    def add(self, job_type: JobType) -> JobType:
        existing = self._types.get(job_type.name)
        if existing is not None and existing.run is not job_type.run:
            same_place = getattr(existing.run, "__qualname__", None) == getattr(
                job_type.run, "__qualname__", None
            )
            if not same_place:  # re-importing a module (autoreload) redefines the same job
                raise JobDefinitionError(
                    f"two job types are named {job_type.name!r}; pass name=... to tell them apart"
                )
        self._types[job_type.name] = job_type
        return job_type

    def get(self, name: str | JobType) -> JobType:
        if isinstance(name, JobType):
            return name
        try:
            return self._types[name]
        except KeyError:
            raise UnknownJobType(name, list(self._types)) from None

    def names(self) -> list[str]:
        return sorted(self._types)

    def __contains__(self, name: str) -> bool:
        return name in self._types

    def __iter__(self):
        return iter(list(self._types.values()))


registry = Registry()
