"""Dashboard, queues, login and logout."""

from __future__ import annotations

from django.contrib.auth import login as auth_login
from django.contrib.auth import logout as auth_logout
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters

from jobline.core import input_rules
from jobline.services import actions
from jobline.services import stuck as stuck_jobs
from jobline.services.retention import Retention
from jobline.web import charts, stats
from jobline.web.base import action, flash, page, render
from jobline.web.login_throttle import LoginForm


def _charts(data: dict) -> list[charts.Chart]:
    window, series = data["window"], data["series"]
    labels = [t.strftime("%H:%M UTC") for t in series["starts"]]
    span = window.span
    return [
        charts.stacked_bars(
            "Throughput",
            [("succeeded", series["succeeded"]), ("failed", series["failed"])],
            labels,
            span,
        ),
        charts.line(
            "Failure rate", "failed", series["failure_rate"], labels, span, unit="%", top=100
        ),
        charts.line("Queue depth", "depth", series["depth"], labels, span, area=True),
    ]


@page
def dashboard(request: HttpRequest) -> HttpResponse:
    window = stats.WINDOWS.get(request.GET.get("window", ""), stats.WINDOWS["1h"])
    data = stats.dashboard(window)
    finished = data["totals"]["succeeded"] + data["totals"]["failed"]
    context = {
        **data,
        "charts": _charts(data),
        "windows": stats.WINDOWS.values(),
        "settle": window.cache + 0.5,
        "here": f"{reverse('jobline:dashboard')}?window={window.key}",  # where actions return
        "failure_rate": round(100 * data["totals"]["failed"] / finished, 1) if finished else None,
        "stuck": _stuck_counts(),
        "retention": Retention.from_settings(),
    }
    template = "jobline/_dashboard.html" if request.GET.get("partial") else "jobline/dashboard.html"
    return render(request, template, context)


def _stuck_counts() -> dict[str, int]:
    """Running jobs that look stuck, by ``stuck.KINDS`` key (not cached: it is live)."""
    marks = list(stuck_jobs.running_marks().values())
    return {key: marks.count(label) for key, label in stuck_jobs.KINDS.items()}


def _back(request: HttpRequest) -> HttpResponse:
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, {request.get_host()}):
        target = reverse("jobline:dashboard")
    return redirect(target)


@action
def queue_pause(request: HttpRequest, name: str) -> HttpResponse:
    if problem := input_rules.queue_problem(name):
        flash(request, problem, "error")
        return _back(request)
    actions.pause_queue(name)
    stats.clear_cache()
    flash(request, f"Queue {name} is paused: workers take no new jobs from it.")
    return _back(request)


@action
def queue_resume(request: HttpRequest, name: str) -> HttpResponse:
    actions.resume_queue(name)
    stats.clear_cache()
    flash(request, f"Queue {name} is running again.")
    return _back(request)


@action
def queue_rules(request: HttpRequest, name: str) -> HttpResponse:
    """A queue's fleet-wide limit and rate per second (empty: none), from the dashboard."""
    try:
        limit, rate = (_optional_int(request.POST.get(f, "")) for f in ("limit", "rate"))
        actions.set_queue_rules(name, limit=limit, rate=rate, per=1.0)
    except ValueError as exc:
        flash(request, str(exc), "error")
        return _back(request)
    stats.clear_cache()
    shown = ", ".join(
        [f"at most {limit} running" if limit else "no limit", f"{rate}/s" if rate else "no rate"]
    )
    flash(request, f"Queue {name}: {shown}. Workers apply it at their next claim.")
    return _back(request)


def _optional_int(text: str) -> int | None:
    text = text.strip()
    if not text:
        return None
    if not text.isdigit():
        raise ValueError(f"expected a whole number or nothing, got {text!r}")
    return int(text)


@sensitive_post_parameters("password")
@csrf_protect
@never_cache
def login(request: HttpRequest) -> HttpResponse:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if not url_has_allowed_host_and_scheme(target, {request.get_host()}):
        target = ""
    target = target or reverse("jobline:dashboard")
    form = LoginForm(request, data=request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        auth_login(request, form.get_user())
        return redirect(target)
    throttled = form.has_error("__all__", "throttled")
    context = {"form": form, "next": target}
    return render(request, "jobline/login.html", context, status=429 if throttled else 200)


def logout(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return HttpResponse(status=405, headers={"Allow": "POST"})
    auth_logout(request)
    return redirect("jobline:login")
