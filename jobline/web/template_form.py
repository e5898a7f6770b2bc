"""New and edit template pages: the job type picked from the types defined here, default
inputs in a form generated from its JSON Schema, and the template's options.

The form posts JSON like the job form (``form.js``): ``{"type", "inputs", "settings": {...}}``.
Defaults are checked as the API and the admin check them (``Template.default_input_errors``):
errors come back by input (``seconds``) or by option (``settings.name``).
"""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse

from jobline.core.jobtypes import registry
from jobline.models import Template
from jobline.redact import masked_inputs, unmasked
from jobline.web.base import action, flash, page, render
from jobline.web.create import type_info

#: The template's own fields the form edits besides its job type and inputs.
FIELDS = ("name", "label", "description", "queue", "priority", "delay")
FLAGS = ("user_triggered", "enabled")


def _optional(schema: dict[str, Any]) -> dict[str, Any]:
    """Defaults may leave inputs for each run to give: nothing at the top level is required."""
    return {k: v for k, v in schema.items() if k != "required"}


def _form(request: HttpRequest, template: Template, job_type: str) -> HttpResponse:
    jt = registry.get(job_type) if job_type in registry else None
    same_type = template.job_type == job_type
    schema = template.inputs_schema if same_type and template.inputs_schema else None
    if schema is None and jt is not None:
        schema = jt.inputs.json_schema()
    context = {
        "template": template,
        "types": [type_info(t) for t in sorted(registry, key=lambda t: t.name)],
        "job_type_name": job_type,
        "job_type": type_info(jt),
        "schema": _optional(schema or {}),
        # Secrets masked; a mask sent back unchanged keeps the stored secret (save_template).
        "initial": masked_inputs(job_type, template.inputs, template.inputs_schema)
        if same_type
        else {},
    }
    return render(request, "jobline/template_form.html", context)


@page
def template_new(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        return save_template(request, None)
    job_type = request.GET.get("type", "")
    job_type = job_type if job_type in registry else ""
    return _form(request, Template(job_type=job_type), job_type)


@page
def template_edit(request: HttpRequest, pk: int) -> HttpResponse:
    template = get_object_or_404(Template, pk=pk)
    if request.method == "POST":
        return save_template(request, template)
    job_type = request.GET.get("type", "")
    return _form(request, template, job_type if job_type in registry else template.job_type)


def _errors(errors: list[dict[str, Any]], status: int = 422) -> JsonResponse:
    return JsonResponse(
        {"errors": [{"field": e["field"], "message": e["message"]} for e in errors]},
        status=status,
    )


def _apply(template: Template, values: dict[str, Any]) -> None:
    for name in FIELDS:
        value = values.get(name)
        if name in ("priority", "delay"):
            setattr(template, name, value)  # None: the job type's
        else:
            setattr(template, name, value if isinstance(value, str) else "")
    for name in FLAGS:
        setattr(template, name, bool(values.get(name)))


@action
def save_template(request: HttpRequest, template: Template | None) -> HttpResponse:
    try:
        body = json.loads(request.body)
    except ValueError:
        return _errors([{"field": "", "message": "the form sent no JSON"}], 400)
    values = body.get("settings") if isinstance(body, dict) else None
    inputs = body.get("inputs", {}) if isinstance(body, dict) else None
    if not isinstance(values, dict) or not isinstance(inputs, dict):
        return _errors([{"field": "", "message": "send settings and inputs as JSON objects"}], 400)
    job_type = str(body.get("type", ""))
    if job_type not in registry and (template is None or job_type != template.job_type):
        known = ", ".join(registry.names())
        return _errors([{"field": "", "message": f"choose a job type: {known}"}])
    if template is not None and job_type == template.job_type:
        inputs = unmasked(job_type, inputs, template.inputs, template.inputs_schema)
    elif template is not None:
        template.inputs_schema = None  # it described the inputs of the old job type
    template = template or Template()
    template.job_type, template.inputs = job_type, inputs
    _apply(template, values)
    if errors := template.default_input_errors():
        return _errors(errors)
    try:
        template.full_clean(exclude=["schedule"])
        with transaction.atomic():
            template.save()
    except ValidationError as exc:
        return _errors(
            [
                {"field": f"settings.{field}", "message": message}
                for field, messages in exc.message_dict.items()
                for message in messages
            ]
        )
    except IntegrityError:
        return _errors([{"field": "settings.name", "message": "a template of this name exists"}])
    flash(request, f"Template {template} saved.")
    return JsonResponse({"id": template.pk, "url": reverse("jobline:templates")}, status=201)
