"""The Django admin for jobline's models; actions go through ``jobline.services.actions``."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from jobline.core.jobtypes import registry
from jobline.input_guard import GuardedModelForm
from jobline.models import ApiToken, Job, JobLog, Queue, Subscription, Template, Worker
from jobline.pipelines import admin as _pipeline_admin  # noqa: F401  (registers run admin)
from jobline.redact import MaskedInputsForm, masked_inputs
from jobline.scheduler import admin as _schedule_admin  # noqa: F401  (registers ScheduleAdmin)
from jobline.services import actions


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    form = GuardedModelForm  # NUL characters, calendar edges and bad queue names: 422-like errors
    list_display = (
        "id",
        "type",
        "queue",
        "status",
        "dispatch",
        "priority",
        "attempts",
        "run_at",
        "created_at",
        "finished_at",
    )
    list_filter = ("status", "dispatch", "queue", "type")
    search_fields = ("=id", "type", "idempotency_key")
    readonly_fields = (
        "status",
        "attempts",
        "started_at",
        "finished_at",
        "worker_id",
        "outputs",
        "error",
        "traceback",
        "created_at",
        "cancel_requested",
        "pipeline_run",
        "pipeline_step",
        "pipeline_index",
        "dispatch",
        "dispatch_outputs",
        "progress",  # written by the job's worker
        "progress_message",
        "log_lines",
    )
    ordering = ("-id",)
    show_full_result_count = False  # counting a million rows on every page load is slow
    actions = ("terminate", "retry")

    def get_readonly_fields(self, request: HttpRequest, obj: Job | None = None) -> Any:
        fields = tuple(super().get_readonly_fields(request, obj))
        if obj is not None and masked_inputs(obj.type, obj.inputs) != obj.inputs:
            return (*fields, "shown_inputs")  # an edit box would show the secrets in full
        return fields

    def get_fields(self, request: HttpRequest, obj: Job | None = None) -> Any:
        fields = super().get_fields(request, obj)
        if "shown_inputs" in fields:
            return ["shown_inputs" if f == "inputs" else f for f in fields if f != "shown_inputs"]
        return fields

    @admin.display(description="Inputs (secrets masked)")
    def shown_inputs(self, job: Job) -> str:
        return json.dumps(masked_inputs(job.type, job.inputs), indent=2)

    @admin.action(description="Terminate selected jobs")
    def terminate(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        n = actions.cancel_jobs(queryset.values_list("id", flat=True), using=queryset.db)
        self.message_user(request, f"{n} jobs terminated or asked to stop.", messages.SUCCESS)

    @admin.action(description="Retry selected jobs")
    def retry(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        n = actions.retry_jobs(queryset.values_list("id", flat=True), using=queryset.db)
        self.message_user(request, f"{n} finished jobs queued again.", messages.SUCCESS)


@admin.register(JobLog)
class JobLogAdmin(admin.ModelAdmin):
    """Jobs' captured log lines, read-only: the job's worker writes them (masked)."""

    list_display = ("job_id", "attempt", "seq", "level", "created_at", "text")
    list_filter = ("level",)
    search_fields = ("=job__id",)
    ordering = ("-job_id", "attempt", "seq")
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Queue)
class QueueAdmin(admin.ModelAdmin):
    form = GuardedModelForm
    list_display = ("name", "paused", "updated_at")
    actions = ("pause", "resume")

    @admin.action(description="Pause selected queues")
    def pause(self, request: HttpRequest, queryset: QuerySet[Queue]) -> None:
        for name in queryset.values_list("name", flat=True):
            actions.pause_queue(name, using=queryset.db)

    @admin.action(description="Resume selected queues")
    def resume(self, request: HttpRequest, queryset: QuerySet[Queue]) -> None:
        for name in queryset.values_list("name", flat=True):
            actions.resume_queue(name, using=queryset.db)


@admin.register(Worker)
class WorkerAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "hostname",
        "pid",
        "concurrency",
        "running",
        "processed",
        "last_heartbeat_at",
        "lease_expires_at",
    )
    readonly_fields = [f.name for f in Worker._meta.fields]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "prefix", "read_only", "created_at", "last_used_at")
    fields = ("name", "read_only", "prefix", "created_at", "last_used_at")
    readonly_fields = ("prefix", "created_at", "last_used_at")

    def save_model(self, request: HttpRequest, obj: ApiToken, form: Any, change: bool) -> None:
        secret = None if change else obj.new_secret()
        super().save_model(request, obj, form, change)
        if secret:  # only the hash is kept: this message is the one chance to copy it
            self.message_user(
                request,
                f"API token {obj.name!r}: {secret} (copy it now: it is not shown again)",
                messages.WARNING,
            )


class TemplateForm(MaskedInputsForm):
    """Secrets in the inputs masked (an unchanged mask keeps them); the job type picked from
    the types defined here, plus the template's own when it is not (an imported one)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        names = registry.names()
        if self.instance.job_type and self.instance.job_type not in names:
            names.append(self.instance.job_type)
        self.fields["job_type"].widget = forms.Select(
            choices=[("", "---------")] + [(n, n) for n in names]
        )


@admin.register(Template)
class TemplateAdmin(admin.ModelAdmin):
    form = TemplateForm
    list_display = ("name", "label", "job_type", "user_triggered", "enabled", "updated_at")
    list_filter = ("enabled", "user_triggered", "job_type")
    search_fields = ("name", "label", "job_type")


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    """Where job events go; the form checks the target's fields (``Subscription.clean``)."""

    list_display = ("name", "target", "is_active", "events", "job_type", "queue", "updated_at")
    list_filter = ("is_active", "target")
    search_fields = ("name", "job_type", "queue", "url", "topic", "exchange")
    fieldsets = (
        (None, {"fields": ("name", "is_active", "events")}),
        ("Which jobs", {"fields": ("job_type", "queue", "schedule")}),
        (
            "Where to",
            {"fields": ("target", "url", "sign_with", "topic", "exchange", "routing_key")},
        ),
    )
