"""Defining jobs: ``@jobline.job`` functions and ``jobline.Job`` classes.

They register a :class:`DefinedJob`: a job type (``jobline.core.jobtypes``) that can also
enqueue itself (``send.enqueue(...)``, ``send.using(delay=60).enqueue(...)``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

from jobline.core.jobtypes import JobType, registry
from jobline.core.schema import Schema
from jobline.exceptions import JobDefinitionError
from jobline.services import enqueue as enqueuing


class DefinedJob(JobType):
    """A job type defined in code, with shortcuts to enqueue it."""

    def using(self, **options: Any) -> Bound:
        """Options for the next enqueue: ``send.using(queue="mail", delay=60).enqueue(...)``."""
        return Bound(self, options)

    def enqueue(self, **inputs: Any) -> Any:
        return Bound(self, {}).enqueue(**inputs)

    async def aenqueue(self, **inputs: Any) -> Any:
        return await Bound(self, {}).aenqueue(**inputs)

    def enqueue_many(self, inputs_list: Iterable[dict[str, Any]], **options: Any) -> list[Any]:
        return enqueuing.enqueue_many(self, inputs_list, **options)


@dataclass(frozen=True, slots=True)
class Bound:
    """A job type with options chosen for the next enqueue."""

    job_type: JobType
    options: dict[str, Any]

    def enqueue(self, **inputs: Any) -> Any:
        return enqueuing.enqueue(self.job_type, inputs, **self.options)

    async def aenqueue(self, **inputs: Any) -> Any:
        return await enqueuing.aenqueue(self.job_type, inputs, **self.options)


def job(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    **options: Any,
) -> Any:
    """Turn a function (sync or async) into a job type; its parameters are the inputs.

    Options: ``queue``, ``priority``, ``max_attempts``, ``timeout``, ``retry`` (a
    :class:`RetryPolicy`), ``requires`` (capability tags), ``user_triggered``, ``strict``
    (default true: unknown inputs and values of the wrong type are refused, not coerced),
    and flow control: ``limit`` (:class:`jobline.Limit`), ``rate`` (:class:`jobline.Rate`),
    ``unique`` (:class:`jobline.Unique`).
    """
    strict = options.pop("strict", True)

    def wrap(func: Callable[..., Any]) -> JobType:
        type_name = name or f"{func.__module__}.{func.__qualname__}"
        returns = inspect.get_annotations(func, eval_str=True).get("return")
        if returns is type(None):
            returns = None
        return registry.add(
            DefinedJob(
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
    ``timeout``, ``retry``, ``requires``, ``user_triggered``, ``limit``, ``rate`` and
    ``unique`` set the type's options;
    ``strict = False`` lets its inputs drop unknown keys and coerce values, as pydantic does.
    """

    name: ClassVar[str | None] = None
    strict: ClassVar[bool] = True
    job_type: ClassVar[DefinedJob]
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
        "delivered",
        "limit",
        "rate",
        "unique",
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
            DefinedJob(
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
    def using(cls, **options: Any) -> Bound:
        return cls.job_type.using(**options)
