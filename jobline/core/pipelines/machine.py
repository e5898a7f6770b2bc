"""The run state machine: from the counts of each step's jobs by status, which steps are
ready, cancelled or skipped, and the run's status; and the inputs of a ready step."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from jobline.core.pipelines import schemas
from jobline.core.pipelines.spec import (
    FINISHED_STEP,
    INPUT,
    MAX_FAN_OUT,
    OnFailure,
    PipelineSpec,
    RunStatus,
    Step,
    StepInputError,
    StepStatus,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class StepProgress:
    """How many of a step's jobs are in each status; ``error`` is one failed job's error."""

    queued: int = 0
    running: int = 0
    succeeded: int = 0
    failed: int = 0
    cancelled: int = 0
    error: str = ""

    @property
    def total(self) -> int:
        return self.queued + self.running + self.succeeded + self.failed + self.cancelled


@dataclass(frozen=True, slots=True, kw_only=True)
class StepMark:
    """The state of a step that has no jobs: cancelled, skipped, failed or an empty fan-out."""

    status: StepStatus
    error: str = ""

    def to_json(self) -> dict[str, str]:
        return {"status": str(self.status), "error": self.error}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StepMark:
        return cls(status=StepStatus(data["status"]), error=data.get("error", ""))


def step_status(step: Step, progress: StepProgress | None, mark: StepMark | None) -> StepStatus:
    """A step's status from its jobs' statuses or, when it has none, from its mark."""
    if progress is None or not progress.total:
        return mark.status if mark is not None else StepStatus.WAITING
    finished = progress.succeeded + progress.failed + progress.cancelled
    if progress.running or (progress.queued and finished):
        return StepStatus.RUNNING
    if progress.queued:
        return StepStatus.QUEUED
    if not progress.failed and not progress.cancelled:
        return StepStatus.SUCCEEDED
    if step.on_failure == OnFailure.SKIP:  # a fan-out drops its failed items and goes on
        return StepStatus.SUCCEEDED if step.fan_out is not None else StepStatus.SKIPPED
    return StepStatus.FAILED if progress.failed else StepStatus.CANCELLED


@dataclass(frozen=True, slots=True, kw_only=True)
class Advance:
    """What to do with a run: steps to start now, steps newly marked, and the run's status."""

    ready: tuple[str, ...]  #: every parent succeeded: build their inputs and enqueue them
    marks: dict[str, StepMark]  #: steps that will not run (parents failed or were skipped)
    status: RunStatus
    error: str  #: why the run failed or was cancelled
    steps: dict[str, StepStatus]


def advance(
    spec: PipelineSpec,
    progress: Mapping[str, StepProgress],
    marks: Mapping[str, StepMark],
) -> Advance:
    """Decide a running run's next moves from its steps' progress and marks."""
    status: dict[str, StepStatus] = {}
    ready: list[str] = []
    new: dict[str, StepMark] = {}
    for name in spec.order:
        st = step_status(spec.step(name), progress.get(name), marks.get(name))
        if st is StepStatus.WAITING:
            parents = spec.parents[name]
            blocked = [p for p in parents if status[p] in (StepStatus.FAILED, StepStatus.CANCELLED)]
            skipped = [p for p in parents if status[p] is StepStatus.SKIPPED]
            if blocked:
                st = StepStatus.CANCELLED
                new[name] = StepMark(status=st, error=f"step {blocked[0]!r} {status[blocked[0]]}")
            elif skipped:
                st = StepStatus.SKIPPED
                new[name] = StepMark(status=st, error=f"step {skipped[0]!r} was skipped")
            elif all(status[p] is StepStatus.SUCCEEDED for p in parents):
                ready.append(name)
        status[name] = st
    run, error = _run_status(spec, status, progress, {**marks, **new}, bool(ready))
    return Advance(ready=tuple(ready), marks=new, status=run, error=error, steps=status)


def _run_status(
    spec: PipelineSpec,
    status: Mapping[str, StepStatus],
    progress: Mapping[str, StepProgress],
    marks: Mapping[str, StepMark],
    starting: bool,
) -> tuple[RunStatus, str]:
    if starting or any(s not in FINISHED_STEP for s in status.values()):
        return RunStatus.RUNNING, ""

    def why(name: str) -> str:
        error = progress[name].error if name in progress else marks[name].error
        return f": {error}" if error else ""

    failed = [n for n in spec.order if status[n] is StepStatus.FAILED]
    if failed:
        return RunStatus.FAILED, f"step {failed[0]!r} failed{why(failed[0])}"
    cancelled = [n for n in spec.order if status[n] is StepStatus.CANCELLED]
    if cancelled:  # the cause is a step whose jobs were cancelled, not one marked after it
        cause = next((n for n in cancelled if n in progress), cancelled[0])
        return RunStatus.CANCELLED, f"step {cause!r} was cancelled{why(cause)}"
    return RunStatus.SUCCEEDED, ""


def expand(
    spec: PipelineSpec, name: str, inputs: Any, results: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """The inputs of a ready step's jobs: one, or one per item when it fans out.

    ``results`` holds each parent's outputs: the list of its items' outputs (succeeded ones,
    in order) for a fanned-out parent, the outputs of its job otherwise.
    """
    step = spec.step(name)
    values = dict(step.inputs)
    for fname, ref in spec.refs(name).items():
        if ref.source == INPUT:
            try:
                values[fname] = _lookup(inputs, ref.path)
            except LookupError:  # an optional input left out: the job type's default applies
                continue
            continue
        out = results.get(ref.source)
        try:
            if spec.step(ref.source).fan_out is not None:
                values[fname] = [_lookup(o, ref.path) for o in out or ()]
            else:
                values[fname] = _lookup(out, ref.path)
        except LookupError:
            raise StepInputError(
                f"input {fname!r}: {ref} is missing from the outputs of step {ref.source!r}"
            ) from None
    if step.fan_out is None:
        return [values]
    items = values.get(step.fan_out)
    if not isinstance(items, list):
        raise StepInputError(
            f"fans out over {step.map[step.fan_out]}, which is"
            f" {'missing' if items is None else schemas.json_type(items)}, not a list"
        )
    if len(items) > MAX_FAN_OUT:
        raise StepInputError(f"fans out to {len(items)} items; the most is {MAX_FAN_OUT}")
    return [{**values, step.fan_out: item} for item in items]


def _lookup(value: Any, path: Iterable[str]) -> Any:
    for key in path:
        if isinstance(value, dict) and key in value:
            value = value[key]
        elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        else:
            raise LookupError(key)
    return value


def run_outputs(spec: PipelineSpec, results: Mapping[str, Any]) -> dict[str, Any]:
    """A succeeded run's outputs: each leaf step's outputs (None for a skipped one)."""
    return {leaf: results.get(leaf) for leaf in spec.leaves}


def retry_steps(
    spec: PipelineSpec, progress: Mapping[str, StepProgress], marks: Mapping[str, StepMark]
) -> list[str]:
    """Steps whose jobs a resume runs again: failed or cancelled steps that have jobs."""
    bad = (StepStatus.FAILED, StepStatus.CANCELLED)
    return [
        s.name
        for s in spec.steps
        if s.name in progress and step_status(s, progress[s.name], marks.get(s.name)) in bad
    ]


def reopened_marks(marks: Mapping[str, StepMark]) -> dict[str, StepMark]:
    """Marks that stay when a run is reopened: cancelled and failed steps are decided again."""
    stay = (StepStatus.SKIPPED, StepStatus.SUCCEEDED)
    return {k: m for k, m in marks.items() if m.status in stay}


def cancel_marks(
    spec: PipelineSpec,
    progress: Mapping[str, StepProgress],
    marks: Mapping[str, StepMark],
    why: str,
) -> dict[str, StepMark]:
    """Marks for a cancelled run: every step that has not started yet is cancelled."""
    waiting = [n for n in spec.order if n not in progress and n not in marks]
    return {**marks, **{n: StepMark(status=StepStatus.CANCELLED, error=why) for n in waiting}}


def step_statuses(
    spec: PipelineSpec, progress: Mapping[str, StepProgress], marks: Mapping[str, StepMark]
) -> dict[str, StepStatus]:
    return {n: step_status(spec.step(n), progress.get(n), marks.get(n)) for n in spec.order}
