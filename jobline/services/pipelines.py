"""Pipeline runs: start, cancel, resume, and what a run looks like.

Every write runs on Django's connection for the alias, so it joins the caller's
transaction; the store executes the plans of ``jobline.core.pipelines.plan``. Runs are
locked before their jobs change, as the worker does.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from django.db import DEFAULT_DB_ALIAS, transaction
from django.db.models import Count, Max, QuerySet
from django.utils import timezone

from jobline import tracing
from jobline.core import pipelines as core
from jobline.core.pipelines import PipelineSpec, RunStatus, StepMark, StepProgress, StepStatus
from jobline.core.pipelines.plan import Advanced
from jobline.core.states import JobStatus
from jobline.models import Job, PipelineRun
from jobline.services import database


class Startable(Protocol):
    """A pipeline checked against its job types (``jobline.pipelines.Pipeline``)."""

    def check(self) -> PipelineSpec: ...
    def validate_inputs(self, inputs: Any) -> None: ...


def advance(runs: Iterable[int], using: str) -> Advanced:
    """Start whatever has become ready in these runs."""
    return database.store(using).advance_runs(database.connection(using), sorted(set(runs)))


def lock_runs_of(jobs: QuerySet[Job], using: str) -> list[int]:
    """Lock the pipeline runs of ``jobs`` (before the jobs change); their ids."""
    ids = jobs.filter(pipeline_run__isnull=False).values_list("pipeline_run_id", flat=True)
    ids = sorted(set(ids))
    if not ids:
        return []
    return database.store(using).lock_runs(database.connection(using), ids)


def enqueue(pipeline: Startable, inputs: Any = None, *, using: str | None = None) -> PipelineRun:
    """Check the inputs, then write the run and its first jobs in one transaction."""
    spec = pipeline.check()
    inputs = {} if inputs is None else inputs
    pipeline.validate_inputs(inputs)
    alias = using or DEFAULT_DB_ALIAS
    now = timezone.now()
    # One trace per run: every step's job carries the run's context.
    with tracing.pipeline_span(spec.name) as span, transaction.atomic(using=alias):
        run = PipelineRun.objects.using(alias).create(
            pipeline=spec.name,
            definition=spec.to_json(),
            inputs=inputs,
            created_at=now,
            started_at=now,
            trace_context=span.context,
        )
        span.attribute("jobline.pipeline.run_id", run.id)
        store = database.store(alias)
        done = store.start_run(database.connection(alias), run.id, spec, inputs, span.context)
    if run.id in done.updated:  # finished at once (every first step an empty fan-out)
        run.refresh_from_db()
    return run


def step_progress(run: PipelineRun) -> dict[str, StepProgress]:
    rows = (
        run.jobs.using(run._state.db)
        .values_list("pipeline_step", "status")
        .annotate(n=Count("id"), error=Max("error"))
        .order_by()
    )
    counts: dict[str, dict[str, Any]] = {}
    for step, status, n, error in rows:
        entry = counts.setdefault(step, {})
        entry[status] = n
        if status in (JobStatus.FAILED, JobStatus.CANCELLED) and error:
            entry["error"] = error
    return {step: StepProgress(**c) for step, c in counts.items()}


def reopen(run_ids: Iterable[int], using: str) -> None:
    """Finished runs whose jobs were queued again run again: decided anew, then advanced."""
    runs = PipelineRun.objects.using(using).filter(pk__in=list(run_ids))
    reopened = []
    for run in runs.exclude(status=RunStatus.RUNNING):
        marks = core.reopened_marks(run.marks)
        run.status, run.error, run.outputs, run.finished_at = RunStatus.RUNNING, "", None, None
        run.started_at = timezone.now()
        run.step_states = {k: m.to_json() for k, m in marks.items()}
        run.save(
            update_fields=["status", "error", "outputs", "finished_at", "started_at", "step_states"]
        )
        reopened.append(run.id)
    if reopened:
        advance(reopened, using)


@dataclass(frozen=True, slots=True, kw_only=True)
class StepRun:
    """One step of a run, as the admin, API and UI show it."""

    name: str
    job_type: str
    status: StepStatus
    after: tuple[str, ...]  #: the steps it waits for
    fan_out: bool
    jobs: list[int]  #: its jobs' ids, in item order
    counts: StepProgress
    error: str  #: why it failed, was cancelled or skipped

    def to_json(self) -> dict[str, Any]:
        counts = self.counts
        return {
            "name": self.name,
            "job_type": self.job_type,
            "status": str(self.status),
            "after": list(self.after),
            "fan_out": self.fan_out,
            "jobs": self.jobs,
            "counts": {
                s: getattr(counts, s)
                for s in ("queued", "running", "succeeded", "failed", "cancelled")
            },
            "error": self.error,
        }


def steps_of(run: PipelineRun) -> list[StepRun]:
    spec, marks = run.spec, run.marks
    progress = step_progress(run)
    ids: dict[str, list[int]] = {}
    rows = run.jobs.using(run._state.db).order_by("pipeline_step", "pipeline_index")
    for step, job_id in rows.values_list("pipeline_step", "id"):
        ids.setdefault(step, []).append(job_id)
    found = []
    for name in spec.order:
        step, mark = spec.step(name), marks.get(name, StepMark(status=StepStatus.WAITING))
        counts = progress.get(name, StepProgress())
        found.append(
            StepRun(
                name=name,
                job_type=step.job_type,
                status=core.step_status(step, progress.get(name), marks.get(name)),
                after=spec.parents[name],
                fan_out=step.fan_out is not None,
                jobs=ids.get(name, []),
                counts=counts,
                error=counts.error or mark.error,
            )
        )
    return found
