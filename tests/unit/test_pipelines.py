"""The pipeline core: shape and schema checks, JSON, the state machine, building inputs."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

import jobline
from jobline.core.pipelines import (
    MAX_FAN_OUT,
    OnFailure,
    PipelineDefinitionError,
    PipelineSpec,
    Ref,
    RunStatus,
    Step,
    StepInputError,
    StepMark,
    StepProgress,
    StepStatus,
    advance,
    cancel_marks,
    expand,
    reopened_marks,
    retry_steps,
    run_outputs,
    step_status,
)
from jobline.pipelines import Pipeline, PipelineInputsError, PipelineRegistry

S, W, Q, R = StepStatus.SUCCEEDED, StepStatus.WAITING, StepStatus.QUEUED, StepStatus.RUNNING


def spec(*steps: Step, name: str = "p") -> PipelineSpec:
    return PipelineSpec(name=name, steps=steps)


def problems(*steps: Step) -> list[str]:
    with pytest.raises(PipelineDefinitionError) as info:
        Pipeline(spec(*steps)).check()
    return info.value.problems


FAN = spec(
    Step("split", "pl_range", map={"count": "input.count"}),
    Step("square", "pl_square", map={"x": "split.items"}, fan_out="x"),
    Step("total", "pl_total", map={"values": "square.n"}),
)


# -- shape ---------------------------------------------------------------------------------


def test_Ref__parse():
    assert Ref.parse("fetch.body.0") == Ref("fetch", ("body", "0"))
    assert str(Ref.parse("input")) == "input"
    for bad in ("", "a..b", ".a", "a."):
        with pytest.raises(ValueError):
            Ref.parse(bad)


def test_PipelineSpec__order_parents_and_edges():
    p = spec(
        Step("c", "pl_total", map={"values": "b"}, after=["a"]),
        Step("a", "pl_add", map={"n": "input.n"}),
        Step("b", "pl_add", map={"n": "a.n"}),
    )
    assert p.order == ("a", "b", "c")
    assert p.parents == {"c": ("a", "b"), "a": (), "b": ("a",)}
    assert p.edges == [("a", "b"), ("a", "c"), ("b", "c")]
    assert (p.roots, p.leaves, p.children("a")) == (["a"], ["c"], ["b", "c"])


def test_PipelineSpec__reports_every_shape_problem_naming_the_step():
    with pytest.raises(PipelineDefinitionError) as info:
        spec(
            Step("a", "x", after=["ghost"], map={"f": "nobody.out", "g": "a.x", "h": "bad..ref"}),
            Step("a", "x"),
            Step("input", "x"),
            Step("b", "x", map={"f": "input.f"}, inputs={"f": 1}, fan_out="nope"),
            Step("c", "x", on_failure="explode", priority=500, max_attempts=0, timeout=-1),
        )
    assert info.value.problems == [
        "two steps are named 'a'",
        "step 'a': waits for unknown step 'ghost'",
        "step 'a': input 'f' reads 'nobody.out', but there is no step 'nobody'"
        " (references start with 'input' or a step name)",
        "step 'a': input 'g' reads the step's own outputs",
        "step 'a': input 'h': 'bad..ref' is not a reference like 'input.url' or 'fetch.body'",
        "step 'input': a step name is letters, digits, _ and - (starting with a letter or _),"
        " at most 100 characters, and not 'input'",
        "step 'b': input 'f' is both mapped and given a constant value",
        "step 'b': fan_out 'nope' must be one of the mapped inputs",
        "step 'c': on_failure must be 'fail' or 'skip', not 'explode'",
        "step 'c': priority must be between -100 and 100",
        "step 'c': max_attempts must be >= 1",
        "step 'c': timeout must be > 0 seconds",
    ]
    assert str(info.value).startswith("pipeline 'p': two steps are named 'a'; ")


def test_PipelineSpec__refuses_cycles_naming_them():
    with pytest.raises(PipelineDefinitionError, match=r"cycle: a -> c -> b -> a"):
        spec(
            Step("a", "x", after=["c"]), Step("b", "x", after=["a"]), Step("c", "x", map={"v": "b"})
        )
    with pytest.raises(PipelineDefinitionError, match="at least one step"):
        spec()


def test_Step__takes_job_type_objects():
    from tests.example_app.jobs import Scale, pl_add

    assert Step("a", pl_add).job_type == "pl_add"
    assert Step("b", Scale).job_type == "scale"


# -- schemas -------------------------------------------------------------------------------


def test_check__accepts_well_typed_wiring():
    Pipeline(FAN).check()


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        (
            [
                Step("r", "pl_range", inputs={"count": 2}),
                Step("t", "pl_total", map={"values": "r.itms"}),
            ],
            "step 't': input 'values' reads r.itms, but the outputs of step 'r' (job type"
            " 'pl_range') have no field 'itms' (fields: items)",
        ),
        (
            [Step("a", "pl_add", inputs={"n": 1}), Step("t", "pl_total", map={"values": "a.n"})],
            "step 't': input 'values' (array of integer) cannot take a.n (integer)",
        ),
        (
            [Step("a", "pl_add", inputs={"n": 1}), Step("b", "pl_add", map={"n": "a.n.deeper"})],
            "step 'b': input 'n' reads a.n.deeper, but the outputs of step 'a' (job type 'pl_add')"
            " are integer, which has no field 'deeper'",
        ),
        (
            [
                Step("a", "pl_add", inputs={"n": 1}),
                Step("s", "pl_square", map={"x": "a.n"}, fan_out="x"),
            ],
            "step 's': input 'x' fans out over a.n, which is integer, not a list",
        ),
        (
            [Step("g", "flaky", inputs={"fail_times": 0}), Step("a", "pl_add", map={"n": "g"})],
            "step 'a': input 'n' (integer) cannot take g (string)",
        ),
        (
            [Step("a", "pl_add", inputs={"n": 1, "nope": 2})],
            "step 'a': job type 'pl_add' has no input 'nope' (its inputs: n, plus)",
        ),
        (
            [Step("a", "pl_add", inputs={"plus": 2})],
            "step 'a': input 'n' of job type 'pl_add' is required;"
            " map it or give it a constant value",
        ),
        (
            [Step("a", "pl_add", inputs={"n": "ten"})],
            "step 'a': constant input 'n' does not fit: 'ten' is not of type 'integer'",
        ),
        ([Step("a", "no_such_type")], "step 'a': unknown job type 'no_such_type'"),
    ],
)
def test_check__names_the_step_and_field(steps, expected):
    assert problems(*steps) == [expected]


class Maybe(BaseModel):
    n: int | None = None


def test_check__optional_and_nested_schemas():
    @jobline.job(name="t_maybe_out")
    async def maybe_out() -> Maybe:
        return Maybe()

    @jobline.job(name="t_floats")
    async def floats(values: list[float], label: str | None = None) -> None: ...

    # null may not go where only an integer fits; an integer fits a number; fan-in of a fan-out
    assert problems(Step("m", "t_maybe_out"), Step("a", "pl_add", map={"n": "m.n"})) == [
        "step 'a': input 'n' (integer) cannot take m.n (integer or null)"
    ]
    Pipeline(spec(*FAN.steps[:2], Step("f", "t_floats", map={"values": "square.n"}))).check()
    # a nested model travels whole into a field of the same shape
    Pipeline(
        spec(
            Step("s", "scale", inputs={"point": {"x": 1}}),
            Step("t", "scale", map={"point": "s.point"}),
        )
    ).check()


def test_check__waits_for_job_types_registered_later():
    late = Pipeline(spec(Step("a", "t_registered_later", inputs={"n": 1})))
    with pytest.raises(PipelineDefinitionError, match="unknown job type 't_registered_later'"):
        late.check()

    @jobline.job(name="t_registered_later")
    async def registered_later(n: int) -> None: ...

    late.check()


def test_inputs_schema__derived_from_the_steps_that_read_them():
    p = Pipeline(
        spec(
            Step("a", "pl_add", map={"n": "input.n", "plus": "input.plus"}),
            Step("s", "pl_square", map={"x": "input.xs"}, fan_out="x"),
            Step("p", "scale", map={"point": "input.point"}),
        )
    )
    schema = p.inputs_schema()
    assert schema["required"] == ["n", "point", "xs"]  # plus has a default
    assert schema["properties"]["xs"] == {
        "type": "array",
        "items": {"title": "X", "type": "integer"},
    }
    assert schema["properties"]["point"] == {"$ref": "#/$defs/Point"}
    assert schema["$defs"]["Point"]["properties"]["x"]["type"] == "integer"
    p.validate_inputs({"n": 1, "xs": [1], "point": {"x": 1}})
    with pytest.raises(PipelineInputsError) as info:
        p.validate_inputs({"n": "one", "xs": 3, "point": {"y": -1}})
    assert [e["field"] for e in info.value.errors] == [
        "n",
        "point.x",
        "point.y",
        "xs",
    ]  # the missing field named
    assert str(info.value).startswith("invalid inputs for pipeline 'p': n: 'one' is not of type")


def test_validate_inputs__builds_the_first_jobs_as_the_run_will():
    p = Pipeline(spec(Step("s", "pl_square", map={"x": "input.data.xs"}, fan_out="x")))
    p.validate_inputs({"data": {"xs": [1, 2]}})
    with pytest.raises(PipelineInputsError) as info:
        p.validate_inputs({"data": {"xs": "abc"}})  # the schema cannot tell; building can
    assert info.value.errors == [
        {
            "field": "data",
            "message": "step 's': fans out over input.data.xs, which is string, not a list",
            "type": "fan_out",
        }
    ]


# -- JSON ----------------------------------------------------------------------------------


def test_json__round_trip_with_derived_edges():
    p = spec(
        Step("a", "pl_add", map={"n": "input.n"}, queue="q", priority=3, timeout=2.5),
        Step("b", "pl_square", map={"x": "a.n"}, on_failure="skip", max_attempts=4),
    )
    data = p.to_json()
    assert data["edges"] == [["a", "b"]]
    assert data["steps"][1] == {
        "name": "b",
        "job_type": "pl_square",
        "after": [],
        "map": {"x": "a.n"},
        "inputs": {},
        "fan_out": None,
        "on_failure": "skip",
        "queue": None,
        "priority": None,
        "max_attempts": 4,
        "timeout": None,
        "requires": [],
    }
    assert PipelineSpec.from_json(data) == p
    minimal = PipelineSpec.from_json({"name": "m", "steps": [{"name": "a", "job_type": "noop"}]})
    assert minimal.steps[0].on_failure == OnFailure.FAIL


def test_json__refuses_bad_documents_listing_the_problems():
    with pytest.raises(PipelineDefinitionError) as info:
        PipelineSpec.from_json(
            {
                "name": "j",
                "colour": "red",
                "steps": [
                    {"name": "a", "job_type": 5, "map": {"x": 1}, "oops": True},
                    "not a step",
                ],
            }
        )
    assert info.value.problems == [
        "unknown field 'colour'",
        "step 'a': unknown field 'oops'",
        "step 'a': job_type has the wrong type (int)",
        "step 'a': map values must be references (strings)",
        "steps[1] must be an object",
    ]
    with pytest.raises(PipelineDefinitionError, match="JSON object"):
        PipelineSpec.from_json([])


def test_resolve__fills_options_from_the_job_types():
    resolved = Pipeline(
        spec(Step("a", "gpu_only"), Step("b", "flaky", inputs={"fail_times": 0}, max_attempts=9))
    ).check()
    a, b = resolved.steps
    assert (a.queue, a.priority, a.max_attempts, a.requires) == ("default", 0, 3, ("gpu",))
    assert (b.max_attempts, b.timeout) == (9, None)


def test_PipelineRegistry__one_name_one_module():
    reg = PipelineRegistry()
    p = Pipeline(spec(Step("a", "noop"), name="dup"))
    reg.add(p, "app1.jobs")
    reg.add(p, "app1.jobs")  # re-imported: fine
    with pytest.raises(PipelineDefinitionError, match=r"already defined in app1\.jobs"):
        reg.add(p, "app2.jobs")
    assert reg.names() == ["dup"] and list(reg) == [p]


# -- state machine -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("progress", "fan_out", "on_failure", "expected"),
    [
        (None, None, "fail", StepStatus.WAITING),
        (StepProgress(queued=2), "x", "fail", StepStatus.QUEUED),
        (StepProgress(queued=1, succeeded=1), "x", "fail", StepStatus.RUNNING),
        (StepProgress(running=1), None, "fail", StepStatus.RUNNING),
        (StepProgress(succeeded=3), "x", "fail", StepStatus.SUCCEEDED),
        (StepProgress(succeeded=2, failed=1), "x", "fail", StepStatus.FAILED),
        (StepProgress(cancelled=1), None, "fail", StepStatus.CANCELLED),
        (StepProgress(failed=1), None, "skip", StepStatus.SKIPPED),
        (StepProgress(succeeded=2, failed=1), "x", "skip", StepStatus.SUCCEEDED),
    ],
)
def test_step_status(progress, fan_out, on_failure, expected):
    step = Step(
        "s", "t", map={"x": "input.x"} if fan_out else {}, fan_out=fan_out, on_failure=on_failure
    )
    assert step_status(step, progress, None) is expected


def test_advance__a_chain_one_step_at_a_time():
    p = spec(Step("a", "t"), Step("b", "t", after=["a"]), Step("c", "t", after=["b"]))
    first = advance(p, {}, {})
    assert (first.ready, first.status) == (("a",), RunStatus.RUNNING)
    second = advance(p, {"a": StepProgress(succeeded=1)}, {})
    assert second.ready == ("b",) and second.steps == {"a": S, "b": W, "c": W}
    waiting = advance(p, {"a": StepProgress(succeeded=1), "b": StepProgress(running=1)}, {})
    assert (waiting.ready, waiting.status) == ((), RunStatus.RUNNING)
    done = advance(p, dict.fromkeys("abc", StepProgress(succeeded=1)), {})
    assert (done.ready, done.status, done.error) == ((), RunStatus.SUCCEEDED, "")


def test_advance__fan_in_waits_for_every_item():
    running = advance(
        FAN, {"split": StepProgress(succeeded=1), "square": StepProgress(queued=3, succeeded=7)}, {}
    )
    assert running.ready == ()
    done = advance(
        FAN, {"split": StepProgress(succeeded=1), "square": StepProgress(succeeded=10)}, {}
    )
    assert done.ready == ("total",)


def test_advance__a_failure_cancels_dependants_and_fails_the_run_once_all_is_done():
    p = spec(
        Step("a", "t"),
        Step("b", "t", after=["a"]),
        Step("c", "t", after=["b"]),
        Step("side", "t"),
    )
    progress = {"a": StepProgress(failed=1, error="Boom: no"), "side": StepProgress(running=1)}
    mid = advance(p, progress, {})
    assert mid.marks == {
        "b": StepMark(status=StepStatus.CANCELLED, error="step 'a' failed"),
        "c": StepMark(status=StepStatus.CANCELLED, error="step 'b' cancelled"),
    }
    assert mid.status is RunStatus.RUNNING  # the other branch still runs
    end = advance(p, {**progress, "side": StepProgress(succeeded=1)}, mid.marks)
    assert (end.status, end.error) == (RunStatus.FAILED, "step 'a' failed: Boom: no")


def test_advance__skips_spread_and_do_not_fail_the_run():
    p = spec(
        Step("a", "t", on_failure="skip"),
        Step("b", "t", after=["a"]),
        Step("c", "t"),
    )
    adv = advance(p, {"a": StepProgress(failed=1), "c": StepProgress(succeeded=1)}, {})
    assert adv.marks == {"b": StepMark(status=StepStatus.SKIPPED, error="step 'a' was skipped")}
    assert adv.status is RunStatus.SUCCEEDED


def test_advance__cancelled_step_jobs_cancel_the_run():
    p = spec(Step("a", "t"), Step("b", "t", after=["a"]))
    adv = advance(p, {"a": StepProgress(cancelled=1, error="terminated on request")}, {})
    assert (adv.status, adv.error) == (
        RunStatus.CANCELLED,
        "step 'a' was cancelled: terminated on request",
    )


def test_expand__maps_constants_inputs_and_outputs():
    p = spec(
        Step("a", "t"),
        Step("b", "t", map={"x": "a.out.0", "y": "input.y", "z": "input.missing"}, inputs={"k": 1}),
    )
    assert expand(p, "b", {"y": "why"}, {"a": {"out": [5, 6]}}) == [{"k": 1, "x": 5, "y": "why"}]
    with pytest.raises(StepInputError, match=r"input 'x': a\.out\.0 is missing from the outputs"):
        expand(p, "b", {}, {"a": {"out": []}})


def test_expand__fans_out_and_in():
    assert expand(FAN, "square", {}, {"split": {"items": [3, 4]}}) == [{"x": 3}, {"x": 4}]
    assert expand(FAN, "square", {}, {"split": {"items": []}}) == []
    fan_in = expand(FAN, "total", {}, {"square": [{"n": 9}, {"n": 16}]})
    assert fan_in == [{"values": [9, 16]}]
    with pytest.raises(StepInputError, match=r"fans out over split\.items, which is string, not"):
        expand(FAN, "square", {}, {"split": {"items": "abc"}})
    with pytest.raises(StepInputError, match=f"the most is {MAX_FAN_OUT}"):
        expand(FAN, "square", {}, {"split": {"items": [0] * (MAX_FAN_OUT + 1)}})


def test_resume_and_cancel_helpers():
    p = spec(Step("a", "t"), Step("b", "t", after=["a"]), Step("c", "t", on_failure="skip"))
    progress = {"a": StepProgress(failed=1), "c": StepProgress(failed=1)}
    marks = {"b": StepMark(status=StepStatus.CANCELLED)}
    assert retry_steps(p, progress, marks) == ["a"]  # c was skipped, not failed
    kept = StepMark(status=StepStatus.SKIPPED)
    assert reopened_marks({**marks, "x": kept}) == {"x": kept}
    cancelled = cancel_marks(p, {"a": StepProgress(running=1)}, {}, "the run was cancelled")
    assert set(cancelled) == {"b", "c"}
    assert run_outputs(p, {"b": {"n": 1}}) == {"b": {"n": 1}, "c": None}
