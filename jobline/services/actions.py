"""People's actions (admin, API, UI, CLI): terminate, retry, pause and resume queues,
cancel and resume pipeline runs. Through the ORM, in the caller's transaction.

The worker's hot path lives in ``jobline.store``; these are the rare, deliberate writes.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import DEFAULT_DB_ALIAS, transaction
from django.db.models import QuerySet
from django.utils import timezone

from jobline.core import pipelines as core
from jobline.core.flow import queue_rules_problem
from jobline.core.pipelines import RunStatus
from jobline.core.states import FINISHED, JobStatus
from jobline.exceptions import PipelineRunError
from jobline.models import Job, PipelineRun, Queue
from jobline.services import database, pipelines
from jobline.store import CONTROL, JOBS


def _notify(using: str, channel: str) -> None:
    database.store(using).notify(database.connection(using), channel)


def _ids(ids: Iterable[int] | QuerySet[Job]) -> list[int] | QuerySet[Job]:
    # A QuerySet stays a subquery, so "every failed job" is one statement, not a list of ids.
    return ids.values("id") if isinstance(ids, QuerySet) else list(ids)


def cancel_jobs(ids: Iterable[int] | QuerySet[Job], *, using: str = DEFAULT_DB_ALIAS) -> int:
    """Terminate jobs: queued ones are cancelled now, running ones are asked to stop."""
    ids = _ids(ids)
    with transaction.atomic(using=using):
        jobs = Job.objects.using(using).filter(id__in=ids)
        runs = pipelines.lock_runs_of(jobs, using)  # before the jobs, as workers do
        queued = jobs.filter(status=JobStatus.QUEUED).update(
            status=JobStatus.CANCELLED, finished_at=timezone.now(), error="terminated on request"
        )
        running = jobs.filter(status=JobStatus.RUNNING).update(cancel_requested=True)
        if running:
            _notify(using, CONTROL)
        if queued and runs:  # a cancelled step cancels the steps that depend on it
            pipelines.advance(runs, using)
    return queued + running


def retry_jobs(ids: Iterable[int] | QuerySet[Job], *, using: str = DEFAULT_DB_ALIAS) -> int:
    """Queue finished jobs again, with a fresh set of attempts."""
    with transaction.atomic(using=using):
        jobs = Job.objects.using(using).filter(
            id__in=_ids(ids), status__in=[s.value for s in FINISHED]
        )
        runs = pipelines.lock_runs_of(jobs, using)  # before the jobs, as workers do
        n = jobs.update(
            status=JobStatus.QUEUED,
            attempts=0,
            run_at=timezone.now(),
            finished_at=None,
            cancel_requested=False,
            error="",
            traceback="",
            dispatch="",
            dispatch_outputs=None,
        )
        if n:
            _notify(using, JOBS)
        if n and runs:  # a retried step puts its finished run back to running
            pipelines.reopen(runs, using)
    return n


def pause_queue(name: str, *, using: str = DEFAULT_DB_ALIAS) -> None:
    """Workers stop claiming from the queue; running jobs finish."""
    Queue.objects.using(using).update_or_create(name=name, defaults={"paused": True})


def resume_queue(name: str, *, using: str = DEFAULT_DB_ALIAS) -> None:
    with transaction.atomic(using=using):
        Queue.objects.using(using).update_or_create(name=name, defaults={"paused": False})
        _notify(using, JOBS)


def set_queue_rules(
    name: str,
    *,
    limit: int | None,
    rate: int | None,
    per: float = 1.0,
    using: str = DEFAULT_DB_ALIAS,
) -> Queue:
    """A queue's fleet-wide concurrency limit and rate (None: none). Workers apply it at
    their next claim: the plain claim skips the queue's jobs at once, the flow claim takes
    them within a second (``jobline.store.port.QueueRulesCache``)."""
    if problem := queue_rules_problem(limit, rate, per):
        raise ValueError(f"queue {name}: {problem}")
    with transaction.atomic(using=using):
        queue, _ = Queue.objects.using(using).update_or_create(
            name=name,
            defaults={"concurrency_limit": limit, "rate_limit": rate, "rate_per": float(per)},
        )
        _notify(using, JOBS)
    return queue


def cancel_run(run_id: int, *, using: str | None = None) -> bool:
    """Cancel a running run; False if it had already finished."""
    alias = using or DEFAULT_DB_ALIAS
    runs = PipelineRun.objects.using(alias)
    with transaction.atomic(using=alias):
        # The status check and the lock in one statement, before any job is touched.
        if not runs.filter(pk=run_id, status=RunStatus.RUNNING).update(
            status=RunStatus.CANCELLED, error="cancelled on request", finished_at=timezone.now()
        ):
            return False
        run = runs.get(pk=run_id)
        marks = core.cancel_marks(
            run.spec, pipelines.step_progress(run), run.marks, "the run was cancelled"
        )
        run.step_states = {k: m.to_json() for k, m in marks.items()}
        run.save(update_fields=["step_states"])
        unfinished = [JobStatus.QUEUED, JobStatus.RUNNING]
        cancel_jobs(run.jobs.using(alias).filter(status__in=unfinished), using=alias)
    return True


def resume_run(run_id: int, *, using: str | None = None) -> int:
    """Run a failed or cancelled run's failed and cancelled steps again; how many jobs requeued.

    Steps that never started because of them (cancelled) run once their parents succeed.
    """
    alias = using or DEFAULT_DB_ALIAS
    with transaction.atomic(using=alias):
        if not database.store(alias).lock_runs(database.connection(alias), [run_id]):
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
        steps = core.retry_steps(run.spec, pipelines.step_progress(run), run.marks)
        bad = [JobStatus.FAILED, JobStatus.CANCELLED]
        jobs = run.jobs.using(alias).filter(pipeline_step__in=steps, status__in=bad)
        requeued = retry_jobs(jobs, using=alias)  # reopens the run when it requeues
        if not requeued:
            pipelines.reopen([run_id], alias)
    return requeued


class RunActions:
    """What ``PipelineRun.steps``, ``.cancel()`` and ``.resume()`` do (the model delegates)."""

    steps_of = staticmethod(pipelines.steps_of)
    cancel_run = staticmethod(cancel_run)
    resume_run = staticmethod(resume_run)


PipelineRun.actions = RunActions
