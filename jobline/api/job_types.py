"""``/api/v1/job-types``: the registered job types and their inputs and outputs schemas."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Query, Router, Schema
from ninja.errors import HttpError

from jobline.api.errors import responses
from jobline.core.jobtypes import JobType, registry

router = Router(tags=["job types"])


class JobTypeOut(Schema):
    name: str
    description: str
    inputs_schema: dict[str, Any]  #: JSON Schema the inputs must fit; forms are made from it
    outputs_schema: dict[str, Any]
    user_triggered: bool  #: people may start it from the UI
    queue: str
    priority: int
    max_attempts: int
    timeout: float | None
    requires: list[str]  #: capability tags a worker must have


def describe(job_type: JobType) -> dict[str, Any]:
    return {
        "name": job_type.name,
        "description": job_type.description,
        "inputs_schema": job_type.inputs.json_schema(),
        "outputs_schema": job_type.outputs.json_schema(),
        "user_triggered": job_type.user_triggered,
        "queue": job_type.queue,
        "priority": job_type.priority,
        "max_attempts": job_type.max_attempts,
        "timeout": job_type.timeout,
        "requires": sorted(job_type.requires),
    }


@router.get("/job-types", response=responses({200: list[JobTypeOut]}, 422))
def list_job_types(request: HttpRequest, user_triggered: bool = Query(None)):
    types = sorted(registry, key=lambda t: t.name)
    return [describe(t) for t in types if user_triggered in (None, t.user_triggered)]


@router.get("/job-types/{name}", response=responses({200: JobTypeOut}, 404))
def get_job_type(request: HttpRequest, name: str):
    if name not in registry:
        raise HttpError(404, f"no job type {name!r}")
    return describe(registry.get(name))
