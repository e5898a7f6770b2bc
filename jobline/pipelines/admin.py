"""The Django admin for pipeline runs and stored pipeline definitions."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from jobline.exceptions import PipelineRunError
from jobline.input_guard import GuardedModelForm
from jobline.models import PipelineDefinition, PipelineRun
from jobline.pipelines import PipelineDefinitionError, pipelines, stored
from jobline.services import actions


@admin.register(PipelineRun)
class PipelineRunAdmin(admin.ModelAdmin):
    list_display = ("id", "pipeline", "status", "created_at", "finished_at")
    list_filter = ("status", "pipeline")
    search_fields = ("=id", "pipeline")
    ordering = ("-id",)
    show_full_result_count = False
    fields = (
        "pipeline",
        "status",
        "error",
        "step_table",
        "inputs",
        "outputs",
        "created_at",
        "started_at",
        "finished_at",
        "definition",
    )
    readonly_fields = fields
    actions = ("cancel", "resume")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # runs start from pipeline.enqueue(), the API or the UI

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False  # a run changes through its actions only

    @admin.display(description="steps")
    def step_table(self, run: PipelineRun) -> SafeString:
        jobs = reverse("admin:jobline_job_changelist")
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td><a href='{}?pipeline_run={}&amp;"
            "pipeline_step={}'>{} jobs</a></td><td>{}</td></tr>",
            (
                (s.name, s.job_type, s.status, jobs, run.id, s.name, len(s.jobs), s.error)
                for s in run.steps
            ),
        )
        head = "<tr><th>step</th><th>job type</th><th>status</th><th>jobs</th><th>error</th></tr>"
        return format_html("<table>{}{}</table>", SafeString(head), rows)

    @admin.action(description="Cancel selected runs")
    def cancel(self, request: HttpRequest, queryset: QuerySet[PipelineRun]) -> None:
        ids = list(queryset.values_list("id", flat=True))
        n = sum(actions.cancel_run(run_id, using=queryset.db) for run_id in ids)
        self.message_user(request, f"{n} runs cancelled.", messages.SUCCESS)

    @admin.action(description="Resume selected runs (failed and cancelled steps run again)")
    def resume(self, request: HttpRequest, queryset: QuerySet[PipelineRun]) -> None:
        for run_id in queryset.values_list("id", flat=True):
            try:
                n = actions.resume_run(run_id, using=queryset.db)
            except PipelineRunError as exc:
                self.message_user(request, str(exc), messages.ERROR)
            else:
                self.message_user(request, f"run {run_id}: {n} jobs queued again.")


class PipelineDefinitionForm(GuardedModelForm):
    """Checks the definition against the job types before it is saved."""

    class Meta:
        model = PipelineDefinition
        fields = ("name", "description", "definition")

    def clean(self) -> dict:
        data = super().clean()
        row = PipelineDefinition(
            name=data.get("name", ""),
            description=data.get("description", ""),
            definition=data.get("definition"),
        )
        if row.name in pipelines:
            raise ValidationError({"name": "a pipeline of this name is defined in code"})
        try:
            data["definition"] = stored(row).to_json()
        except PipelineDefinitionError as exc:
            raise ValidationError({"definition": exc.problems}) from None
        return data


@admin.register(PipelineDefinition)
class PipelineDefinitionAdmin(admin.ModelAdmin):
    """Pipelines defined as data; the definition is checked against the job types on save."""

    form = PipelineDefinitionForm

    list_display = ("name", "description", "updated_at")
    search_fields = ("name",)
    fields = ("name", "description", "definition")
