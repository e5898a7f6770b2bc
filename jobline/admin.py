"""The Django admin for jobline's models; actions go through ``jobline.operations``."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from jobline import operations
from jobline.models import Job, Queue, Worker


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "type",
        "queue",
        "status",
        "priority",
        "attempts",
        "run_at",
        "created_at",
        "finished_at",
    )
    list_filter = ("status", "queue", "type")
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
    )
    ordering = ("-id",)
    show_full_result_count = False  # counting a million rows on every page load is slow
    actions = ("terminate", "retry")

    @admin.action(description="Terminate selected jobs")
    def terminate(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        n = operations.cancel_jobs(queryset.values_list("id", flat=True), using=queryset.db)
        self.message_user(request, f"{n} jobs terminated or asked to stop.", messages.SUCCESS)

    @admin.action(description="Retry selected jobs")
    def retry(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        n = operations.retry_jobs(queryset.values_list("id", flat=True), using=queryset.db)
        self.message_user(request, f"{n} finished jobs queued again.", messages.SUCCESS)


@admin.register(Queue)
class QueueAdmin(admin.ModelAdmin):
    list_display = ("name", "paused", "updated_at")
    actions = ("pause", "resume")

    @admin.action(description="Pause selected queues")
    def pause(self, request: HttpRequest, queryset: QuerySet[Queue]) -> None:
        for name in queryset.values_list("name", flat=True):
            operations.pause_queue(name, using=queryset.db)

    @admin.action(description="Resume selected queues")
    def resume(self, request: HttpRequest, queryset: QuerySet[Queue]) -> None:
        for name in queryset.values_list("name", flat=True):
            operations.resume_queue(name, using=queryset.db)


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
