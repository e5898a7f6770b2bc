"""``/api/v1/pipelines``: pipelines defined in code or stored as JSON, and their runs.

``POST /pipelines`` checks a JSON definition (the format of ``Pipeline.to_json``) and stores
it, replacing a stored one of the same name; each problem is a 422 error under
``definition``. ``POST /pipelines/{name}/runs`` starts a run; its inputs are checked against
the pipeline's inputs schema (fields under ``inputs.``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.http import HttpRequest
from ninja import Path, Router, Schema, Status
from ninja.errors import HttpError
from pydantic import Field

from jobline.api.errors import FieldErrors, check_json_size, inputs_errors, responses
from jobline.api.schemas import MAX_ID, Body
from jobline.core.pipelines import PipelineSpec
from jobline.models import PipelineDefinition, PipelineRun
from jobline.pipelines import (
    Pipeline,
    PipelineDefinitionError,
    PipelineInputsError,
    UnknownPipeline,
    define,
    get_pipeline,
)
from jobline.pipelines import pipelines as in_code

router = Router(tags=["pipelines"])

Name = Path(..., min_length=1, max_length=200)


class PipelineOut(Schema):
    name: str
    description: str
    source: str = Field(description="`code` (defined in a jobs.py) or `stored` (through the API)")
    definition: dict[str, Any] = Field(description="Steps, their job types, wiring and options.")
    inputs_schema: dict[str, Any] | None = Field(
        description="JSON Schema of a run's inputs; null while its job types are not all defined."
    )
    problems: list[str] = Field(description="Why it cannot run now (its job types changed).")


class PipelineIn(Body):
    name: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=10_000)
    steps: list[dict[str, Any]] = Field(description="As in `definition.steps` of the answers.")


class RunIn(Body):
    inputs: dict[str, Any] = Field(default_factory=dict)


class RunOut(Schema):
    id: int
    pipeline: str
    status: str
    inputs: dict[str, Any]
    outputs: dict[str, Any] | None
    error: str
    steps: list[dict[str, Any]] = Field(description="Each step: status, its jobs, counts.")
    created_at: datetime
    started_at: datetime
    finished_at: datetime | None

    @staticmethod
    def resolve_steps(run: PipelineRun) -> list[dict[str, Any]]:
        return [step.to_json() for step in run.steps]


def describe(spec: PipelineSpec, source: str) -> dict[str, Any]:
    try:  # a stored pipeline whose job types changed since is shown, with its problems
        schema, problems = Pipeline(spec).inputs_schema(), []
    except PipelineDefinitionError as exc:
        schema, problems = None, exc.problems
    return {
        "name": spec.name,
        "description": spec.description,
        "source": source,
        "definition": spec.to_json(),
        "inputs_schema": schema,
        "problems": problems,
    }


def stored_spec(stored: PipelineDefinition) -> PipelineSpec:
    data = stored.definition if isinstance(stored.definition, dict) else {}
    return PipelineSpec.from_json({**data, "name": stored.name, "description": stored.description})


def all_pipelines() -> list[dict[str, Any]]:
    found = [describe(p.spec, "code") for p in in_code]
    found += [describe(stored_spec(p), "stored") for p in PipelineDefinition.objects.all()]
    return sorted(found, key=lambda p: p["name"])


@router.get("/pipelines", response=responses({200: list[PipelineOut]}))
def list_pipelines(request: HttpRequest):
    return all_pipelines()


@router.get("/pipelines/{name}", response=responses({200: PipelineOut}, 404, 422))
def get_pipeline_view(request: HttpRequest, name: str = Name):
    if name in in_code:
        return describe(in_code.get(name).spec, "code")
    stored = PipelineDefinition.objects.filter(name=name).first()
    if stored is None:
        raise HttpError(404, f"pipeline {name!r} not found")
    return describe(stored_spec(stored), "stored")


@router.post("/pipelines", response=responses({201: PipelineOut}, 400, 409, 413, 422))
def define_pipeline(request: HttpRequest, payload: PipelineIn):
    """Check a definition and store it, replacing a stored pipeline of the same name."""
    if payload.name in in_code:
        raise HttpError(409, f"pipeline {payload.name!r} is defined in code")
    check_json_size(payload.steps, "steps")
    try:
        with transaction.atomic():
            stored = define(payload.model_dump())
    except PipelineDefinitionError as exc:
        raise FieldErrors(
            [{"field": "definition", "message": p, "type": "invalid"} for p in exc.problems]
        ) from None
    return Status(201, describe(stored_spec(stored), "stored"))


@router.post("/pipelines/{name}/runs", response=responses({201: RunOut}, 400, 404, 409, 413, 422))
def start_run(request: HttpRequest, payload: RunIn, name: str = Name):
    """Start a run: 201 with it; 409 when the pipeline's job types no longer fit it."""
    check_json_size(payload.inputs, "inputs")
    try:
        found = get_pipeline(name)
        with transaction.atomic():
            run = found.enqueue(payload.inputs)
    except UnknownPipeline:
        raise HttpError(404, f"pipeline {name!r} not found") from None
    except PipelineInputsError as exc:
        raise inputs_errors(exc) from None
    except PipelineDefinitionError as exc:
        raise HttpError(409, str(exc)) from None
    return Status(201, run)


@router.get("/pipeline-runs/{run_id}", response=responses({200: RunOut}, 404, 422))
def get_run(request: HttpRequest, run_id: int = Path(..., ge=1, le=MAX_ID)):
    run = PipelineRun.objects.filter(pk=run_id).first()
    if run is None:
        raise HttpError(404, f"pipeline run {run_id} not found")
    return run
