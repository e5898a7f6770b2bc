"""Pipeline runs: the list, and one run drawn as a graph whose nodes follow its steps live."""

from __future__ import annotations

from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect

from jobline.core.pipelines import RunStatus
from jobline.exceptions import PipelineRunError
from jobline.models import PipelineDefinition, PipelineRun
from jobline.pipelines import pipelines
from jobline.web import graph
from jobline.web.base import action, flash, page, render
from jobline.web.jobs import cursor_param, keyset_page

PAGE = 50


@page
def runs_list(request: HttpRequest) -> HttpResponse:
    params = request.GET
    runs = PipelineRun.objects.defer("definition", "inputs", "outputs", "step_states")
    status = params.get("status", "")
    if status in RunStatus._value2member_map_:
        runs = runs.filter(status=status)
    name = params.get("pipeline", "").strip()[:200]
    if name:
        runs = runs.filter(pipeline=name)
    rows, older, newer = keyset_page(
        runs, before=cursor_param(params, "before"), after=cursor_param(params, "after"), size=PAGE
    )
    names = sorted({*pipelines.names(), *PipelineDefinition.objects.values_list("name", flat=True)})
    base = {k: v for k, v in (("status", status), ("pipeline", name)) if v}
    context = {
        "runs": rows,
        "status": status,
        "pipeline": name,
        "names": names,
        "statuses": [s.value for s in RunStatus],
        "older": urlencode({**base, "before": older}) if older else "",
        "newer": urlencode({**base, "after": newer}) if newer else "",
        "defined": [p for p in pipelines],
        "stored": PipelineDefinition.objects.all(),
    }
    template = "jobline/_runs.html" if params.get("partial") else "jobline/pipelines.html"
    return render(request, template, context)


def run_graph(run: PipelineRun) -> graph.Graph:
    steps = run.steps
    info = {}
    for s in steps:
        total = s.counts.total
        done = s.counts.succeeded
        info[s.name] = {
            "status": str(s.status),
            "job_type": s.job_type,
            "progress": f"{done}/{total}" if s.fan_out or total > 1 else "",
            "job": s.jobs[0] if len(s.jobs) == 1 else None,
            "error": s.error,
        }
    parents = {s.name: s.after for s in steps}
    return graph.layout([s.name for s in steps], parents, info)


@page
def run_detail(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(PipelineRun, pk=pk)
    context = {"run": run, "steps": run.steps, "graph": run_graph(run)}
    template = "jobline/_run.html" if request.GET.get("partial") else "jobline/run.html"
    return render(request, template, context)


@action
def run_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(PipelineRun, pk=pk)
    if run.cancel():
        flash(request, f"Run {pk} of {run.pipeline} is cancelled; its running steps are stopped.")
    else:
        flash(request, f"Run {pk} is {run.status}: only a running run can be cancelled.", "error")
    return redirect("jobline:pipeline-run", pk=pk)


@action
def run_resume(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(PipelineRun, pk=pk)
    try:
        n = run.resume()
    except PipelineRunError as exc:
        flash(request, str(exc), "error")
    else:
        flash(request, f"Run {pk} resumed: {n} job{'s' * (n != 1)} queued again.")
    return redirect("jobline:pipeline-run", pk=pk)
