"""Job types: ``@jobline.job`` functions and ``jobline.Job`` classes, and their registry."""

from __future__ import annotations

import contextvars
import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from jobline.core.retry import DEFAULT_RETRY, RetryPolicy
from jobline.core.schema import Schema
from jobline.exceptions import JobDefinitionError, UnknownJobType


@dataclass(frozen=True, slots=True, kw_only=True)
class JobContext:
    """What a running job may want to know about itself (``jobline.current_job()``)."""

    id: int
    type: str
    attempt: int
    max_attempts: int
    queue: str
    worker_id: str = ""  #: the jobline worker running this attempt
    created_at: datetime | None = None  #: when the job was enqueued (UTC)
    schedule: str | None = None  #: the name of the schedule that fired it, if one did


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

    def using(self, **options: Any) -> _Bound:
        """Options for the next enqueue: ``send.using(queue="mail", delay=60).enqueue(...)``."""
        return _Bound(self, options)

    def enqueue(self, **inputs: Any) -> Any:
        return _Bound(self, {}).enqueue(**inputs)

    async def aenqueue(self, **inputs: Any) -> Any:
        return await _Bound(self, {}).aenqueue(**inputs)

    def enqueue_many(self, inputs_list: Iterable[dict[str, Any]], **options: Any) -> list[Any]:
        from jobline.enqueuing import enqueue_many

        return enqueue_many(self, inputs_list, **options)


@dataclass(frozen=True, slots=True)
class _Bound:
    job_type: JobType
    options: dict[str, Any]

    def enqueue(self, **inputs: Any) -> Any:
        from jobline.enqueuing import enqueue

        return enqueue(self.job_type, inputs, **self.options)

    async def aenqueue(self, **inputs: Any) -> Any:
        from jobline.enqueuing import aenqueue

        return await aenqueue(self.job_type, inputs, **self.options)


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


def job(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    **options: Any,
) -> Any:
    """Turn a function (sync or async) into a job type; its parameters are the inputs.

    Options: ``queue``, ``priority``, ``max_attempts``, ``timeout``, ``retry`` (a
    :class:`RetryPolicy`), ``requires`` (capability tags), ``user_triggered``, ``strict``
    (default true: unknown inputs and values of the wrong type are refused, not coerced).
    """
    strict = options.pop("strict", True)

    def wrap(func: Callable[..., Any]) -> JobType:
        type_name = name or f"{func.__module__}.{func.__qualname__}"
        returns = inspect.get_annotations(func, eval_str=True).get("return")
        if returns is type(None):
            returns = None
        return registry.add(
            JobType(
                name=type_name,
                run=func,
                is_async=inspect.iscoroutinefunction(func),
                inputs=Schema.from_signature(type_name, func, strict=strict),
                outputs=Schema.from_type(type_name, returns),
                call_with_kwargs=True,
                description=inspect.getdoc(func) or "",
                **options,
            )
        )

    return wrap(fn) if fn is not None else wrap


class Job:
    """Base class for class-based jobs with nested ``Inputs`` / ``Outputs`` and ``run()``.

    ``self.inputs`` holds the validated inputs; ``run`` returns an ``Outputs`` (or data that
    fits it). Class attributes ``name``, ``queue``, ``priority``, ``max_attempts``,
    ``timeout``, ``retry``, ``requires`` and ``user_triggered`` set the type's options;
    ``strict = False`` lets its inputs drop unknown keys and coerce values, as pydantic does.
    """

    name: ClassVar[str | None] = None
    strict: ClassVar[bool] = True
    job_type: ClassVar[JobType]
    Inputs: ClassVar[Any] = None
    Outputs: ClassVar[Any] = None
    _OPTIONS = (
        "queue",
        "priority",
        "max_attempts",
        "timeout",
        "retry",
        "requires",
        "user_triggered",
    )

    def __init__(self, inputs: Any):
        self.inputs = inputs

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "run" not in cls.__dict__ and not any("run" in b.__dict__ for b in cls.__mro__[1:-2]):
            raise JobDefinitionError(f"{cls.__qualname__} must define run(self)")
        type_name = cls.__dict__.get("name") or f"{cls.__module__}.{cls.__qualname__}"
        options = {k: getattr(cls, k) for k in cls._OPTIONS if hasattr(cls, k)}

        def run(inputs: Any) -> Any:
            return cls(inputs).run()

        run.__qualname__ = cls.__qualname__
        cls.job_type = registry.add(
            JobType(
                name=type_name,
                run=run,
                is_async=inspect.iscoroutinefunction(cls.run),
                inputs=Schema.from_type(type_name, cls.Inputs, strict=cls.strict),
                outputs=Schema.from_type(type_name, cls.Outputs),
                call_with_kwargs=False,
                description=inspect.getdoc(cls) or "",
                **options,
            )
        )

    @classmethod
    def enqueue(cls, **inputs: Any) -> Any:
        return cls.job_type.enqueue(**inputs)

    @classmethod
    async def aenqueue(cls, **inputs: Any) -> Any:
        return await cls.job_type.aenqueue(**inputs)

    @classmethod
    def using(cls, **options: Any) -> _Bound:
        return cls.job_type.using(**options)
