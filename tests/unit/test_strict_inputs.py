"""Inputs are strict by default: unknown keys and values of the wrong type are refused,
with the error naming the key, unless a job type opts out."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest
from pydantic import BaseModel

import jobline
from jobline.core.pipelines import PipelineDefinitionError
from jobline.core.schema import InputsError
from jobline.pipelines import Step


@jobline.job(name="strict_fn")
def strict_fn(delay: int = 0, when: datetime | None = None) -> None: ...


@jobline.job(name="lax_fn", strict=False)
def lax_fn(delay: int = 0) -> None: ...


class StrictModel(jobline.Job):
    name = "strict_model"

    class Inputs(BaseModel):  # pydantic's default would drop unknown keys
        delay: int = 0

    def run(self) -> None: ...


class LaxModel(jobline.Job):
    name = "lax_model"
    strict = False

    class Inputs(BaseModel):
        delay: int = 0

    def run(self) -> None: ...


class StrictDataclass(jobline.Job):
    name = "strict_dataclass"

    @dataclasses.dataclass
    class Inputs:
        delay: int = 0

    def run(self) -> None: ...


STRICT = [strict_fn, StrictModel.job_type, StrictDataclass.job_type]


def errors(job_type, inputs) -> list[tuple[str, str]]:
    with pytest.raises(InputsError) as info:
        job_type.inputs.validate(inputs)
    return [(e["field"], e["type"]) for e in info.value.errors]


@pytest.mark.parametrize("job_type", STRICT, ids=lambda t: t.name)
def test_unknown_key__refused_naming_it(job_type):
    # pydantic's word for it differs between models and dataclasses
    [(field, kind)] = errors(job_type, {"dealy": 5})
    assert (field, kind in {"extra_forbidden", "unexpected_keyword_argument"}) == ("dealy", True)


@pytest.mark.parametrize("job_type", STRICT, ids=lambda t: t.name)
def test_string_for_an_integer__refused_not_coerced(job_type):
    assert errors(job_type, {"delay": "5"}) == [("delay", "int_type")]


def test_strict__still_takes_what_json_carries():
    """A datetime arrives as an ISO string (from the API) or as a datetime (from Python)."""
    when = datetime(2030, 1, 2, 3, 4, tzinfo=UTC)
    assert strict_fn.inputs.validate({"when": "2030-01-02T03:04:00Z"}).when == when
    assert strict_fn.inputs.validate({"when": when, "delay": 2}).delay == 2


def test_opting_out__coerces_again():
    assert lax_fn.inputs.validate({"delay": "5"}).delay == 5
    assert LaxModel.job_type.inputs.validate({"delay": "5", "dealy": 1}).delay == 5


def test_enqueue_error_names_the_key():
    with pytest.raises(InputsError, match="dealy: Extra inputs are not permitted"):
        jobline.enqueue("strict_fn", {"dealy": 5})


@jobline.job(name="pl_wants_int")
def pl_wants_int(n: int) -> None: ...


@jobline.job(name="pl_wants_list")
def pl_wants_list(items: list[str]) -> None: ...


@jobline.job(name="pl_wants_number")
def pl_wants_number(n: float | None = None) -> None: ...


def test_pipeline__input_no_value_can_fit_is_refused_when_defined():
    with pytest.raises(PipelineDefinitionError) as info:
        jobline.pipeline(
            "unsatisfiable",
            steps=[
                Step("count", pl_wants_int, map={"n": "input.x"}),
                Step("names", pl_wants_list, map={"items": "input.x"}),
            ],
        )
    assert info.value.problems == [
        "input 'x' is read by steps 'count', 'names' as integer and array of string:"
        " no value fits them all"
    ]


def test_pipeline__inputs_that_overlap_are_accepted():
    p = jobline.pipeline(
        "overlapping",
        steps=[
            Step("count", pl_wants_int, map={"n": "input.x"}),
            Step("scale", pl_wants_number, map={"n": "input.x"}),
        ],
    )
    assert p.inputs_schema()["required"] == ["x"]
