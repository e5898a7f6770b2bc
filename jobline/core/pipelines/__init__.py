"""Pipelines, decided without I/O: the DAG of steps, its checks, its JSON, its state machine.

A pipeline is a set of steps; each runs one job type. A step's inputs are its constant
``inputs`` plus its ``map``: input field -> reference, where a reference is ``input`` (the
pipeline's inputs) or a step's name, followed by a dotted path into that value
(``input.url``, ``fetch.body``, ``fetch`` for the whole outputs). A step runs once every step
it depends on (its ``after`` plus the steps its ``map`` reads) has succeeded.

Fan-out: a step with ``fan_out="field"`` runs one job per item of the list mapped to that
field. Fan-in: any step that reads a fanned-out step receives the list of its jobs' outputs
(or of the path in each), in item order.

Failure: a failed step (out of attempts) fails the run once nothing else can make progress;
the steps that depend on it are cancelled, other branches run to their end. With
``on_failure="skip"`` a failure does not fail the run: a plain step is skipped and so are the
steps that depend on it; in a fan-out only the failed items are dropped from the list the
next steps receive.

The parts: :mod:`.spec` (the definition and its checks), :mod:`.schemas` (what JSON Schemas
allow, for those checks), :mod:`.machine` (the run state machine) and :mod:`.plan` (advancing
runs as a sequence of queries that a store driver executes).
"""

from __future__ import annotations

from jobline.core.pipelines.machine import (
    Advance,
    StepMark,
    StepProgress,
    advance,
    cancel_marks,
    expand,
    reopened_marks,
    retry_steps,
    run_outputs,
    step_status,
    step_statuses,
)
from jobline.core.pipelines.spec import (
    FINISHED_STEP,
    INPUT,
    MAX_FAN_OUT,
    OnFailure,
    PipelineDefinitionError,
    PipelineSpec,
    Ref,
    RunStatus,
    Step,
    StepInputError,
    StepStatus,
    TypeInfo,
)

__all__ = [
    "FINISHED_STEP",
    "INPUT",
    "MAX_FAN_OUT",
    "Advance",
    "OnFailure",
    "PipelineDefinitionError",
    "PipelineSpec",
    "Ref",
    "RunStatus",
    "Step",
    "StepInputError",
    "StepMark",
    "StepProgress",
    "StepStatus",
    "TypeInfo",
    "advance",
    "cancel_marks",
    "expand",
    "reopened_marks",
    "retry_steps",
    "run_outputs",
    "step_status",
    "step_statuses",
]
