"""Pipeline models: definitions stored as data, and runs.

A run's steps are ordinary jobs (``Job.pipeline_run``, ``pipeline_step``, ``pipeline_index``);
the run row holds the definition it started with, its inputs and outputs, its status, and
the states of steps that have no jobs (``step_states``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.db import models

from jobline.core.pipelines import PipelineSpec, RunStatus, StepMark


class PipelineDefinition(models.Model):
    """A pipeline defined as JSON (through the API or the admin) rather than in code."""

    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True, default="")
    definition = models.JSONField(help_text="Steps, their job types, wiring and options.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name


class PipelineRun(models.Model):
    """One run of a pipeline. ``steps`` tells each step's status and jobs."""

    #: What a run does (its steps, cancel, resume) is ``jobline.services``' business: it puts
    #: itself here as it loads (jobline's app config imports it), so models hold only data.
    actions: ClassVar[Any] = None

    Status = models.TextChoices("Status", [(s.name, s.value) for s in RunStatus])

    id = models.BigAutoField(primary_key=True)
    pipeline = models.CharField(max_length=200, help_text="The pipeline's name.")
    definition = models.JSONField(
        help_text="The pipeline as it was when the run started, with step options filled in."
    )
    inputs = models.JSONField(default=dict, blank=True)
    status = models.CharField(
        max_length=12, choices=Status.choices, default=RunStatus.RUNNING.value
    )
    outputs = models.JSONField(
        null=True, blank=True, help_text="Once succeeded: each last step's outputs, by step."
    )
    error = models.TextField(blank=True, default="")
    step_states = models.JSONField(
        default=dict,
        blank=True,
        help_text="Steps without jobs: cancelled, skipped, empty fan-outs, unbuildable inputs.",
    )
    created_at = models.DateTimeField()
    started_at = models.DateTimeField(help_text="When it was enqueued, or last resumed.")
    finished_at = models.DateTimeField(null=True, blank=True)
    # The W3C trace context of the run's span (OpenTelemetry): every step's job runs in
    # that one trace. Null when not traced.
    trace_context = models.JSONField(null=True, blank=True, editable=False)

    class Meta:
        indexes = [
            models.Index(fields=["status", "-id"], name="jobline_run_status"),
            models.Index(fields=["pipeline", "-id"], name="jobline_run_pipeline"),
        ]

    def __str__(self) -> str:
        return f"{self.pipeline} run #{self.id} ({self.status})"

    @property
    def spec(self) -> PipelineSpec:
        return PipelineSpec.from_json(self.definition)

    @property
    def marks(self) -> dict[str, StepMark]:
        return {k: StepMark.from_json(v) for k, v in (self.step_states or {}).items()}

    @property
    def steps(self) -> list[Any]:
        """Each step (in dependency order): status, job ids, counts, error (``StepRun``)."""
        return self.actions.steps_of(self)

    def cancel(self) -> bool:
        """Cancel the run: queued steps are cancelled, running ones terminated."""
        cancelled = self.actions.cancel_run(self.pk, using=self._state.db)
        self.refresh_from_db()
        return cancelled

    def resume(self) -> int:
        """Run a failed or cancelled run's failed and cancelled steps again."""
        requeued = self.actions.resume_run(self.pk, using=self._state.db)
        self.refresh_from_db()
        return requeued
