"""Pipeline definitions: steps, their wiring and options, their JSON, and the checks
against the job types' JSON Schemas."""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field
from typing import Any

from jobline.core.pipelines import schemas

INPUT = "input"  #: the reference source that names the pipeline's own inputs
MAX_FAN_OUT = 100_000  #: most jobs one step may fan out to
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,99}$")


class OnFailure(enum.StrEnum):
    FAIL = "fail"  #: the step's failure fails the run; dependants are cancelled
    SKIP = "skip"  #: the step is skipped (a fan-out drops the failed items); the run goes on


class RunStatus(enum.StrEnum):
    RUNNING = "running"  #: some step is queued, running or about to be
    SUCCEEDED = "succeeded"  #: every step succeeded or was skipped
    FAILED = "failed"  #: a step failed; nothing else can make progress
    CANCELLED = "cancelled"  #: cancelled on request (or a step's job was terminated)


class StepStatus(enum.StrEnum):
    WAITING = "waiting"  #: its parents have not all succeeded yet
    QUEUED = "queued"  #: its jobs wait for a worker
    RUNNING = "running"  #: some of its jobs run (or wait while others ran)
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"  #: will not run: a parent failed, or the run was cancelled
    SKIPPED = "skipped"  #: failed under ``on_failure="skip"``, or a parent was skipped


FINISHED_STEP = frozenset(
    {StepStatus.SUCCEEDED, StepStatus.FAILED, StepStatus.CANCELLED, StepStatus.SKIPPED}
)


class PipelineDefinitionError(ValueError):
    """A pipeline cannot be defined as given; ``problems`` lists each one, naming the step."""

    def __init__(self, pipeline: str, problems: Sequence[str]):
        self.pipeline = pipeline
        self.problems = list(problems)
        super().__init__(f"pipeline {pipeline!r}: " + "; ".join(self.problems))


class StepInputError(ValueError):
    """A ready step's inputs cannot be built from its parents' outputs (at run time)."""


@dataclass(frozen=True, slots=True)
class Ref:
    """A parsed reference: ``source`` (``input`` or a step name) and a path into its value."""

    source: str
    path: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> Ref:
        if not isinstance(text, str) or not text:
            raise ValueError(f"a reference must be a non-empty string, got {text!r}")
        source, *path = text.split(".")
        if not source or not all(path):
            raise ValueError(f"{text!r} is not a reference like 'input.url' or 'fetch.body'")
        return cls(source, tuple(path))

    def __str__(self) -> str:
        return ".".join((self.source, *self.path))


@dataclass(frozen=True, slots=True)
class Step:
    """One step: ``job_type`` (a name, or a job type / ``jobline.Job`` class) and its wiring."""

    name: str
    job_type: str
    _: KW_ONLY
    after: tuple[str, ...] = ()  #: steps to wait for besides those ``map`` reads
    map: Mapping[str, str] = field(default_factory=dict)  #: input field -> reference
    inputs: Mapping[str, Any] = field(default_factory=dict)  #: constant input values
    fan_out: str | None = None  #: a mapped field holding a list: one job per item
    on_failure: str = OnFailure.FAIL
    queue: str | None = None  #: None: the job type's (filled in when the pipeline is checked)
    priority: int | None = None
    max_attempts: int | None = None
    timeout: float | None = None
    requires: tuple[str, ...] = ()  #: worker tags; the job type's are added

    def __post_init__(self) -> None:
        if not isinstance(self.job_type, str):  # a JobType, or a class-based job
            named = getattr(self.job_type, "job_type", self.job_type)
            object.__setattr__(self, "job_type", getattr(named, "name", self.job_type))
        object.__setattr__(self, "after", tuple(self.after))
        object.__setattr__(self, "map", dict(self.map))
        object.__setattr__(self, "inputs", dict(self.inputs))
        object.__setattr__(self, "requires", tuple(self.requires))

    def refs(self) -> dict[str, Ref]:
        return {f: Ref.parse(text) for f, text in self.map.items()}


@dataclass(frozen=True, slots=True, kw_only=True)
class TypeInfo:
    """What a pipeline needs to know of a job type: its schemas and default options."""

    inputs: dict[str, Any]  #: JSON Schema of the inputs ({} when unknown)
    outputs: dict[str, Any]  #: JSON Schema of the outputs ({} when unknown)
    queue: str = "default"
    priority: int = 0
    max_attempts: int = 3
    timeout: float | None = None
    requires: tuple[str, ...] = ()


_STEP_KEYS = {
    "name",
    "job_type",
    "after",
    "map",
    "inputs",
    "fan_out",
    "on_failure",
    "queue",
    "priority",
    "max_attempts",
    "timeout",
    "requires",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class PipelineSpec:
    """A pipeline's definition. Building one checks its shape: names, references, cycles."""

    name: str
    steps: tuple[Step, ...]
    description: str = ""
    parents: Mapping[str, tuple[str, ...]] = field(init=False, repr=False, compare=False)
    order: tuple[str, ...] = field(init=False, repr=False, compare=False)  #: topological
    _by_name: Mapping[str, Step] = field(init=False, repr=False, compare=False)
    _refs: Mapping[str, dict[str, Ref]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", tuple(self.steps))
        problems = self._shape_problems()
        if problems:
            raise PipelineDefinitionError(str(self.name), problems)
        refs = {s.name: s.refs() for s in self.steps}
        parents = {}
        for s in self.steps:
            read = [r.source for r in refs[s.name].values() if r.source != INPUT]
            parents[s.name] = tuple(dict.fromkeys([*s.after, *read]))
        order, cycle = _topological(parents)
        if cycle:
            raise PipelineDefinitionError(self.name, [f"steps form a cycle: {' -> '.join(cycle)}"])
        object.__setattr__(self, "parents", parents)
        object.__setattr__(self, "order", order)
        object.__setattr__(self, "_by_name", {s.name: s for s in self.steps})
        object.__setattr__(self, "_refs", refs)

    # -- shape ---------------------------------------------------------------------------

    def _shape_problems(self) -> list[str]:
        if not isinstance(self.name, str) or not 0 < len(self.name) <= 200:
            return ["a pipeline name is 1 to 200 characters"]
        if not self.steps:
            return ["a pipeline needs at least one step"]
        names = [s.name for s in self.steps]
        problems = [f"two steps are named {n!r}" for n in sorted(set(names)) if names.count(n) > 1]
        for s in self.steps:
            problems += _step_problems(s, set(names))
        return problems

    def step(self, name: str) -> Step:
        return self._by_name[name]

    def refs(self, name: str) -> dict[str, Ref]:
        """A step's mapped inputs, parsed: field -> reference."""
        return self._refs[name]

    def reads(self, name: str) -> list[str]:
        """The steps whose outputs a step's inputs are built from."""
        return [r.source for r in self._refs[name].values() if r.source != INPUT]

    def children(self, name: str) -> list[str]:
        return [s for s in self.order if name in self.parents[s]]

    @property
    def roots(self) -> list[str]:
        return [s for s in self.order if not self.parents[s]]

    @property
    def leaves(self) -> list[str]:
        used = {p for ps in self.parents.values() for p in ps}
        return [s for s in self.order if s not in used]

    @property
    def edges(self) -> list[tuple[str, str]]:
        """``(parent, child)`` pairs, for drawing the graph."""
        return [(p, s) for s in self.order for p in self.parents[s]]

    # -- against the job types -----------------------------------------------------------

    def check(self, types: Mapping[str, TypeInfo]) -> None:
        """Check every step against its job type's schemas; raise listing every problem."""
        problems: list[str] = []
        for s in self.steps:
            info = types.get(s.job_type)
            if info is None:
                problems.append(f"step {s.name!r}: unknown job type {s.job_type!r}")
                continue
            problems += _field_problems(self, s, info, types)
        if not problems:
            problems = self._input_conflicts(types)
        if problems:
            raise PipelineDefinitionError(self.name, problems)

    def _input_conflicts(self, types: Mapping[str, TypeInfo]) -> list[str]:
        """Pipeline inputs that no value could satisfy: read by steps whose fields share no
        JSON type (an integer and a list), so every run would be refused at enqueue."""
        schema = self.inputs_schema(types)
        defs = schema.get("$defs", {})
        problems = []
        for name, prop in schema["properties"].items():
            readers = prop.get("allOf", [prop])
            kinds = [schemas.all_types(r, defs) for r in readers]
            known = [k for k in kinds if k is not None]
            if len(known) > 1 and not set.intersection(*known):
                steps = ", ".join(
                    repr(s.name) for s in self.steps if name in self._input_names(s.name)
                )
                described = " and ".join(schemas.describe(r, defs) for r in readers)
                problems.append(
                    f"input {name!r} is read by steps {steps} as {described}:"
                    " no value fits them all"
                )
        return problems

    def _input_names(self, step: str) -> set[str]:
        return {r.path[0] for r in self.refs(step).values() if r.source == INPUT and r.path}

    def resolve(self, types: Mapping[str, TypeInfo]) -> PipelineSpec:
        """The same pipeline with every step's options filled in from its job type."""

        def filled(s: Step) -> Step:
            t = types[s.job_type]
            return Step(
                s.name,
                s.job_type,
                after=s.after,
                map=s.map,
                inputs=s.inputs,
                fan_out=s.fan_out,
                on_failure=s.on_failure,
                queue=s.queue or t.queue,
                priority=t.priority if s.priority is None else s.priority,
                max_attempts=t.max_attempts if s.max_attempts is None else s.max_attempts,
                timeout=t.timeout if s.timeout is None else s.timeout,
                requires=tuple(sorted({*s.requires, *t.requires})),
            )

        return PipelineSpec(
            name=self.name, description=self.description, steps=tuple(map(filled, self.steps))
        )

    def inputs_schema(self, types: Mapping[str, TypeInfo]) -> dict[str, Any]:
        """The JSON Schema of the pipeline's inputs, derived from the steps that read them."""
        found: dict[str, list[Any]] = {}
        required: set[str] = set()
        defs: dict[str, Any] = {}
        for s in self.steps:
            schema = types[s.job_type].inputs
            for name, ref in s.refs().items():
                if ref.source != INPUT or not ref.path:
                    continue
                target: Any = {"type": "object"}
                if len(ref.path) == 1:
                    prop = schema.get("properties", {}).get(name, {})
                    target = schemas.embed(prop, schema.get("$defs", {}), defs, {})
                    if name == s.fan_out:
                        target = {"type": "array", "items": target}
                found.setdefault(ref.path[0], [])
                if target not in found[ref.path[0]]:
                    found[ref.path[0]].append(target)
                if name in schema.get("required", ()):
                    required.add(ref.path[0])
        props = {k: v[0] if len(v) == 1 else {"allOf": v} for k, v in found.items()}
        result: dict[str, Any] = {"type": "object", "properties": props}
        if required:
            result["required"] = sorted(required)
        if defs:
            result["$defs"] = defs
        return result

    def input_field(self, step: str, field_name: str) -> str | None:
        """The pipeline input that ``field_name`` of ``step`` is read from, if any."""
        ref = self.refs(step).get(field_name)
        return ref.path[0] if ref and ref.source == INPUT and ref.path else None

    # -- JSON ----------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """The definition as JSON data; ``edges`` is derived (and ignored by ``from_json``)."""
        return {
            "name": self.name,
            "description": self.description,
            "steps": [
                {
                    "name": s.name,
                    "job_type": s.job_type,
                    "after": list(s.after),
                    "map": dict(s.map),
                    "inputs": dict(s.inputs),
                    "fan_out": s.fan_out,
                    "on_failure": str(s.on_failure),
                    "queue": s.queue,
                    "priority": s.priority,
                    "max_attempts": s.max_attempts,
                    "timeout": s.timeout,
                    "requires": list(s.requires),
                }
                for s in self.steps
            ],
            "edges": [list(e) for e in self.edges],
        }

    @classmethod
    def from_json(cls, data: Any) -> PipelineSpec:
        """Read a definition written by :meth:`to_json` (or by hand, for the API)."""
        if not isinstance(data, dict):
            raise PipelineDefinitionError("?", ["a pipeline definition is a JSON object"])
        name = data.get("name")
        label = name if isinstance(name, str) else "?"
        unknown = sorted(set(data) - {"name", "description", "steps", "edges"})
        problems = [f"unknown field {k!r}" for k in unknown]
        if not isinstance(data.get("description", ""), str):
            problems.append("description must be a string")
        raw_steps = data.get("steps")
        if not isinstance(raw_steps, list):
            problems.append("steps must be a list of step objects")
            raw_steps = []
        steps = []
        for i, raw in enumerate(raw_steps):
            step, errors = _step_from_json(i, raw)
            problems += errors
            if step is not None:
                steps.append(step)
        if problems:
            raise PipelineDefinitionError(label, problems)
        return cls(name=name, description=data.get("description", ""), steps=tuple(steps))


def _step_problems(s: Step, names: set[str]) -> list[str]:
    where = f"step {s.name!r}"
    if not isinstance(s.name, str) or not _NAME.match(s.name) or s.name == INPUT:
        return [
            f"{where}: a step name is letters, digits, _ and - (starting with a letter or _),"
            f" at most 100 characters, and not {INPUT!r}"
        ]
    problems = []
    if not isinstance(s.job_type, str) or not s.job_type:
        problems.append(f"{where}: job_type must name a job type")
    problems += [f"{where}: waits for unknown step {a!r}" for a in s.after if a not in names]
    problems += [f"{where}: cannot wait for itself" for a in s.after if a == s.name]
    for fname, text in s.map.items():
        try:
            ref = Ref.parse(text)
        except ValueError as exc:
            problems.append(f"{where}: input {fname!r}: {exc}")
            continue
        if ref.source == s.name:
            problems.append(f"{where}: input {fname!r} reads the step's own outputs")
        elif ref.source != INPUT and ref.source not in names:
            problems.append(
                f"{where}: input {fname!r} reads {text!r}, but there is no step {ref.source!r}"
                f" (references start with {INPUT!r} or a step name)"
            )
    problems += [
        f"{where}: input {f!r} is both mapped and given a constant value"
        for f in s.map
        if f in s.inputs
    ]
    if s.fan_out is not None and s.fan_out not in s.map:
        problems.append(f"{where}: fan_out {s.fan_out!r} must be one of the mapped inputs")
    return problems + _option_problems(s)


def _option_problems(s: Step) -> list[str]:
    where = f"step {s.name!r}"
    problems = []
    if s.on_failure not in set(OnFailure):
        problems.append(f"{where}: on_failure must be 'fail' or 'skip', not {s.on_failure!r}")
    if s.queue is not None and not 0 < len(s.queue) <= 100:
        problems.append(f"{where}: a queue name is 1 to 100 characters")
    if s.priority is not None and not -100 <= s.priority <= 100:
        problems.append(f"{where}: priority must be between -100 and 100")
    if s.max_attempts is not None and s.max_attempts < 1:
        problems.append(f"{where}: max_attempts must be >= 1")
    if s.timeout is not None and s.timeout <= 0:
        problems.append(f"{where}: timeout must be > 0 seconds")
    return problems


def _step_from_json(i: int, raw: Any) -> tuple[Step | None, list[str]]:
    if not isinstance(raw, dict):
        return None, [f"steps[{i}] must be an object"]
    label = f"step {raw.get('name', i)!r}"
    problems = [f"{label}: unknown field {k!r}" for k in sorted(set(raw) - _STEP_KEYS)]
    kinds: dict[str, tuple[type | tuple[type, ...], bool]] = {
        "name": (str, False),
        "job_type": (str, False),
        "after": (list, True),
        "map": (dict, True),
        "inputs": (dict, True),
        "fan_out": (str, True),
        "on_failure": (str, True),
        "queue": (str, True),
        "priority": (int, True),
        "max_attempts": (int, True),
        "timeout": ((int, float), True),
        "requires": (list, True),
    }
    for key, (kind, optional) in kinds.items():
        value = raw.get(key)
        if value is None and optional:
            continue
        if not isinstance(value, kind) or isinstance(value, bool):
            problems.append(f"{label}: {key} has the wrong type ({type(value).__name__})")
    if isinstance(raw.get("map"), dict) and not all(
        isinstance(v, str) for v in raw["map"].values()
    ):
        problems.append(f"{label}: map values must be references (strings)")
    if problems:
        return None, problems
    option_keys = ("fan_out", "queue", "priority", "max_attempts", "timeout")
    options = {k: raw[k] for k in option_keys if k in raw}
    return Step(
        raw["name"],
        raw["job_type"],
        after=tuple(raw.get("after") or ()),
        map=raw.get("map") or {},
        inputs=raw.get("inputs") or {},
        on_failure=raw.get("on_failure") or OnFailure.FAIL,
        requires=tuple(raw.get("requires") or ()),
        **options,
    ), []


def _topological(parents: Mapping[str, tuple[str, ...]]) -> tuple[tuple[str, ...], list[str]]:
    """Steps in an order where parents come first (stable), or a cycle found instead."""
    done: dict[str, bool] = {}  # False while on the current path
    order: list[str] = []

    def visit(name: str, path: list[str]) -> list[str]:
        if done.get(name) is False:
            return [*path[path.index(name) :], name]
        if name in done:
            return []
        done[name] = False
        for p in parents[name]:
            if cycle := visit(p, [*path, name]):
                return cycle
        done[name] = True
        order.append(name)
        return []

    for name in parents:
        if cycle := visit(name, []):
            return (), cycle
    return tuple(order), []


# -- checks against the job types' schemas ------------------------------------------------


def _field_problems(
    spec: PipelineSpec, s: Step, info: TypeInfo, types: Mapping[str, TypeInfo]
) -> list[str]:
    where = f"step {s.name!r}"
    schema = info.inputs
    defs = schema.get("$defs", {})
    props = schema.get("properties")
    problems = []
    given = {*s.map, *s.inputs}
    if isinstance(props, dict):
        known = ", ".join(props) or "none"
        problems += [
            f"{where}: job type {s.job_type!r} has no input {f!r} (its inputs: {known})"
            for f in sorted(given - set(props))
        ]
        problems += [
            f"{where}: input {f!r} of job type {s.job_type!r} is required;"
            " map it or give it a constant value"
            for f in schema.get("required", ())
            if f not in given
        ]
    else:
        props = {}
    for fname, value in s.inputs.items():
        if fname in props:
            # jsonschema loads here, not with the module: workers import the pipelines'
            # state machine and never check a definition's inputs
            import jsonschema

            from jobline.core import safe_schema

            err = jsonschema.exceptions.best_match(
                safe_schema.validator({**props[fname], "$defs": defs}).iter_errors(value)
            )
            if err is not None:
                problems.append(f"{where}: constant input {fname!r} does not fit: {err.message}")
    for fname, ref in s.refs().items():
        if ref.source == INPUT or fname not in props:
            continue
        problems += _ref_problems(spec, s, fname, ref, (props[fname], defs), types)
    return problems


def _ref_problems(
    spec: PipelineSpec,
    s: Step,
    fname: str,
    ref: Ref,
    target: tuple[Any, dict[str, Any]],
    types: Mapping[str, TypeInfo],
) -> list[str]:
    where = f"step {s.name!r}: input {fname!r}"
    parent = spec.step(ref.source)
    outputs = types[parent.job_type].outputs if parent.job_type in types else {}
    odefs = outputs.get("$defs", {})
    found, missing = schemas.schema_at(outputs, odefs, ref.path)
    if missing:
        return [
            f"{where} reads {ref}, but the outputs of step {parent.name!r}"
            f" (job type {parent.job_type!r}) {missing}"
        ]
    source: Any = found
    if parent.fan_out is not None:  # fan-in: the list of every item's value
        source = {"type": "array", "items": found}
    dst, ddefs = target
    if fname == s.fan_out:
        node = schemas.resolve(source, odefs)
        kinds = schemas.types_of(node)
        if kinds is not None and kinds != {"array"}:
            found_kind = schemas.describe(source, odefs)
            return [f"{where} fans out over {ref}, which is {found_kind}, not a list"]
        source = node.get("items", {}) if kinds else {}
    if not schemas.fits(source, odefs, dst, ddefs):
        wanted, given = schemas.describe(dst, ddefs), schemas.describe(source, odefs)
        return [f"{where} ({wanted}) cannot take {ref} ({given})"]
    return []
