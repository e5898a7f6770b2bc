"""``/api/v1/templates``: presets to start jobs from (CRUD), and ``run`` with input overrides."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from ninja import Path, Query, Router, Schema, Status
from ninja.errors import HttpError
from pydantic import Field

from jobline.api.errors import check_json_size, inputs_errors, model_errors, responses
from jobline.api.jobs import get_job
from jobline.api.schemas import MAX_DELAY, MAX_ID, QUEUE_OR_EMPTY, Body, JobOptions, JobOut
from jobline.core.jobtypes import registry
from jobline.exceptions import InputsError, UnknownJobType
from jobline.models import Template
from jobline.redact import masked_inputs, unmasked
from jobline.services import templates
from jobline.services.templates import TemplateDisabled

router = Router(tags=["templates"])

TemplateId = Path(..., ge=1, le=MAX_ID)
NAME = r"^[-a-zA-Z0-9_]+$"


class TemplateIn(Body):
    name: str = Field(min_length=1, max_length=100, pattern=NAME)
    label: str = Field("", max_length=200)
    description: str = Field("", max_length=10_000)
    job_type: str = Field(min_length=1, max_length=200)
    inputs: dict[str, Any] = Field(default_factory=dict, description="Default inputs.")
    inputs_schema: dict[str, Any] | None = Field(
        None, description="A JSON Schema the merged inputs must also fit."
    )
    user_triggered: bool = True
    enabled: bool = True
    queue: str = Field(
        "", max_length=100, pattern=QUEUE_OR_EMPTY, description="Empty: the job type's queue."
    )
    priority: int | None = Field(None, ge=-100, le=100)
    delay: float | None = Field(None, ge=0, le=MAX_DELAY, description="Seconds before it runs.")
    schedule_id: int | None = Field(
        None, ge=1, le=MAX_ID, description="A schedule that starts its jobs on a clock."
    )


class TemplatePatch(Body):
    """Only the fields sent change; null clears inputs_schema, priority and delay."""

    # Non-nullable fields default to None only to tell "not sent"; an explicit null is refused.
    name: str = Field(None, min_length=1, max_length=100, pattern=NAME)
    label: str = Field(None, max_length=200)
    description: str = Field(None, max_length=10_000)
    job_type: str = Field(None, min_length=1, max_length=200)
    inputs: dict[str, Any] = None  # type: ignore[assignment]
    inputs_schema: dict[str, Any] | None = None
    user_triggered: bool = None  # type: ignore[assignment]
    enabled: bool = None  # type: ignore[assignment]
    queue: str = Field(None, max_length=100, pattern=QUEUE_OR_EMPTY)
    priority: int | None = Field(None, ge=-100, le=100)
    delay: float | None = Field(None, ge=0, le=MAX_DELAY)
    schedule_id: int | None = Field(None, ge=1, le=MAX_ID)


class TemplateOut(Schema):
    id: int
    name: str
    label: str
    description: str
    job_type: str
    inputs: dict[str, Any]
    inputs_schema: dict[str, Any] | None
    form_schema: dict[str, Any] | None = Field(
        description="What a form for it shows: inputs_schema, else the job type's inputs schema."
    )
    user_triggered: bool
    enabled: bool
    queue: str
    priority: int | None
    delay: float | None
    schedule_id: int | None
    created_at: datetime
    updated_at: datetime

    @staticmethod
    def resolve_inputs(template: Template) -> Any:
        return masked_inputs(template.job_type, template.inputs, template.inputs_schema)

    @staticmethod
    def resolve_form_schema(template: Template) -> dict[str, Any] | None:
        if template.inputs_schema is not None:
            return template.inputs_schema
        if template.job_type in registry:
            return registry.get(template.job_type).inputs.json_schema()
        return None


class TemplateRun(JobOptions):
    inputs: dict[str, Any] = Field(
        default_factory=dict, description="Replace the template's inputs of the same names."
    )


def get_template(template_id: int) -> Template:
    template = Template.objects.filter(pk=template_id).first()
    if template is None:
        raise HttpError(404, f"template {template_id} not found")
    return template


def _check_defaults(template: Template) -> None:
    """422 naming each default input that would fail its jobs (``inputs.seconds``); the
    admin shows the same errors under its one inputs box (``Template.clean``)."""
    if errors := template.default_input_errors():
        raise inputs_errors(InputsError(template.job_type, errors))


def _save(template: Template) -> Template:
    """Validate as the admin does (422 naming fields), then save; 409 on a taken name."""
    _check_defaults(template)
    try:
        template.full_clean()
    except ValidationError as exc:
        raise model_errors(exc, {"schedule": "schedule_id"}) from None
    try:
        with transaction.atomic():
            template.save()
    except IntegrityError:  # a concurrent create took the name after the check
        raise HttpError(409, f"a template named {template.name!r} exists") from None
    return template


@router.get("/templates", response=responses({200: list[TemplateOut]}, 422))
def list_templates(
    request: HttpRequest,
    user_triggered: bool = Query(None),
    enabled: bool = Query(None),
    job_type: str = Query(None, max_length=200),
):
    templates = Template.objects.all()
    for field, value in (
        ("user_triggered", user_triggered),
        ("enabled", enabled),
        ("job_type", job_type),
    ):
        if value is not None:
            templates = templates.filter(**{field: value})
    return templates


@router.post("/templates", response=responses({201: TemplateOut}, 400, 409, 413, 422))
def create_template(request: HttpRequest, payload: TemplateIn):
    check_json_size(payload.inputs, "inputs")
    return Status(201, _save(Template(**payload.model_dump())))


@router.get("/templates/{template_id}", response=responses({200: TemplateOut}, 404, 422))
def get_template_view(request: HttpRequest, template_id: int = TemplateId):
    return get_template(template_id)


@router.patch(
    "/templates/{template_id}", response=responses({200: TemplateOut}, 400, 404, 409, 413, 422)
)
def update_template(request: HttpRequest, payload: TemplatePatch, template_id: int = TemplateId):
    template = get_template(template_id)
    changes = payload.model_dump(exclude_unset=True)
    check_json_size(changes.get("inputs"), "inputs")
    if changes.get("inputs") is not None:  # GET shows secrets masked: unchanged masks keep them
        changes["inputs"] = unmasked(
            template.job_type, changes["inputs"], template.inputs, template.inputs_schema
        )
    for field, value in changes.items():
        setattr(template, field, value)
    return _save(template)


@router.delete("/templates/{template_id}", response=responses({204: None}, 404, 422))
def delete_template(request: HttpRequest, template_id: int = TemplateId):
    get_template(template_id).delete()
    return Status(204, None)


@router.post(
    "/templates/{template_id}/run",
    response=responses({201: JobOut, 200: JobOut}, 400, 404, 409, 413, 422),
)
def run_template(request: HttpRequest, payload: TemplateRun, template_id: int = TemplateId):
    """Start a job: the template's inputs with `inputs` on top, its options unless given.
    409 when the template is disabled or its job type is not defined."""
    template = get_template(template_id)
    check_json_size(payload.inputs, "inputs")
    try:
        with transaction.atomic():
            job = templates.start(template, payload.inputs, **payload.options())
            return Status(201 if job.created else 200, get_job(job.id))
    except (TemplateDisabled, UnknownJobType) as exc:
        raise HttpError(409, f"template {template.name!r}: {exc}") from None
