"""Pipelines: DAGs of jobs whose outputs feed the next steps.

Define one in a ``jobs.py`` with :func:`pipeline` (or store its JSON in the database with
``jobline.pipelines.define``), then ``ingest.enqueue({...})`` starts a run. The rules
(wiring, fan-out, fan-in, failure) live in :mod:`jobline.core.pipelines`; runs advance in
the worker's completion transaction (:mod:`jobline.core.pipelines.plan`, executed by the
store); runs are started, cancelled and resumed by :mod:`jobline.services`.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from asgiref.sync import sync_to_async
from django.db import DEFAULT_DB_ALIAS

from jobline.core.jobtypes import JobType, Registry
from jobline.core.jobtypes import registry as job_types
from jobline.core.pipelines import (
    OnFailure,
    PipelineDefinitionError,
    PipelineSpec,
    RunStatus,
    Step,
    StepInputError,
    StepStatus,
    TypeInfo,
    expand,
)
from jobline.exceptions import InputsError, JoblineError, PipelineRunError, UnknownJobType
from jobline.models import PipelineDefinition, PipelineRun
from jobline.services import pipelines as runs

if TYPE_CHECKING:
    import jsonschema


class UnknownPipeline(JoblineError, LookupError):
    """No pipeline has this name."""

    def __init__(self, name: str, known: list[str]):
        self.name = name
        super().__init__(
            f"unknown pipeline {name!r}; known pipelines: {', '.join(sorted(known)) or '(none)'}"
        )


class PipelineInputsError(InputsError):
    """A pipeline's inputs do not fit; ``errors`` lists each failing field."""

    def __init__(self, pipeline: str, errors: list[dict[str, Any]]):
        super().__init__(pipeline, errors)
        fields = "; ".join(f"{e['field'] or '(root)'}: {e['message']}" for e in errors)
        self.args = (f"invalid inputs for pipeline {pipeline!r}: {fields}",)


def type_info(job_type: JobType) -> TypeInfo:
    return TypeInfo(
        inputs=job_type.inputs.json_schema(),
        outputs=job_type.outputs.json_schema(),
        queue=job_type.queue,
        priority=job_type.priority,
        max_attempts=job_type.max_attempts,
        timeout=job_type.timeout,
        requires=tuple(sorted(job_type.requires)),
    )


class Pipeline:
    """A pipeline checked against its job types, ready to be enqueued.

    The check runs when it is defined if its job types are all registered by then, else on
    first use (a pipeline may name job types of apps whose ``jobs.py`` load later).
    """

    def __init__(self, spec: PipelineSpec, *, types: Registry = job_types):
        self.spec = spec
        self._types = types
        self._resolved: PipelineSpec | None = None
        self._inputs_schema: dict[str, Any] = {}
        if all(s.job_type in types for s in spec.steps):
            self.check()

    def __repr__(self) -> str:
        return f"<Pipeline {self.name}>"

    @property
    def name(self) -> str:
        return self.spec.name

    def check(self) -> PipelineSpec:
        """Check the steps against their job types; returns the spec with options filled in."""
        if self._resolved is None:
            infos: dict[str, TypeInfo] = {}
            for s in self.spec.steps:
                try:
                    infos[s.job_type] = type_info(self._types.get(s.job_type))
                except UnknownJobType:
                    pass  # reported by check() with the step's name
            self.spec.check(infos)
            self._inputs_schema = self.spec.inputs_schema(infos)
            self._resolved = self.spec.resolve(infos)
        return self._resolved

    def inputs_schema(self) -> dict[str, Any]:
        """JSON Schema of the inputs, derived from the steps that read them (for forms)."""
        self.check()
        return self._inputs_schema

    def to_json(self) -> dict[str, Any]:
        return self.spec.to_json()

    @classmethod
    def from_json(cls, data: Any) -> Pipeline:
        """A pipeline from its JSON definition; raises PipelineDefinitionError listing problems."""
        found = cls(PipelineSpec.from_json(data))
        found.check()
        return found

    def validate_inputs(self, inputs: Any) -> None:
        """Raise :class:`PipelineInputsError` unless the inputs fit and the first steps start."""
        spec = self.check()
        # jsonschema and RE2 load here, not with the module: the admin imports this package
        # in every process, workers too, and they never check a run's inputs
        from jobline.core import safe_schema

        validator = safe_schema.validator(self._inputs_schema)
        errors = [
            {
                "field": _path(e),
                "message": e.message,
                "type": e.validator,
            }
            for e in sorted(validator.iter_errors(inputs), key=lambda e: list(e.absolute_path))
        ]
        for root in [] if errors else spec.roots:  # build the first jobs as the run will
            errors += _root_errors(spec, root, inputs, self._types)
        if errors:
            raise PipelineInputsError(self.name, errors)

    def enqueue(self, inputs: Any = None, *, using: str | None = None) -> PipelineRun:
        """Start a run; it and its first jobs are written in the caller's transaction."""
        return runs.enqueue(self, inputs, using=using)

    async def aenqueue(self, inputs: Any = None, *, using: str | None = None) -> PipelineRun:
        return await sync_to_async(self.enqueue)(inputs, using=using)


def _path(error: jsonschema.ValidationError) -> str:
    path = [str(p) for p in error.absolute_path]
    if error.validator == "required":  # name the missing input, so a form shows it by its field
        missing = [n for n in error.validator_value if error.message.startswith(f"{n!r} is")]
        path += missing[:1]
    return ".".join(path)


def _root_errors(
    spec: PipelineSpec, root: str, inputs: Any, types: Registry
) -> list[dict[str, Any]]:
    step = spec.step(root)
    try:
        for job_inputs in expand(spec, root, inputs, {}):
            types.get(step.job_type).inputs.validate(job_inputs)
    except StepInputError as exc:
        field = spec.input_field(root, step.fan_out or "") or ""
        return [{"field": field, "message": f"step {root!r}: {exc}", "type": "fan_out"}]
    except InputsError as exc:
        return [
            {
                **e,
                "field": spec.input_field(root, e["field"]) or e["field"],
                "message": f"step {root!r}: {e['message']}",
            }
            for e in exc.errors
        ]
    return []


class PipelineRegistry:
    """Pipelines defined in code, by name (stored ones are ``PipelineDefinition`` rows)."""

    def __init__(self) -> None:
        self._pipelines: dict[str, tuple[Pipeline, str]] = {}

    def add(self, found: Pipeline, module: str = "") -> Pipeline:
        existing = self._pipelines.get(found.name)
        if existing is not None and existing[1] != module:
            raise PipelineDefinitionError(
                found.name, [f"already defined in {existing[1] or 'another module'}"]
            )
        self._pipelines[found.name] = (found, module)
        return found

    def get(self, name: str) -> Pipeline:
        try:
            return self._pipelines[name][0]
        except KeyError:
            raise UnknownPipeline(name, list(self._pipelines)) from None

    def names(self) -> list[str]:
        return sorted(self._pipelines)

    def __contains__(self, name: str) -> bool:
        return name in self._pipelines

    def __iter__(self) -> Iterator[Pipeline]:
        return iter([p for p, _ in self._pipelines.values()])


#: pipelines defined in code (stored ones are ``PipelineDefinition`` rows)
pipelines = PipelineRegistry()


def pipeline(name: str, steps: Iterable[Step], *, description: str = "") -> Pipeline:
    """Define and register a pipeline: ``jobline.pipeline("ingest", steps=[jobline.Step(...)])``.

    Raises :class:`PipelineDefinitionError` naming each step and field that is wrong.
    """
    spec = PipelineSpec(name=name, steps=tuple(steps), description=description)
    caller = sys._getframe(1).f_globals.get("__name__", "")  # two modules, one name: refused
    return pipelines.add(Pipeline(spec), caller)


def get_pipeline(name: str, *, using: str | None = None) -> Pipeline:
    """A pipeline by name: defined in code, else stored in the database."""
    if name in pipelines:
        return pipelines.get(name)
    found = PipelineDefinition.objects.using(using or DEFAULT_DB_ALIAS).filter(name=name).first()
    if found is None:
        raise UnknownPipeline(name, pipelines.names())
    return stored(found)


def stored(definition: PipelineDefinition) -> Pipeline:
    """A stored definition, checked; raises PipelineDefinitionError if its job types changed."""
    data = definition.definition if isinstance(definition.definition, dict) else {}
    return Pipeline.from_json(
        {**data, "name": definition.name, "description": definition.description}
    )


def define(data: Any, *, using: str | None = None) -> PipelineDefinition:
    """Check a JSON definition and store it (replacing one of the same name)."""
    found = Pipeline.from_json(data)
    if found.name in pipelines:
        raise PipelineDefinitionError(found.name, ["a pipeline of this name is defined in code"])
    row, _ = PipelineDefinition.objects.using(using or DEFAULT_DB_ALIAS).update_or_create(
        name=found.name,
        defaults={"definition": found.to_json(), "description": found.spec.description},
    )
    return row


__all__ = [
    "OnFailure",
    "Pipeline",
    "PipelineDefinitionError",
    "PipelineInputsError",
    "PipelineRunError",
    "PipelineSpec",
    "RunStatus",
    "Step",
    "StepStatus",
    "UnknownPipeline",
    "define",
    "get_pipeline",
    "pipeline",
    "pipelines",
    "stored",
]
