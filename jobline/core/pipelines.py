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
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field
from typing import Any

import jsonschema

INPUT = "input"  #: the reference source that names the pipeline's own inputs
MAX_FAN_OUT = 100_000  #: most jobs one step may fan out to
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,99}$")
_DEFS = "#/$defs/"


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
            kinds = [_all_types(r, defs) for r in readers]
            known = [k for k in kinds if k is not None]
            if len(known) > 1 and not set.intersection(*known):
                steps = ", ".join(
                    repr(s.name) for s in self.steps if name in self._input_names(s.name)
                )
                described = " and ".join(_describe(r, defs) for r in readers)
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
                    target = _embed(prop, schema.get("$defs", {}), defs, {})
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


# -- schemas -----------------------------------------------------------------------------


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
            err = jsonschema.exceptions.best_match(
                jsonschema.Draft202012Validator({**props[fname], "$defs": defs}).iter_errors(value)
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
    found, missing = _at(outputs, odefs, ref.path)
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
        node = _node(source, odefs)
        kinds = _types(node)
        if kinds is not None and kinds != {"array"}:
            return [f"{where} fans out over {ref}, which is {_describe(source, odefs)}, not a list"]
        source = node.get("items", {}) if kinds else {}
    if not _fits(source, odefs, dst, ddefs):
        return [f"{where} ({_describe(dst, ddefs)}) cannot take {ref} ({_describe(source, odefs)})"]
    return []


def _node(schema: Any, defs: Mapping[str, Any]) -> dict[str, Any]:
    """``schema`` with local ``$ref`` s followed; anything unreadable counts as "any"."""
    for _ in range(32):
        if not isinstance(schema, dict):
            return {}
        ref = schema.get("$ref")
        if not isinstance(ref, str):
            return schema
        if not ref.startswith(_DEFS):
            return {}
        schema = defs.get(ref[len(_DEFS) :], {})
    return {}


def _branches(schema: dict[str, Any]) -> list[Any] | None:
    found = schema.get("anyOf") or schema.get("oneOf")
    return found if isinstance(found, list) else None


def _json_type(value: Any) -> str:
    kinds = [
        (bool, "boolean"),
        (int, "integer"),
        (float, "number"),
        (str, "string"),
        (list, "array"),
        (dict, "object"),
    ]
    return next((name for kind, name in kinds if isinstance(value, kind)), "null")


def _types(schema: dict[str, Any]) -> set[str] | None:
    """The JSON types a schema allows; None when it does not say (any)."""
    kind = schema.get("type")
    if isinstance(kind, str):
        return {kind}
    if isinstance(kind, list):
        return set(kind)
    if "const" in schema:
        return {_json_type(schema["const"])}
    if isinstance(schema.get("enum"), list):
        return {_json_type(v) for v in schema["enum"]}
    return None


def _all_types(schema: Any, defs: Mapping[str, Any]) -> set[str] | None:
    """The JSON types a schema allows, its ``anyOf`` branches included (an integer is also a
    number); None when any part does not say."""
    node = _node(schema, defs)
    if (branches := _branches(node)) is not None:
        found = [_all_types(b, defs) for b in branches]
        return None if None in found else set().union(*found)
    kinds = _types(node)
    if kinds is not None and "integer" in kinds:
        kinds = kinds | {"number"}
    if kinds is not None and "number" in kinds:
        kinds = kinds | {"integer"}  # 3.0 is a number and, to JSON Schema, an integer
    return kinds


def _fits(src: Any, sdefs: Mapping[str, Any], dst: Any, ddefs: Mapping[str, Any]) -> bool:
    """Whether every value ``src`` allows is allowed by ``dst`` (as far as the types tell)."""
    src, dst = _node(src, sdefs), _node(dst, ddefs)
    if (branches := _branches(src)) is not None:
        return all(_fits(b, sdefs, dst, ddefs) for b in branches)
    if (branches := _branches(dst)) is not None:
        return any(_fits(src, sdefs, b, ddefs) for b in branches)
    st, dt = _types(src), _types(dst)
    if st is None or dt is None:
        return True
    if not all(t in dt or (t == "integer" and "number" in dt) for t in st):
        return False
    if "array" in st and "array" in dt:
        return _fits(src.get("items", {}), sdefs, dst.get("items", {}), ddefs)
    if "object" in st and "object" in dt:
        sp, dp = src.get("properties"), dst.get("properties")
        if isinstance(sp, dict) and isinstance(dp, dict):
            if any(name not in sp for name in dst.get("required", ())):
                return False
            return all(_fits(sp[k], sdefs, v, ddefs) for k, v in dp.items() if k in sp)
    return True


def _describe(schema: Any, defs: Mapping[str, Any]) -> str:
    schema = _node(schema, defs)
    if (branches := _branches(schema)) is not None:
        return " or ".join(_describe(b, defs) for b in branches)
    kinds = _types(schema)
    if kinds is None:
        return "any"
    names = []
    for kind in sorted(kinds):
        items = schema.get("items")
        if kind == "array" and isinstance(items, dict) and _types(_node(items, defs)):
            names.append(f"array of {_describe(items, defs)}")
        else:
            names.append(kind)
    return " or ".join(names)


def _at(
    schema: Any, defs: Mapping[str, Any], path: Sequence[str]
) -> tuple[dict[str, Any], str | None]:
    """The schema found at ``path``; or ``({}, None)`` when unknown; or a reason it is missing."""
    for key in path:
        node = _node(schema, defs)
        branches = _branches(node)
        if branches is not None:  # Optional[Model]: look inside the non-null branch
            real = [b for b in branches if _types(_node(b, defs)) != {"null"}]
            if len(real) != 1:
                return {}, None
            node = _node(real[0], defs)
        kinds = _types(node)
        if kinds is None:
            return {}, None
        if "object" in kinds:
            props, extra = node.get("properties"), node.get("additionalProperties")
            if isinstance(props, dict) and key in props:
                schema = props[key]
            elif isinstance(extra, dict):
                schema = extra
            elif isinstance(props, dict) and extra is not True:
                return {}, f"have no field {key!r} (fields: {', '.join(props) or 'none'})"
            else:
                return {}, None
        elif "array" in kinds and key.isdigit():
            schema = node.get("items", {})
        else:
            return {}, f"are {_describe(node, defs)}, which has no field {key!r}"
    return _node(schema, defs) if isinstance(schema, dict) else {}, None


def _embed(node: Any, src_defs: Mapping[str, Any], out: dict[str, Any], names: dict[str, str]):
    """Copy ``node`` into another schema, moving the ``$defs`` it uses into ``out``."""
    if isinstance(node, list):
        return [_embed(x, src_defs, out, names) for x in node]
    if not isinstance(node, dict):
        return node
    copy = {}
    for key, value in node.items():
        if key == "$ref" and isinstance(value, str) and value.startswith(_DEFS):
            name = value[len(_DEFS) :]
            if name not in names:  # a new name, so two job types' "Point"s do not clash
                new, n = name, 1
                while new in out:
                    n += 1
                    new = f"{name}{n}"
                names[name] = new
                out[new] = {}
                out[new] = _embed(src_defs.get(name, {}), src_defs, out, names)
            copy[key] = _DEFS + names[name]
        else:
            copy[key] = _embed(value, src_defs, out, names)
    return copy


# -- the state machine -------------------------------------------------------------------


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
            f" {'missing' if items is None else _json_type(items)}, not a list"
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
