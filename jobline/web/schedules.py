"""Schedules: the list, one schedule with its run history, the form (with a live preview
of the next fire times), and the actions run now, enable / disable and delete.

The form posts JSON like the job form (``form.js``): ``{"type", "inputs", "schedule": {...}}``;
errors come back per field, ``schedule.<field>`` for the rule and options.
"""

from __future__ import annotations

import json
import zoneinfo
from datetime import UTC, datetime
from functools import cache
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme

from jobline.core.jobtypes import registry
from jobline.core.schedules import Kind, ScheduleError, Timing, default_start_at
from jobline.exceptions import InputsError
from jobline.models.schedules import KIND_CHOICES, MISFIRE_CHOICES, Schedule, ScheduleRun
from jobline.redact import masked_inputs, unmasked
from jobline.services import firing
from jobline.web.base import action, flash, page, render
from jobline.web.create import startable_types, type_info

PREVIEW_RUNS = 5
HISTORY = 50
#: Form fields of a schedule besides its job type and inputs.
FIELDS = (
    "name",
    "title",
    "kind",
    "rule",
    "timezone",
    "start_at",
    "end_at",
    "max_runs",
    "misfire_policy",
    "misfire_grace",
    "catch_up",
    "reschedule_after_finish",
    "is_active",
    "queue",
    "priority",
)
RULE_HINTS = {
    Kind.CRON.value: "*/15 * * * *  or  0 9 * * mon-fri  or  @daily",
    Kind.INTERVAL.value: "90  or  5m  or  1h30m",
    Kind.IN.value: "10m  or  2h",
    Kind.AT.value: "2030-01-31T09:00",
}


@cache
def time_zones() -> list[str]:
    return sorted(zoneinfo.available_timezones())


def _local(value: str, tz: str) -> datetime | None:
    """A ``datetime-local`` value, read as wall time in the schedule's zone."""
    if not value:
        return None
    try:
        naive = datetime.fromisoformat(value)
    except ValueError:
        raise ScheduleError("start_at", f"{value!r} is not a date and time") from None
    try:
        zone = zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zone = UTC
    return naive if naive.tzinfo else naive.replace(tzinfo=zone)


def next_runs(timing: Timing, now: datetime, count: int = PREVIEW_RUNS) -> list[datetime]:
    runs: list[datetime] = []
    t = timing.first_run(now)
    while t is not None and len(runs) < count:
        runs.append(t)
        if not timing.occurrences.repeats or (timing.max_runs and len(runs) >= timing.max_runs):
            break
        t = timing.occurrences.next_after(t)
    return runs


def _timing(params: Any, now: datetime) -> Timing:
    kind, rule, tz = params.get("kind", ""), params.get("rule", ""), params.get("timezone") or "UTC"
    if not rule.strip():
        raise ScheduleError("rule", "write a rule")
    start = _local(params.get("start_at", ""), tz) or default_start_at(kind, rule, now)
    end = _local(params.get("end_at", ""), tz)
    max_runs = params.get("max_runs") or None
    return Timing(
        kind=kind,
        rule=rule,
        tz=tz,
        start_at=start,
        end_at=end,
        max_runs=int(max_runs) if max_runs else None,
    )


@page
def preview(request: HttpRequest) -> JsonResponse:
    """The rule in words and its next fire times, for the form to show as it is typed."""
    now = timezone.now()
    try:
        timing = _timing(request.GET, now)
    except (ScheduleError, ValueError) as exc:
        field = getattr(exc, "field", "rule")
        return JsonResponse(
            {"error": {"field": field, "message": getattr(exc, "message", str(exc))}}
        )
    zone = zoneinfo.ZoneInfo(timing.tz)
    runs = next_runs(timing, now)
    return JsonResponse(
        {
            "description": timing.describe(),
            "runs": [
                {
                    "at": t.isoformat(),
                    "local": t.astimezone(zone).strftime("%a %Y-%m-%d %H:%M:%S %Z"),
                }
                for t in runs
            ],
        }
    )


@page
def schedules_list(request: HttpRequest) -> HttpResponse:
    schedules = list(Schedule.objects.select_related("last_job"))
    return render(
        request, "jobline/schedules.html", {"schedules": schedules, "now": timezone.now()}
    )


@page
def schedule_detail(request: HttpRequest, pk: int) -> HttpResponse:
    schedule = get_object_or_404(Schedule.objects.select_related("last_job"), pk=pk)
    runs = list(ScheduleRun.objects.filter(schedule=schedule).select_related("job")[:HISTORY])
    try:
        timing = schedule.timing()
        upcoming = next_runs(timing, timezone.now()) if schedule.is_active else []
    except ScheduleError:
        upcoming = []
    context = {
        "schedule": schedule,
        "inputs": masked_inputs(schedule.job_type, schedule.inputs),
        "runs": runs,
        "upcoming": upcoming,
        "zone": schedule.timezone,
        "defined": schedule.job_type in registry,
    }
    template = "jobline/_schedule.html" if request.GET.get("partial") else "jobline/schedule.html"
    return render(request, template, context)


def _form(request: HttpRequest, schedule: Schedule, job_type: str) -> HttpResponse:
    jt = registry.get(job_type) if job_type in registry else None
    zone = schedule.timezone or "UTC"

    def local(value: datetime | None) -> str:
        if value is None:
            return ""
        return (
            value.astimezone(zoneinfo.ZoneInfo(zone)).replace(tzinfo=None).isoformat("T", "seconds")
        )

    initial = schedule.inputs if schedule.job_type == job_type else {}
    # Secrets masked; a mask sent back unchanged keeps the stored secret (save_schedule).
    context = {
        "schedule": schedule,
        "job_type": type_info(jt),
        "job_type_name": job_type,
        "schema": jt.inputs.json_schema() if jt else {},
        "initial": masked_inputs(job_type, initial),
        "kinds": KIND_CHOICES,
        "misfires": MISFIRE_CHOICES,
        "hints": RULE_HINTS,
        "zones": time_zones(),
        "start_at": local(schedule.start_at) if schedule.pk else "",
        "end_at": local(schedule.end_at),
    }
    return render(request, "jobline/schedule_form.html", context)


@page
def schedule_new(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        return save_schedule(request, None)
    job_type = request.GET.get("type", "")
    if job_type not in {jt.name for jt in startable_types()}:
        types = map(type_info, startable_types())
        return render(request, "jobline/schedule_pick.html", {"types": types})
    return _form(request, Schedule(job_type=job_type, kind=Kind.CRON.value), job_type)


@page
def schedule_edit(request: HttpRequest, pk: int) -> HttpResponse:
    schedule = get_object_or_404(Schedule, pk=pk)
    if request.method == "POST":
        return save_schedule(request, schedule)
    return _form(request, schedule, schedule.job_type)


def _errors(errors: list[dict[str, str]], status: int = 422) -> JsonResponse:
    return JsonResponse({"errors": errors}, status=status)


def _apply(schedule: Schedule, values: dict[str, Any]) -> None:
    """Copy the form's fields onto the schedule; raises ScheduleError for a bad datetime."""
    tz = values.get("timezone") or "UTC"
    for name in FIELDS:
        value = values.get(name)
        if name in ("start_at", "end_at"):
            try:
                value = _local(value or "", tz)
            except ScheduleError as exc:
                raise ScheduleError(name, exc.message) from None
        elif name in ("reschedule_after_finish", "is_active"):
            value = bool(value)
        elif name in ("title", "queue"):
            value = value or ""
        elif name in ("misfire_grace", "catch_up") and value is None:
            continue  # the model's default
        setattr(schedule, name, value)


@action
def save_schedule(request: HttpRequest, schedule: Schedule | None) -> HttpResponse:
    try:
        body = json.loads(request.body)
    except ValueError:
        return _errors([{"field": "", "message": "the form sent no JSON"}], 400)
    values = body.get("schedule") if isinstance(body, dict) else None
    inputs = body.get("inputs", {}) if isinstance(body, dict) else None
    if not isinstance(values, dict) or not isinstance(inputs, dict):
        return _errors([{"field": "", "message": "send schedule and inputs as JSON objects"}], 400)
    job_type = schedule.job_type if schedule is not None else str(body.get("type", ""))
    if schedule is None and job_type not in {jt.name for jt in startable_types()}:
        return _errors([{"field": "", "message": "this job type cannot be scheduled here"}], 404)
    if schedule is not None:  # the form showed secrets masked: unchanged ones stay
        inputs = unmasked(schedule.job_type, inputs, schedule.inputs)
    if job_type in registry:
        try:
            schema = registry.get(job_type).inputs
            inputs = schema.to_json(schema.validate(inputs), keep_secrets=True)
        except InputsError as exc:
            return _errors([{"field": e["field"], "message": e["message"]} for e in exc.errors])
    schedule = schedule or Schedule(job_type=job_type)
    schedule.inputs = inputs
    try:
        _apply(schedule, values)
        schedule.full_clean(exclude=["last_job"])
        with transaction.atomic():
            schedule.save()
    except ScheduleError as exc:
        return _errors([{"field": f"schedule.{exc.field}", "message": exc.message}])
    except ValidationError as exc:
        return _errors(
            [
                {"field": f"schedule.{field}", "message": message}
                for field, messages in exc.message_dict.items()
                for message in messages
            ]
        )
    except IntegrityError:
        return _errors([{"field": "schedule.name", "message": "a schedule of this name exists"}])
    flash(request, f"Schedule {schedule} saved.")
    return JsonResponse(
        {"id": schedule.pk, "url": reverse("jobline:schedule", args=[schedule.pk])}, status=201
    )


@action
def schedule_run(request: HttpRequest, pk: int) -> HttpResponse:
    schedule = get_object_or_404(Schedule, pk=pk)
    fired = firing.run_now([schedule.pk])
    if fired and fired[0].job_id:
        flash(request, f"Started job {fired[0].job_id} from {schedule}.")
    else:
        error = fired[0].error if fired else "it was deleted meanwhile"
        flash(request, f"{schedule} could not start a job: {error}", "error")
    return redirect("jobline:schedule", pk=pk)


def _back(request: HttpRequest, default: str) -> HttpResponse:
    target = request.POST.get("next", "")
    ok = target and url_has_allowed_host_and_scheme(target, {request.get_host()})
    return redirect(target if ok else default)


@action
def schedule_toggle(request: HttpRequest, pk: int) -> HttpResponse:
    schedule = get_object_or_404(Schedule, pk=pk)
    schedule.is_active = not schedule.is_active
    try:
        schedule.save()
    except ScheduleError as exc:
        flash(request, f"{schedule} cannot be enabled: {exc}", "error")
        return redirect("jobline:schedule", pk=pk)
    if schedule.is_active:
        flash(request, f"{schedule} is enabled.")
    else:
        flash(request, f"{schedule} is disabled: it fires no more until enabled.")
    return _back(request, reverse("jobline:schedule", args=[pk]))


@action
def schedule_delete(request: HttpRequest, pk: int) -> HttpResponse:
    schedule = get_object_or_404(Schedule, pk=pk)
    name = str(schedule)
    schedule.delete()
    flash(request, f"Schedule {name} deleted; the jobs it made stay.")
    return redirect("jobline:schedules")
