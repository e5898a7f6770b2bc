"""Defining job types: errors a user can hit say what to do."""

from __future__ import annotations

import pytest

import jobline
from jobline.core.jobtypes import Registry
from jobline.exceptions import JobDefinitionError, UnknownJobType


def test_unknown_type_names_the_known_ones():
    with pytest.raises(UnknownJobType) as info:
        jobline.registry.get("nope")
    assert "noop" in str(info.value) and "jobs.py" in str(info.value)


def test_two_types_with_one_name_are_refused():
    reg = Registry()
    first = jobline.job(lambda: None, name="x")
    reg.add(first)

    def other() -> None: ...

    with pytest.raises(JobDefinitionError, match="pass name="):
        reg.add(jobline.job(other, name="x"))


def test_args_kwargs_cannot_be_inputs():
    def bad(*args): ...

    with pytest.raises(TypeError, match=r"\*args"):
        jobline.job(bad, name="bad_args")


def test_class_job_without_run_is_refused():
    with pytest.raises(JobDefinitionError, match="must define run"):

        class NoRun(jobline.Job):
            pass


def test_bad_options_are_refused():
    with pytest.raises(JobDefinitionError, match="max_attempts"):
        jobline.job(lambda: None, name="zero_attempts", max_attempts=0)


def test_run_inline():
    from jobline.testing import run_inline

    assert run_inline("add", {"a": 2, "b": 3}) == 5
    assert run_inline("scale", {"point": {"x": 1, "y": 2}}) == {"point": {"x": 2, "y": 4}}
    assert run_inline("greet", {"name": "bo"}) == "hello bo!"
