"""Pipelines from the UI: one pipeline's definition (drawn as a graph) with a form, generated
from its inputs schema, that starts a run; and a page that stores a pipeline's JSON.

The run form posts JSON like the job form (``form.js``): ``{"type": <pipeline>, "inputs"}``;
errors come back by input field.
"""

from __future__ import annotations

import json

from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse

from jobline.api.pipelines import describe, stored_spec
from jobline.core.pipelines import PipelineSpec
from jobline.models import PipelineDefinition
from jobline.pipelines import (
    PipelineDefinitionError,
    PipelineInputsError,
    UnknownPipeline,
    define,
    get_pipeline,
)
from jobline.pipelines import pipelines as in_code
from jobline.web import graph
from jobline.web.base import action, flash, page, render

EXAMPLE = {
    "name": "my-pipeline",
    "description": "",
    "steps": [
        {"name": "first", "job_type": "noop"},
        {"name": "then", "job_type": "sleep", "after": ["first"], "map": {"seconds": "input.s"}},
    ],
}


def _spec(name: str) -> tuple[PipelineSpec, str] | None:
    if name in in_code:
        return in_code.get(name).spec, "code"
    stored = PipelineDefinition.objects.filter(name=name).first()
    return (stored_spec(stored), "stored") if stored else None


def definition_graph(spec: PipelineSpec) -> graph.Graph:
    info = {s.name: {"status": "waiting", "job_type": s.job_type} for s in spec.steps}
    return graph.layout(list(spec.order), dict(spec.parents), info)


@page
def pipeline_start(request: HttpRequest, name: str) -> HttpResponse:
    if request.method == "POST":
        return start_run(request, name)
    found = _spec(name)
    if found is None:
        flash(request, f"No pipeline is named {name}.", "error")
        return redirect("jobline:pipelines")
    spec, source = found
    context = {
        "pipeline": describe(spec, source),
        "graph": definition_graph(spec),
        "initial": {},
    }
    return render(request, "jobline/pipeline_start.html", context)


def _errors(errors: list[dict[str, str]], status: int = 422) -> JsonResponse:
    return JsonResponse({"errors": errors}, status=status)


@action
def start_run(request: HttpRequest, name: str) -> HttpResponse:
    try:
        body = json.loads(request.body)
    except ValueError:
        return _errors([{"field": "", "message": "the form sent no JSON"}], 400)
    inputs = body.get("inputs", {}) if isinstance(body, dict) else None
    if not isinstance(inputs, dict):
        return _errors([{"field": "", "message": "inputs must be a JSON object"}], 400)
    try:
        found = get_pipeline(name)
        with transaction.atomic():
            run = found.enqueue(inputs)
    except UnknownPipeline:
        return _errors([{"field": "", "message": f"no pipeline is named {name}"}], 404)
    except PipelineInputsError as exc:
        return _errors([{"field": e["field"], "message": e["message"]} for e in exc.errors])
    except PipelineDefinitionError as exc:
        return _errors([{"field": "", "message": p} for p in exc.problems], 409)
    flash(request, f"Run {run.id} of {name} started.")
    return JsonResponse(
        {"id": run.id, "url": reverse("jobline:pipeline-run", args=[run.id])}, status=201
    )


@page
def pipeline_define(request: HttpRequest) -> HttpResponse:
    """Store a pipeline from its JSON (as ``POST /api/v1/pipelines`` takes it)."""
    if request.method == "POST":
        return _define(request)
    context = {"text": json.dumps(EXAMPLE, indent=2), "problems": []}
    return render(request, "jobline/pipeline_define.html", context)


@action
def _define(request: HttpRequest) -> HttpResponse:
    text = request.POST.get("definition", "")
    try:
        data = json.loads(text)
    except ValueError as exc:
        problems = [f"not JSON: {exc}"]
    else:
        try:
            if isinstance(data, dict) and data.get("name") in in_code:
                raise PipelineDefinitionError(data["name"], ["this name is defined in code"])
            with transaction.atomic():
                stored = define(data)
        except PipelineDefinitionError as exc:
            problems = exc.problems
        else:
            flash(request, f"Pipeline {stored.name} saved.")
            return redirect("jobline:pipeline-start", name=stored.name)
    context = {"text": text, "problems": problems}
    return render(request, "jobline/pipeline_define.html", context, status=422)
