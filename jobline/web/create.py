"""Start a job from a job type or a template, with a form generated from a JSON Schema.

The page carries the schema; ``form.js`` draws the form and checks it in the browser, then
posts JSON here, where the inputs are validated again (by the job type, and by the
template's own schema) and errors come back per field: ``{"errors": [{"field", "message"}]}``.
Only job types marked ``user_triggered`` and enabled, user-triggered templates are offered.
"""

from __future__ import annotations

import json
from typing import Any

from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse

from jobline.core import input_rules
from jobline.core.jobtypes import JobType, registry
from jobline.exceptions import InputsError, UnknownJobType
from jobline.models import Job, Template
from jobline.redact import masked_inputs, unmasked
from jobline.services import templates
from jobline.services.enqueue import enqueue
from jobline.services.templates import TemplateDisabled
from jobline.web.base import action, flash, page, render

MAX_BODY = 1_000_000
MAX_DELAY = 366 * 86_400


def startable_types() -> list[JobType]:
    return sorted((jt for jt in registry if jt.user_triggered), key=lambda jt: jt.name)


def type_info(jt: JobType | None) -> dict[str, Any] | None:
    """What templates show of a job type. A JobType itself is callable: a template would
    call it (run the job) when it reads the variable."""
    if jt is None:
        return None
    return {
        "name": jt.name,
        "description": jt.description.split("\n\n")[0],  # its first paragraph (|markup)
        "queue": jt.queue,
        "priority": jt.priority,
    }


def startable_templates():
    return Template.objects.filter(enabled=True, user_triggered=True)


def _job_type(name: str) -> JobType | None:
    if name in registry and (jt := registry.get(name)).user_triggered:
        return jt
    return None


def _template(value: Any) -> Template | None:
    if not str(value).isdigit():
        return None
    return startable_templates().filter(pk=int(value)).first()


def _source(value: Any, job_type: str) -> Job | None:
    """The job of this type that "run again" copies, if ``value`` is its id."""
    if not str(value).isdigit() or len(str(value)) > 18:
        return None
    return Job.objects.filter(pk=int(value), type=job_type).only("type", "inputs").first()


def form_schema(template: Template | None, jt: JobType | None) -> dict[str, Any]:
    """What the form shows: a template's own inputs schema, else its job type's."""
    if template is not None and template.inputs_schema is not None:
        return template.inputs_schema
    return jt.inputs.json_schema() if jt is not None else {}


@page
def new_job(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        return create_job(request)
    template = _template(request.GET.get("template", ""))
    jt = _job_type(request.GET.get("type", ""))
    if template is None and jt is None:
        if request.GET.get("type") or request.GET.get("template"):
            flash(request, "That job type or template cannot be started by hand.", "error")
        return render(
            request,
            "jobline/new.html",
            {"types": map(type_info, startable_types()), "templates": startable_templates()},
        )
    initial: Any = {}
    source = None
    if template is not None:
        jt = registry.get(template.job_type) if template.job_type in registry else None
        initial = masked_inputs(template.job_type, template.inputs, template.inputs_schema)
    else:  # "run again" from a job: a mask sent back unchanged becomes its secret again
        source = _source(request.GET.get("from", ""), jt.name)
        initial = masked_inputs(source.type, source.inputs) if source else {}
    context = {
        "template": template,
        "job_type": type_info(jt),
        "schema": form_schema(template, jt),
        "initial": initial,
        "secret_defaults": template is not None,
        "source": source,
    }
    return render(request, "jobline/new_form.html", context)


def _options(raw: Any) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """Queue, priority and delay from the form; empty means the type's (or template's)."""
    raw = raw if isinstance(raw, dict) else {}
    options: dict[str, Any] = {}
    errors = []

    def bad(name: str, message: str) -> None:
        errors.append({"field": f"options.{name}", "message": message})

    queue = raw.get("queue")
    if queue not in (None, ""):
        if problem := input_rules.queue_problem(queue.strip() if isinstance(queue, str) else queue):
            bad("queue", problem)
        else:
            options["queue"] = queue.strip()
    priority = raw.get("priority")
    if priority not in (None, ""):
        if (
            not isinstance(priority, int)
            or isinstance(priority, bool)
            or not -100 <= priority <= 100
        ):
            bad("priority", "a whole number from -100 to 100")
        else:
            options["priority"] = priority
    delay = raw.get("delay")
    if delay not in (None, ""):
        if (
            not isinstance(delay, int | float)
            or isinstance(delay, bool)
            or not 0 <= delay <= MAX_DELAY
        ):
            bad("delay", "seconds from 0 to a year")
        else:
            options["delay"] = delay
    return options, errors


def _errors(errors: list[dict[str, Any]], status: int = 422) -> JsonResponse:
    # pydantic prefixes a validator's own words with "Value error, ": a form shows the words.
    return JsonResponse(
        {
            "errors": [
                {"field": e.get("field", ""), "message": e["message"].removeprefix("Value error, ")}
                for e in errors
            ]
        },
        status=status,
    )


@action
def create_job(request: HttpRequest) -> HttpResponse:
    if len(request.body) > MAX_BODY:
        return _errors([{"message": "the inputs are too large"}], 413)
    try:
        body = json.loads(request.body)
    except ValueError:
        return _errors([{"message": "the form sent no JSON"}], 400)
    if not isinstance(body, dict) or not isinstance(body.get("inputs", {}), dict):
        return _errors([{"message": "inputs must be a JSON object"}], 400)
    options, errors = _options(body.get("options"))
    if errors:
        return _errors(errors)
    inputs = body.get("inputs", {})
    template = _template(body.get("template", "")) if body.get("template") else None
    jt = None if template else _job_type(str(body.get("type", "")))
    if template is None and jt is None:
        return _errors([{"message": "this job type or template cannot be started by hand"}], 404)
    if jt is not None and (source := _source(body.get("from", ""), jt.name)) is not None:
        inputs = unmasked(source.type, inputs, source.inputs)  # the form showed its secrets masked
    try:
        with transaction.atomic():
            if template is not None:
                job = templates.start(template, inputs, **options)
            else:
                job = enqueue(jt, inputs, **options)
    except InputsError as exc:
        return _errors(exc.errors)
    except (TemplateDisabled, UnknownJobType) as exc:
        return _errors([{"message": str(exc)}], 409)
    except ValueError as exc:
        return _errors([{"message": str(exc)}])
    url = reverse("jobline:job", args=[job.id])
    flash(request, f"Job {job.id} ({job.type}) created.")
    return JsonResponse({"id": job.id, "url": url}, status=201)


def _default_problems(template: Template) -> str:
    errors = template.default_input_errors()
    return "; ".join(f"{e['field']}: {e['message']}" for e in errors)


@page
def templates_list(request: HttpRequest) -> HttpResponse:
    templates = list(Template.objects.all())
    for t in templates:
        t.defined = t.job_type in registry
        t.shown_inputs = masked_inputs(t.job_type, t.inputs, t.inputs_schema)
        # saved before defaults were checked, or its job type changed since: not "ready"
        t.problems = _default_problems(t)
    return render(request, "jobline/templates.html", {"templates": templates})
