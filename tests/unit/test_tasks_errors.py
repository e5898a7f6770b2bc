"""How failures become the exception classes on django.tasks results."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from jobline.tasks import _exception_path
from jobline.worker.executor import exception_name


class Declined(Exception):
    pass


DECLINED = "tests.unit.test_tasks_errors.Declined"


def test_exception_name__qualified_unless_built_in():
    assert exception_name(ValueError("x")) == "ValueError"
    assert exception_name(Declined()) == DECLINED


@pytest.mark.parametrize(
    ("status", "error", "traceback", "path"),
    [
        ("failed", f"{DECLINED}: card: expired", "Traceback ...", DECLINED),
        ("failed", "ValueError: ", "Traceback ...", "builtins.ValueError"),
        ("cancelled", "terminated on request", "", "asyncio.exceptions.CancelledError"),
        ("failed", "timed out after 0.2 s", "", "builtins.TimeoutError"),
        ("failed", "worker lost: its lease expired", "", "jobline.exceptions.JoblineError"),
        ("failed", "no such user: 42", "", "jobline.exceptions.Fail"),
    ],
)
def test_exception_path__from_the_stored_error(status, error, traceback, path):
    job = SimpleNamespace(status=status, error=error, traceback=traceback)
    assert _exception_path(job) == path
