"""Pipeline runs from Django's side: enqueue, cancel, resume, and what a run looks like.

Every write runs on Django's connection for the alias, so it joins the caller's
transaction. Runs are locked before their jobs change, as the worker does.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models import Count, Max, QuerySet
from django.utils import timezone

from jobline.core import pipelines as core
from jobline.core.pipelines import RunStatus, StepMark, StepProgress, StepStatus
from jobline.core.states import JobStatus
from jobline.pipelines import Pipeline, PipelineRunError
from jobline.pipelines.advance import (
    Advanced,
    Plan,
    T,
    advance_runs,
    lock_runs,
    run_plan,
    start_run,
)
from jobline.pipelines.models import PipelineRun
from jobline.store import driver_for


def _run(plan: Plan[T], alias: str) -> T:
    """Run a plan on Django's connection (inside the current transaction)."""
    connection = connections[alias]
    connection.ensure_connection()
    return run_plan(connection.connection, plan)


def _dialect(alias: str) -> Any:
    return driver_for(connections[alias].vendor).PIPELINE_SQL


def advance(runs: Iterable[int], using: str) -> Advanced:
    """Start whatever has become ready in these runs."""
    return _run(advance_runs(_dialect(using), runs), using)


def lock_runs_of(jobs: QuerySet[Any], using: str) -> list[int]:
    """Lock the pipeline runs of ``jobs`` (before the jobs change); their ids."""
    ids = jobs.filter(pipeline_run__isnull=False).values_list("pipeline_run_id", flat=True)
    ids = list(ids.distinct())
    return _run(lock_runs(_dialect(using), ids), using) if ids else []


def enqueue(pipeline: Pipeline, inputs: Any = None, *, using: str | None = None) -> PipelineRun:
    """Check the inputs, then write the run and its first jobs in one transaction."""
    spec = pipeline.check()
    inputs = {} if inputs is None else inputs
    pipeline.validate_inputs(inputs)
    alias = using or DEFAULT_DB_ALIAS
    now = timezone.now()
    with transaction.atomic(using=alias):
        run = PipelineRun.objects.using(alias).create(
            pipeline=spec.name,
            definition=spec.to_json(),
            inputs=inputs,
            created_at=now,
            started_at=now,
        )
        done = _run(start_run(_dialect(alias), run.id, spec, inputs), alias)
    if run.id in done.updated:  # finished at once (every first step an empty fan-out)
        run.refresh_from_db()
    return run


def _progress(run: PipelineRun) -> dict[str, StepProgress]:
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


def cancel(run_id: int, *, using: str | None = None) -> bool:
    """Cancel a running run; False if it had already finished."""
    from jobline import operations

    alias = using or DEFAULT_DB_ALIAS
    runs = PipelineRun.objects.using(alias)
    with transaction.atomic(using=alias):
        # The status check and the lock in one statement, before any job is touched.
        if not runs.filter(pk=run_id, status=RunStatus.RUNNING).update(
            status=RunStatus.CANCELLED, error="cancelled on request", finished_at=timezone.now()
        ):
            return False
        run = runs.get(pk=run_id)
        marks = core.cancel_marks(run.spec, _progress(run), run.marks, "the run was cancelled")
        run.step_states = {k: m.to_json() for k, m in marks.items()}
        run.save(update_fields=["step_states"])
        unfinished = [JobStatus.QUEUED, JobStatus.RUNNING]
        operations.cancel_jobs(run.jobs.using(alias).filter(status__in=unfinished), using=alias)
    return True


def resume(run_id: int, *, using: str | None = None) -> int:
    """Run a failed or cancelled run's failed and cancelled steps again; how many jobs requeued.

    Steps that never started because of them (cancelled) run once their parents succeed.
    """
    from jobline import operations

    alias = using or DEFAULT_DB_ALIAS
    with transaction.atomic(using=alias):
        if not _run(lock_runs(_dialect(alias), [run_id]), alias):
            raise PipelineRun.DoesNotExist(f"no pipeline run {run_id}")
        run = PipelineRun.objects.using(alias).get(pk=run_id)
        if run.status not in (RunStatus.FAILED, RunStatus.CANCELLED):
            raise PipelineRunError(
                f"run {run_id} is {run.status}; only a failed or cancelled run can be resumed"
            )
        if run.jobs.using(alias).filter(status=JobStatus.RUNNING).exists():
            raise PipelineRunError(
                f"run {run_id} still has jobs being stopped; resume it once they have stopped"
            )
        steps = core.retry_steps(run.spec, _progress(run), run.marks)
        bad = [JobStatus.FAILED, JobStatus.CANCELLED]
        jobs = run.jobs.using(alias).filter(pipeline_step__in=steps, status__in=bad)
        requeued = operations.retry_jobs(jobs, using=alias)  # reopens the run when it requeues
        if not requeued:
            reopen([run_id], alias)
    return requeued


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
    progress = _progress(run)
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
