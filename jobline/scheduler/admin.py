"""The Django admin for schedules: edit, run now, enable, disable, and the run history.

Imported by ``jobline/admin.py``. A saved change re-arms the schedule and wakes the running
schedulers at once (on PostgreSQL through the ``jobline_schedules`` notification).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from jobline.core.jobtypes import registry
from jobline.core.schedules import ScheduleError
from jobline.models.schedules import Schedule, ScheduleRun
from jobline.redact import MaskedInputsForm
from jobline.services import firing


def _job_link(job_id: int | None) -> str:
    if job_id is None:
        return "-"
    return format_html(
        '<a href="{}">#{}</a>', reverse("admin:jobline_job_change", args=[job_id]), job_id
    )


class ScheduleRunInline(admin.TabularInline):
    model = ScheduleRun
    fields = ("scheduled_for", "fired_at", "job_link", "skipped", "manual", "error")
    readonly_fields = fields
    ordering = ("-scheduled_for",)
    extra = 0
    can_delete = False
    verbose_name_plural = "history (newest first)"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="job")
    def job_link(self, run: ScheduleRun) -> str:
        return _job_link(run.job_id)


@admin.register(Schedule)
class ScheduleAdmin(admin.ModelAdmin):
    form = MaskedInputsForm  # secrets in the inputs masked; an unchanged mask keeps them
    list_display = (
        "name",
        "title",
        "job_type",
        "when",
        "is_active",
        "next_run_at",
        "last_run_at",
        "run_count",
        "last_job_link",
    )
    list_filter = ("is_active", "kind", "misfire_policy", "job_type")
    search_fields = ("name", "title", "job_type")
    readonly_fields = (
        "when",
        "next_run_at",
        "last_run_at",
        "run_count",
        "last_job_link",
        "created_at",
        "updated_at",
    )
    fieldsets = (
        (
            None,
            {"fields": ("name", "title", "job_type", "inputs", "queue", "priority", "is_active")},
        ),
        (
            "When",
            {
                "fields": (
                    "kind",
                    "rule",
                    "timezone",
                    "when",
                    "start_at",
                    "end_at",
                    "max_runs",
                    "reschedule_after_finish",
                )
            },
        ),
        ("Missed runs", {"fields": ("misfire_policy", "misfire_grace", "catch_up")}),
        (
            "State",
            {
                "fields": (
                    "next_run_at",
                    "last_run_at",
                    "run_count",
                    "last_job_link",
                    "created_at",
                    "updated_at",
                )
            },
        ),
    )
    inlines = (ScheduleRunInline,)
    actions = ("run_now", "enable", "disable")

    def get_form(self, request: HttpRequest, obj: Schedule | None = None, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, **kwargs)
        names = registry.names()
        if obj is not None and obj.job_type not in names:
            names.insert(0, obj.job_type)  # keep what is stored visible, even if unknown here
        form.base_fields["job_type"].widget = forms.Select(
            choices=[("", "---------"), *((n, n) for n in names)]
        )
        return form

    @admin.display(description="when")
    def when(self, schedule: Schedule) -> str:
        return schedule.describe() if schedule.rule else "-"

    @admin.display(description="last job")
    def last_job_link(self, schedule: Schedule) -> str:
        return _job_link(schedule.last_job_id)

    @admin.action(description="Run selected schedules now")
    def run_now(self, request: HttpRequest, queryset: QuerySet[Schedule]) -> None:
        fired = firing.run_now(queryset.values_list("id", flat=True), using=queryset.db)
        for entry in fired:
            if entry.error:
                self.message_user(request, f"{entry.schedule}: {entry.error}", messages.ERROR)
        jobs = [f"#{f.job_id}" for f in fired if f.job_id]
        if jobs:
            self.message_user(request, f"Enqueued jobs {', '.join(jobs)}.", messages.SUCCESS)

    @admin.action(description="Enable selected schedules")
    def enable(self, request: HttpRequest, queryset: QuerySet[Schedule]) -> None:
        for schedule in queryset.filter(is_active=False):
            schedule.is_active = True
            try:
                schedule.save(update_fields=["is_active"])  # re-arms from now
            except ScheduleError as exc:
                self.message_user(request, f"{schedule.name}: {exc}", messages.ERROR)
                continue
            if not schedule.is_active:
                self.message_user(
                    request,
                    f"{schedule.name}: nothing left to run; still disabled.",
                    messages.WARNING,
                )

    @admin.action(description="Disable selected schedules")
    def disable(self, request: HttpRequest, queryset: QuerySet[Schedule]) -> None:
        n = queryset.update(is_active=False)
        self.message_user(request, f"{n} schedules disabled.", messages.SUCCESS)
