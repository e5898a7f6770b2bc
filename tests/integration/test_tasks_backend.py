"""jobline as a backend of Django's tasks framework, on real SQLite and PostgreSQL.

Tasks are read and run through the framework's own API (``django.tasks`` on Django 6,
the ``django-tasks`` backport on Django 5.2); workers are real jobline workers.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from django.core.exceptions import ImproperlyConfigured
from django.db import connections, transaction
from django.test import override_settings
from django.utils import timezone

import jobline
from jobline.models import Job
from jobline.services import actions
from jobline.testing import drain
from tests.conftest import ALL_DATABASES, ROOT
from tests.example_app import tasks

try:
    from django.tasks import TaskResultStatus, task, task_backends
    from django.tasks.exceptions import InvalidTask, TaskResultDoesNotExist, TaskResultMismatch
    from django.tasks.signals import task_enqueued, task_finished, task_started
except ImportError:  # Django 5.2: the django-tasks backport
    from django_tasks import TaskResultStatus, task, task_backends
    from django_tasks.exceptions import InvalidTaskError as InvalidTask
    from django_tasks.exceptions import TaskResultDoesNotExist, TaskResultMismatch
    from django_tasks.signals import task_enqueued, task_finished, task_started

pytestmark = ALL_DATABASES

READY, RUNNING = TaskResultStatus.READY, TaskResultStatus.RUNNING
SUCCESSFUL, FAILED = TaskResultStatus.SUCCESSFUL, TaskResultStatus.FAILED


def tasks_setting(alias: str, **options: object) -> dict[str, object]:
    return {
        "default": {
            "BACKEND": "jobline.tasks.Backend",
            "QUEUES": ["default", "mail"],
            "OPTIONS": {"database": alias, **options},
        }
    }


@pytest.fixture
def backend(alias):
    """The default tasks backend, writing to and reading from the database under test."""
    with override_settings(TASKS=tasks_setting(alias)):
        yield task_backends["default"]


def _row(alias: str, result) -> Job:
    return Job.objects.using(alias).get(pk=int(result.id))


def _plain(): ...


not_a_task = task(_plain)  # its module path names the function, not the task


def test_Backend__declares_what_it_supports(backend):
    assert backend.supports_defer and backend.supports_async_task
    assert backend.supports_get_result and backend.supports_priority


def test_Backend__options_are_checked(alias):
    with override_settings(TASKS=tasks_setting(alias, retries=2)):
        with pytest.raises(ImproperlyConfigured, match="unknown OPTIONS"):
            task_backends["default"]
    with override_settings(TASKS=tasks_setting("nowhere")):
        errors = list(task_backends["default"].check())
        assert [e.id for e in errors] == ["jobline.E002"]
    with override_settings(TASKS=tasks_setting(alias, max_attempts=2)):
        assert _row(alias, tasks.add.enqueue(1, 1)).max_attempts == 2


def test_enqueue__returns_a_ready_result_and_writes_a_job(backend, alias):
    result = tasks.add.enqueue(2, b=3)
    assert (result.status, result.args, result.kwargs) == (READY, [2], {"b": 3})
    assert result.task is tasks.add and result.backend == "default"
    assert result.enqueued_at is not None and result.attempts == 0
    row = _row(alias, result)
    assert row.type == "django_task:tests.example_app.tasks.add"
    assert row.inputs == {"args": [2], "kwargs": {"b": 3}}
    assert (row.status, row.queue, row.priority, row.max_attempts) == ("queued", "default", 0, 1)
    fetched = tasks.add.get_result(result.id)
    assert (fetched.id, fetched.status, fetched.args, fetched.kwargs) == (
        result.id,
        READY,
        [2],
        {"b": 3},
    )
    assert fetched.enqueued_at == row.created_at and not fetched.is_finished
    with pytest.raises(ValueError, match="not finished"):
        fetched.return_value  # noqa: B018


def test_worker__runs_sync_and_async_tasks_and_stores_return_values(backend, alias):
    sync_result = tasks.add.enqueue(2, 3)
    async_result = tasks.async_add.enqueue(a=1)
    assert drain(2, using=alias) == 2
    sync_result.refresh()
    assert (sync_result.status, sync_result.return_value) == (SUCCESSFUL, 5)
    assert sync_result.is_finished and sync_result.attempts == 1 and not sync_result.errors
    assert sync_result.started_at <= sync_result.finished_at
    fetched = tasks.async_add.get_result(async_result.id)
    assert (fetched.status, fetched.return_value) == (SUCCESSFUL, {"sum": 2})


def test_priority__higher_runs_first(backend, alias):
    results = {
        "low": tasks.started_at.using(priority=-10).enqueue(),
        "high": tasks.started_at.using(priority=100).enqueue(),
        "middle": tasks.started_at.enqueue(),
    }
    assert _row(alias, results["high"]).priority == 100
    drain(3, using=alias, concurrency=1)
    ran = {name: tasks.started_at.get_result(r.id) for name, r in results.items()}
    assert ran["high"].task.priority == 100
    assert ran["high"].return_value < ran["middle"].return_value < ran["low"].return_value


def test_queue_name__stored_validated_and_honoured_by_workers(backend, alias):
    mail = tasks.send_mail.enqueue("ada@example.com")
    assert (_row(alias, mail).queue, _row(alias, mail).priority) == ("mail", 5)
    assert tasks.send_mail.get_result(mail.id).task.queue_name == "mail"
    with pytest.raises(InvalidTask, match="Queue 'nowhere' is not valid"):
        tasks.add.using(queue_name="nowhere")
    assert drain(using=alias, queues=("default",)) == 0
    assert drain(using=alias, queues=("mail",)) == 1
    assert tasks.send_mail.get_result(mail.id).return_value == ["ada@example.com", ""]


def test_run_after__defers_the_task(backend, alias):
    when = timezone.now() + timedelta(seconds=1)
    result = tasks.add.using(run_after=when).enqueue(1, 1)
    assert result.task.run_after == when
    stored = tasks.add.get_result(result.id).task.run_after
    assert abs((stored - when).total_seconds()) < 0.5
    assert drain(using=alias) == 0  # not due yet
    time.sleep(max(0.0, (when - timezone.now()).total_seconds()) + 0.05)
    assert drain(1, using=alias) == 1
    assert tasks.add.get_result(result.id).return_value == 2
    with pytest.raises(InvalidTask, match="aware datetime"):
        tasks.add.using(run_after=datetime(2030, 1, 1))


def test_takes_context__attempt_counts_retries(backend, alias):
    result = tasks.flaky.enqueue(2)
    assert _row(alias, result).max_attempts == 3  # from @task(max_attempts=3)
    drain(1, using=alias)
    result.refresh()
    assert (result.status, result.attempts) == (READY, 1)  # ready to run again
    assert result.errors[0].exception_class is RuntimeError
    assert "boom on attempt 1" in result.errors[0].traceback
    drain(2, using=alias, timeout=15)
    result.refresh()
    assert (result.status, result.attempts, result.errors) == (SUCCESSFUL, 3, [])
    seen = result.return_value
    assert (seen["attempt"], seen["id"], seen["status"]) == (3, result.id, "RUNNING")
    assert (seen["args"], seen["kwargs"], seen["workers"]) == ([2], {}, 3)
    assert re.fullmatch(r"[0-9a-f]{32}", seen["worker"])  # the jobline worker running it


def test_exception__class_and_traceback_on_the_result(backend, alias):
    result = tasks.explode.enqueue("bad input")
    drain(1, using=alias)
    result.refresh()
    assert (result.status, result.attempts, len(result.errors)) == (FAILED, 1, 1)
    error = result.errors[0]
    assert error.exception_class_path == "tests.example_app.tasks.TaskBoom"
    assert error.exception_class is tasks.TaskBoom
    assert "Traceback" in error.traceback and "raise TaskBoom(message)" in error.traceback
    assert "bad input" in error.traceback and result.finished_at is not None
    with pytest.raises(ValueError, match="Task failed"):
        result.return_value  # noqa: B018


def test_failures_of_jobline_map_to_exception_classes(backend, alias):
    hung = tasks.hang.enqueue(5)
    gave_up = tasks.give_up.enqueue()
    cancelled = tasks.add.enqueue(1, 1)
    assert _row(alias, hung).timeout == 0.2  # from @task(timeout=0.2)
    actions.cancel_jobs([int(cancelled.id)], using=alias)
    drain(2, using=alias)
    for result, cls in [
        (hung, TimeoutError),
        (gave_up, jobline.Fail),  # no further attempt, though max_attempts=5
        (cancelled, asyncio.CancelledError),
    ]:
        result.refresh()
        assert (result.status, result.errors[0].exception_class) == (FAILED, cls)
    assert gave_up.attempts == 1


def test_requires__only_workers_with_the_tag_run_it(backend, alias):
    result = tasks.render.enqueue()
    assert _row(alias, result).requires == ["gpu"]
    assert drain(using=alias) == 0
    assert drain(using=alias, tags=("gpu",)) == 1
    assert tasks.render.get_result(result.id).return_value == "rendered"


async def test_aenqueue_and_aget_result__async_task_with_context(backend, alias):
    result = await tasks.async_context.aenqueue("x")
    assert (await tasks.async_context.aget_result(result.id)).status == READY
    # A thread of its own: the task's arefresh() needs asgiref's sync thread free.
    await sync_to_async(drain, thread_sensitive=False)(1, using=alias)
    await result.arefresh()
    await sync_to_async(connections.close_all)()  # the helper thread's connection
    assert result.return_value == {"label": "x", "attempt": 1, "id": result.id, "enqueued": True}


def test_transaction__rollback_leaves_no_task_and_commit_reaches_workers(backend, alias):
    with pytest.raises(RuntimeError), transaction.atomic(using=alias):
        dropped = tasks.add.enqueue(1, 2)
        assert tasks.add.get_result(dropped.id).status == READY  # visible inside
        raise RuntimeError("rollback")
    assert not Job.objects.using(alias).exists()
    with pytest.raises(TaskResultDoesNotExist):
        tasks.add.get_result(dropped.id)
    with transaction.atomic(using=alias):
        kept = tasks.add.enqueue(1, 2)
    assert drain(1, using=alias) == 1
    assert tasks.add.get_result(kept.id).return_value == 3


def test_idempotency_key__a_second_enqueue_returns_the_first(backend, alias):
    first = tasks.add.using(idempotency_key="sum-1").enqueue(1, 1)
    second = tasks.add.using(idempotency_key="sum-1").enqueue(5, 5)
    assert (second.id, second.args) == (first.id, [1, 1])
    assert Job.objects.using(alias).count() == 1


def test_get_result__unknown_ids_and_other_tasks(backend, alias):
    for missing in ("999999", "not-a-number"):
        with pytest.raises(TaskResultDoesNotExist):
            backend.get_result(missing)
    plain_job = jobline.enqueue("add", {"a": 1}, using=alias)  # a job, not a task
    with pytest.raises(TaskResultDoesNotExist):
        backend.get_result(str(plain_job.id))
    result = tasks.add.enqueue(1, 2)
    with pytest.raises(TaskResultMismatch):
        tasks.async_add.get_result(result.id)


def test_task_job_type__enqueued_as_a_plain_job_is_a_task_result(backend, alias):
    """Schedules, templates and the API start tasks by their job type's name."""
    job = jobline.enqueue("django_task:tests.example_app.tasks.add", {"args": [2, 2]}, using=alias)
    drain(1, using=alias)
    assert tasks.add.get_result(str(job.id)).return_value == 4


def test_signals__enqueued_started_and_finished(backend, alias):
    seen: list[tuple[str, str, str]] = []

    def on(name):
        def receiver(sender, task_result, **kwargs):
            seen.append((name, task_result.task.name, str(task_result.status)))

        return receiver

    receivers = [(s, on(n)) for s, n in [(task_enqueued, "enqueued"), (task_started, "started")]]
    receivers.append((task_finished, on("finished")))
    for signal, receiver in receivers:
        signal.connect(receiver)
    try:
        tasks.add.enqueue(1, 1)
        tasks.explode.enqueue("x")
        tasks.async_add.enqueue(1)
        drain(3, using=alias)
    finally:
        for signal, receiver in receivers:
            signal.disconnect(receiver)
    assert sorted(seen) == [
        ("enqueued", "add", "READY"),
        ("enqueued", "async_add", "READY"),
        ("enqueued", "explode", "READY"),
        ("finished", "add", "SUCCESSFUL"),
        ("finished", "async_add", "SUCCESSFUL"),
        ("finished", "explode", "FAILED"),
        ("started", "add", "RUNNING"),
        ("started", "async_add", "RUNNING"),
        ("started", "explode", "RUNNING"),
    ]


def test_validation__the_frameworks_errors_and_joblines(backend, alias):
    def local(): ...

    def no_context(label): ...

    with pytest.raises(InvalidTask, match="module level"):
        task(local)
    with pytest.raises(InvalidTask, match="first argument of 'context'"):
        task(takes_context=True)(_plain)
    with pytest.raises(InvalidTask, match="priority"):
        tasks.add.using(priority=101)
    for options, message in [
        ({"max_attempts": 0}, "max_attempts"),
        ({"timeout": 0}, "timeout"),
        ({"idempotency_key": ""}, "idempotency_key"),
    ]:
        with pytest.raises(InvalidTask, match=message):
            tasks.add.using(**options)
    with pytest.raises(InvalidTask, match="requires"):
        task(requires="gpu")(_plain)
    with pytest.raises(InvalidTask, match="is not a task"):
        not_a_task.enqueue()
    with pytest.raises(TypeError):
        tasks.add.enqueue(object(), 1)  # arguments must be JSON
    assert not Job.objects.using(alias).exists()


def test_test_project__manage_py_worker_runs_tasks(tmp_path: Path):
    """A project of one's own: TASKS on jobline, tasks.py found by `manage.py jobline worker`."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "JOBLINE_TEST_TMP": str(tmp_path),
        "PYTHONPATH": str(ROOT),
    }

    def python(*args: str) -> str:
        res = subprocess.run(
            [sys.executable, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
        )
        assert res.returncode == 0, res.stdout + res.stderr
        return res.stdout.strip()

    def django_code(code: str) -> str:
        return python("-c", f"import django; django.setup()\n{code}")

    python("-m", "django", "migrate", "--verbosity", "0")
    result_id = django_code("from tests.example_app.tasks import flaky\nprint(flaky.enqueue(1).id)")
    python("-m", "django", "jobline", "worker", "--max-jobs", "2", "--timeout", "30")
    seen = django_code(
        "import json\nfrom tests.example_app.tasks import flaky\n"
        f"r = flaky.get_result({result_id!r})\n"
        "print(json.dumps([r.status, r.attempts, r.return_value['attempt']]))"
    )
    assert json.loads(seen) == ["SUCCESSFUL", 2, 2]
