"""Advancing pipeline runs inside the transaction that finished their steps' jobs.

The steps are written once, as generators that yield queries and receive their rows: each
store driver supplies the queries (a :class:`Dialect`) and runs the plan on its own
connection (``jobline.store``), the worker's or the caller's. So a step's success, its
children's insert and the run's new status commit together, or not at all. No I/O here.

Runs are locked first, in id order, before any job row is touched: workers completing jobs
of one run queue up on its row instead of deadlocking on each other's jobs.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, TypeVar

from jobline.core.flow import FlowKeys
from jobline.core.jobtypes import registry
from jobline.core.pipelines import machine
from jobline.core.pipelines.machine import StepMark, StepProgress
from jobline.core.pipelines.spec import PipelineSpec, RunStatus, StepInputError, StepStatus
from jobline.core.tracecontext import TraceContext
from jobline.core.values import NewJob
from jobline.exceptions import InputsError, UnknownJobType

log = logging.getLogger("jobline.pipelines")

T = TypeVar("T")
Query = tuple[str, Any]
Rows = list[tuple[Any, ...]]
Plan = Generator[Query, Rows, T]

_FINISHED = frozenset({"succeeded", "failed", "cancelled"})
_COUNTS = {"queued", "running", "succeeded", "failed", "cancelled"}


@dataclass(frozen=True, slots=True, kw_only=True)
class RunUpdate:
    id: int
    status: RunStatus
    step_states: dict[str, Any]
    outputs: Any
    error: str


def run_updates_json(rows: Iterable[RunUpdate]) -> str:
    """Run updates as one JSON document, for a single set-based UPDATE of any dialect."""
    return json.dumps(
        [
            {
                "id": u.id,
                "status": str(u.status),
                "states": json.dumps(u.step_states),
                "outputs": None if u.outputs is None else json.dumps(u.outputs),
                "error": u.error,
            }
            for u in rows
        ]
    )


class Dialect(Protocol):
    """The statements a plan needs; JSON columns come back as JSON text."""

    def lock_runs(self, ids: Sequence[int]) -> Query:
        """Lock runs; rows ``(id, status, definition, inputs, step_states, trace_context)``."""
        ...

    def progress(self, ids: Sequence[int]) -> Query:
        """Rows ``(run id, step, job status, count, an error)`` for the runs' jobs."""
        ...

    def outputs(self, pairs: Sequence[tuple[int, str]]) -> Query:
        """Rows ``(run id, step, index, outputs)`` of succeeded jobs, in index order."""
        ...

    def insert_jobs(self, rows: Sequence[NewJob]) -> Iterator[Query]: ...

    def update_runs(self, rows: Sequence[RunUpdate]) -> Query: ...


@dataclass(slots=True, kw_only=True)
class Advanced:
    """What a plan did."""

    inserted: int = 0  #: jobs enqueued
    updated: set[int] = field(default_factory=set)  #: runs whose row changed


def after_completion(
    dialect: Dialect, runs: Iterable[int], writes: Iterable[Query]
) -> Plan[Advanced]:
    """Lock ``runs``, run ``writes`` (completions returning ``(status, run id)``), advance.

    Only runs with a job that really finished are advanced: a completion that no longer
    applied (the job was taken back from a lost worker) changes nothing.
    """
    locked = yield dialect.lock_runs(sorted(set(runs)))
    finished = set()
    for write in writes:
        rows = yield write
        finished.update(run for status, run in rows if run is not None and status in _FINISHED)
    return (yield from _advance(dialect, _load(r for r in locked if r[0] in finished)))


def advance_runs(dialect: Dialect, runs: Iterable[int]) -> Plan[Advanced]:
    """Lock ``runs`` and start whatever has become ready (after enqueue, cancel or retry)."""
    locked = yield dialect.lock_runs(sorted(set(runs)))
    return (yield from _advance(dialect, _load(locked)))


def start_run(
    dialect: Dialect,
    run_id: int,
    spec: PipelineSpec,
    inputs: Any,
    trace_context: TraceContext | None = None,
) -> Plan[Advanced]:
    """Enqueue a new run's first steps: it has no jobs yet and nobody else knows it."""
    run = _Run(run_id, spec, inputs, {}, trace_context)
    return (yield from _advance(dialect, [run], fresh=True))


def lock_runs(dialect: Dialect, runs: Iterable[int]) -> Plan[list[int]]:
    """Lock ``runs`` before changing their jobs (the order workers take locks in)."""
    locked = yield dialect.lock_runs(sorted(set(runs)))
    return [row[0] for row in locked]


def finished_runs(rows: Iterable[tuple[Any, ...]]) -> set[int]:
    """Runs to advance after a rescue: of ``(job id, status, run id)`` rows, finished ones."""
    return {run for _, status, run in rows if run is not None and status in _FINISHED}


class _Run:
    """One locked run being advanced."""

    def __init__(
        self,
        run_id: int,
        spec: PipelineSpec,
        inputs: Any,
        marks: dict[str, StepMark],
        trace_context: TraceContext | None = None,
    ):
        self.id = run_id
        self.spec = spec
        self.inputs = inputs
        self.marks = marks
        self.trace_context = trace_context  #: every step's job runs in the run's one trace
        self.progress: dict[str, StepProgress] = {}
        self.changed = False  #: marks changed: the row needs writing even while running
        self.broken = ""  #: why advancing failed unexpectedly (the run is failed with it)
        self.plan = machine.Advance(
            ready=(), marks={}, status=RunStatus.RUNNING, error="", steps={}
        )

    def guard(self, action: Any) -> Any:
        """Run ``action``; a bug or a bad snapshot fails this run, not the worker's batch."""
        try:
            return action()
        except Exception as exc:
            log.exception("advancing pipeline run %s failed", self.id)
            self.broken = f"internal error while advancing the run: {exc!r}"
            return None

    def decide(self) -> None:
        self.plan = machine.advance(self.spec, self.progress, self.marks)
        if self.plan.marks:
            self.marks.update(self.plan.marks)
            self.changed = True

    def start(self, results: dict[str, list[Any]]) -> tuple[list[NewJob], bool]:
        """The ready steps' jobs, and whether some step was marked instead of started."""
        jobs: list[NewJob] = []
        marked = False
        for name in self.plan.ready:
            try:
                rows = self._jobs(name, results)
            except (StepInputError, InputsError) as exc:
                self.marks[name] = StepMark(status=StepStatus.FAILED, error=str(exc))
                marked = self.changed = True
                continue
            if not rows:  # an empty fan-out succeeds at once, with no outputs
                self.marks[name] = StepMark(status=StepStatus.SUCCEEDED)
                marked = self.changed = True
                continue
            jobs += rows
            self.progress[name] = StepProgress(queued=len(rows))
        return jobs, marked

    def _jobs(self, name: str, results: dict[str, list[Any]]) -> list[NewJob]:
        spec, step = self.spec, self.spec.step(name)
        parents = {p: self.result(p, results) for p in spec.reads(name)}
        return [
            NewJob(
                type=step.job_type,
                queue=step.queue or "default",
                priority=step.priority or 0,
                inputs=(data := _validated(step.job_type, inputs)),
                max_attempts=step.max_attempts or 3,
                timeout=step.timeout,
                requires=step.requires,
                idempotency_key=None,
                delay=0.0,
                pipeline_run_id=self.id,
                pipeline_step=name,
                pipeline_index=i,
                flow=_flow(step.job_type, data),
                trace_context=self.trace_context,
            )
            for i, inputs in enumerate(machine.expand(spec, name, self.inputs, parents))
        ]

    def result(self, step: str, results: dict[str, list[Any]]) -> Any:
        """A step's outputs as its children see them: a list for a fan-out, else one value."""
        if self.plan.steps.get(step) is StepStatus.SKIPPED:
            return None
        found = results.get(step, [])
        if self.spec.step(step).fan_out is not None:
            return found
        return found[0] if found else None

    def update(self, outputs: Any = None) -> RunUpdate:
        failed = bool(self.broken)
        return RunUpdate(
            id=self.id,
            status=RunStatus.FAILED if failed else self.plan.status,
            step_states={k: m.to_json() for k, m in self.marks.items()},
            outputs=None if failed else outputs,
            error=self.broken or self.plan.error,
        )


@functools.lru_cache(maxsize=256)
def _spec(definition: str) -> PipelineSpec:
    """Runs of one pipeline share one snapshot text: parse and check it once."""
    return PipelineSpec.from_json(json.loads(definition))


def _validated(job_type: str, inputs: dict[str, Any]) -> Any:
    """Inputs checked and normalised by the job type, when this process knows it.

    A worker that does not know the type leaves that to the worker that runs the job.
    """
    try:
        schema = registry.get(job_type).inputs
    except UnknownJobType:
        return inputs
    return schema.to_json(schema.validate(inputs), keep_secrets=True)


def _flow(job_type: str, inputs: Any) -> FlowKeys | None:
    """A step's limit and rate keys (steps are never unique: a run enqueues each once)."""
    if job_type not in registry:
        return None
    keys = registry.get(job_type).flow.keys(job_type, inputs)
    return replace(keys, unique_key=None) if keys is not None else None


def _results(rows: Rows) -> dict[int, dict[str, list[Any]]]:
    found: dict[int, dict[str, list[Any]]] = {}
    for run, step, _index, outputs in rows:  # ordered by index
        value = None if outputs is None else json.loads(outputs)
        found.setdefault(run, {}).setdefault(step, []).append(value)
    return found


def _load(rows: Iterable[tuple[Any, ...]]) -> list[_Run]:
    """Runs from locked rows ``(id, status, definition, inputs, step_states, trace_context)``."""
    runs = []
    for run_id, status, definition, inputs, states, trace in sorted(rows):
        if status != RunStatus.RUNNING:  # finished or cancelled: late completions change nothing
            continue
        try:
            marks = {k: StepMark.from_json(v) for k, v in json.loads(states or "{}").items()}
            trace_context = json.loads(trace) if trace else None
            runs.append(_Run(run_id, _spec(definition), json.loads(inputs), marks, trace_context))
        except Exception:  # not ours to fix here; the run stays as it is, visible in the admin
            log.exception("pipeline run %s has a definition that cannot be read", run_id)
    return runs


def _progress(rows: Rows) -> dict[int, dict[str, StepProgress]]:
    counts: dict[int, dict[str, dict[str, Any]]] = {}
    for run, step, status, n, error in rows:
        if status in _COUNTS:
            entry = counts.setdefault(run, {}).setdefault(step, {})
            entry[status] = n
            if status in ("failed", "cancelled") and error:
                entry["error"] = error
    return {
        run: {step: StepProgress(**c) for step, c in steps.items()} for run, steps in counts.items()
    }


def _advance(dialect: Dialect, runs: list[_Run], fresh: bool = False) -> Plan[Advanced]:
    """Start what is ready in ``runs``; ``fresh`` runs have no jobs to count yet."""
    done = Advanced()
    if not runs:
        return done
    progress = {} if fresh else _progress((yield dialect.progress([r.id for r in runs])))
    for run in runs:
        run.progress = progress.get(run.id, {})
    jobs: list[NewJob] = []
    pending = runs
    while pending:  # again for runs where a step was marked: its children may be ready now
        for run in pending:
            run.guard(run.decide)
        pending = [r for r in pending if not r.broken]
        pairs = sorted({(r.id, p) for r in pending for s in r.plan.ready for p in r.spec.reads(s)})
        results = _results((yield dialect.outputs(pairs))) if pairs else {}
        again = []
        for run in pending:
            found = results.get(run.id, {})
            started = run.guard(lambda r=run, found=found: r.start(found))
            if started is not None:
                jobs += started[0]
                if started[1]:
                    again.append(run)
        pending = again
    if jobs:
        for query in dialect.insert_jobs(jobs):  # not ``yield from``: rows are sent back
            _ = yield query
        done.inserted = len(jobs)
    updates = yield from _finish(dialect, runs)
    if updates:
        yield dialect.update_runs(updates)
        done.updated = {u.id for u in updates}
    return done


def _finish(dialect: Dialect, runs: list[_Run]) -> Plan[list[RunUpdate]]:
    """The rows to write: runs that finished (with their outputs) or whose marks changed.

    Each run's last decision stands: steps it found ready are queued now, so it runs on.
    """
    succeeded = [r for r in runs if not r.broken and r.plan.status is RunStatus.SUCCEEDED]
    pairs = sorted({(r.id, leaf) for r in succeeded for leaf in r.spec.leaves})
    results = _results((yield dialect.outputs(pairs))) if pairs else {}
    updates = []
    for run in runs:
        if run.broken or run.plan.status is not RunStatus.RUNNING or run.changed:
            found = results.get(run.id, {})
            outputs = {leaf: run.result(leaf, found) for leaf in run.spec.leaves}
            succeeded_now = run.plan.status is RunStatus.SUCCEEDED
            updates.append(run.update(outputs if succeeded_now else None))
    return updates
