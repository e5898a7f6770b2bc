"""The pure core: retry policy, transitions after an attempt, input schemas."""

from __future__ import annotations

import pytest

from jobline.core.jobtypes import registry
from jobline.core.retry import RetryPolicy
from jobline.core.schema import InputsError
from jobline.core.states import JobStatus, Outcome, after_attempt

POLICY = RetryPolicy(base=2, factor=3, cap=100, jitter=0.5)


@pytest.mark.parametrize(
    ("attempt", "rand", "expected"),
    [(1, 0.5, 2), (2, 0.5, 6), (3, 0.5, 18), (5, 0.5, 100), (1, 0.0, 1), (1, 0.999999, 3)],
)
def test_RetryPolicy__exponential_capped_with_jitter(attempt, rand, expected):
    assert POLICY.delay(attempt, rand) == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize("bad", [{"base": -1}, {"factor": 0.5}, {"jitter": 2}])
def test_RetryPolicy__rejects_bad_values(bad):
    with pytest.raises(ValueError):
        RetryPolicy(**bad)


def test_after_attempt__success_and_cancel_are_final():
    for outcome, status in [
        (Outcome.SUCCEEDED, JobStatus.SUCCEEDED),
        (Outcome.CANCELLED, JobStatus.CANCELLED),
    ]:
        t = after_attempt(outcome, attempt=1, max_attempts=5, policy=POLICY, rand=0.5)
        assert t.status is status and t.retry_in is None


def test_after_attempt__error_retries_until_attempts_run_out():
    retried = after_attempt(Outcome.ERROR, attempt=2, max_attempts=3, policy=POLICY, rand=0.5)
    assert retried.status is JobStatus.QUEUED and retried.retry_in == pytest.approx(6)
    final = after_attempt(Outcome.TIMEOUT, attempt=3, max_attempts=3, policy=POLICY, rand=0.5)
    assert final.status is JobStatus.FAILED


def test_after_attempt__requested_delay_wins_over_policy():
    t = after_attempt(
        Outcome.RETRY, attempt=1, max_attempts=3, policy=POLICY, rand=0.5, requested_delay=42
    )
    assert t.retry_in == 42


def test_function_schema__from_signature():
    schema = registry.get("add").inputs.json_schema()
    assert schema["required"] == ["a"]
    assert schema["properties"]["a"]["type"] == "integer"
    assert schema["properties"]["b"]["default"] == 1
    assert schema["additionalProperties"] is False


def test_function_schema__error_names_each_field():
    with pytest.raises(InputsError) as info:
        registry.get("add").inputs.validate({"a": "x", "c": 1})
    fields = {e["field"] for e in info.value.errors}
    assert fields == {"a", "c"}
    assert "invalid inputs for job type 'add'" in str(info.value)


def test_class_schema__nested_pydantic_model():
    inputs = registry.get("scale").inputs
    assert "point" in inputs.json_schema()["properties"]
    with pytest.raises(InputsError) as info:
        inputs.validate({"point": {"x": 1, "y": -1}})
    assert info.value.errors[0]["field"] == "point.y"


def test_dataclass_inputs():
    greet = registry.get("greet")
    value = greet.inputs.validate({"name": "ada"})
    assert greet.inputs.to_json(value) == {"name": "ada", "punctuation": "!"}
    assert not greet.is_async


def test_builtin_types_registered():
    assert {"noop", "sleep"} <= set(registry.names())
    with pytest.raises(InputsError):
        registry.get("sleep").inputs.validate({"seconds": -1})
