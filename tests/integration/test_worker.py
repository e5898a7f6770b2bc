"""The worker in-process, on real SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

import jobline
from jobline.models import Job, Worker
from jobline.services import actions
from jobline.testing import drain, running_worker
from tests.conftest import ALL_DATABASES, wait_until

pytestmark = ALL_DATABASES


def _job(alias: str, job_id: int) -> Job:
    return Job.objects.using(alias).get(pk=job_id)


def test_runs_async_sync_and_class_jobs_and_stores_outputs(alias):
    ids = {
        "add": jobline.enqueue("add", {"a": 2, "b": 3}, using=alias).id,
        "sync_add": jobline.enqueue("sync_add", {"a": 1, "b": 1}, using=alias).id,
        "scale": jobline.enqueue("scale", {"point": {"x": 1, "y": 2}}, using=alias).id,
        "greet": jobline.enqueue("greet", {"name": "ada"}, using=alias).id,
        "noop": jobline.enqueue("noop", using=alias).id,
    }
    assert drain(5, using=alias) == 5
    rows = {name: _job(alias, i) for name, i in ids.items()}
    assert all(r.status == "succeeded" for r in rows.values())
    assert rows["add"].outputs == 5
    assert rows["sync_add"].outputs == {"sum": 2, "thread": 1}
    assert rows["scale"].outputs == {"point": {"x": 2, "y": 4}}
    assert rows["greet"].outputs == "hello ada!"
    assert rows["noop"].outputs is None
    assert all(r.attempts == 1 and r.finished_at and r.worker_id is None for r in rows.values())


def test_retries_with_backoff_then_succeeds(alias):
    job = jobline.enqueue("flaky", {"fail_times": 2}, using=alias)
    drain(3, using=alias, timeout=15)
    row = _job(alias, job.id)
    assert (row.status, row.attempts, row.outputs) == ("succeeded", 3, "ok on attempt 3")


def test_fails_after_max_attempts_with_error_and_traceback(alias):
    job = jobline.enqueue("flaky", {"fail_times": 5}, using=alias)
    drain(3, using=alias, timeout=15)
    row = _job(alias, job.id)
    assert (row.status, row.attempts) == ("failed", 3)
    assert row.error == "RuntimeError: boom on attempt 3"
    assert "Traceback" in row.traceback and "flaky" in row.traceback


def test_nul_in_an_error_or_outputs_fails_the_job_and_never_wedges_the_worker(alias):
    bad_error = jobline.enqueue("nul_text", {"fail": True}, using=alias)
    bad_outputs = jobline.enqueue("nul_text", {"fail": False}, using=alias)
    fine = jobline.enqueue("add", {"a": 1, "b": 2}, using=alias)
    assert drain(3, using=alias, timeout=30) == 3
    row = _job(alias, bad_error.id)
    assert (row.status, row.error) == ("failed", "ValueError: bad \ufffd byte")
    assert "\x00" not in row.traceback
    row = _job(alias, bad_outputs.id)
    assert row.status == "failed" and row.outputs is None
    assert row.error == (
        "ValueError: outputs: NUL characters (\\u0000) are not allowed: no database stores them"
    )
    assert _job(alias, fine.id).outputs == 3


def test_backoff_delays_the_next_attempt(alias):
    job = jobline.enqueue("flaky", {"fail_times": 1}, max_attempts=2, using=alias)
    drain(1, using=alias)
    row = _job(alias, job.id)
    assert row.status == "queued" and row.attempts == 1
    assert "boom on attempt 1" in row.error
    assert row.run_at > row.started_at  # the policy's 0.05 s wait, not an immediate retry


def test_retry_requested_by_the_job(alias):
    job = jobline.enqueue("ask_retry", using=alias)
    drain(2, using=alias)
    assert (_job(alias, job.id).status, _job(alias, job.id).attempts) == ("succeeded", 2)


def test_timeout_fails_the_attempt(alias):
    job = jobline.enqueue("slow", {"seconds": 5}, timeout=0.2, max_attempts=1, using=alias)
    sync_job = jobline.enqueue(
        "slow_sync", {"seconds": 1}, timeout=0.2, max_attempts=1, using=alias
    )
    drain(2, using=alias)
    for job_id in (job.id, sync_job.id):
        row = _job(alias, job_id)
        assert (row.status, row.error) == ("failed", "timed out after 0.2 s")


def test_terminate_running_async_job(alias):
    job = jobline.enqueue("slow", {"seconds": 30}, using=alias)
    with running_worker(alias) as worker:
        wait_until(lambda: _job(alias, job.id).status == "running")
        assert actions.cancel_jobs([job.id], using=alias) == 1
        wait_until(lambda: _job(alias, job.id).status == "cancelled", timeout=5)
        wait_until(lambda: worker.processed == 1, timeout=5)  # counted once its write returned
    assert _job(alias, job.id).error == "terminated on request"


def test_terminate_queued_job_never_runs(alias):
    job = jobline.enqueue("add", {"a": 1}, using=alias)
    assert actions.cancel_jobs([job.id], using=alias) == 1
    assert drain(using=alias) == 0
    assert _job(alias, job.id).status == "cancelled"


def test_retry_operation_requeues_finished_job(alias):
    job = jobline.enqueue("add", {"a": 1}, using=alias)
    actions.cancel_jobs([job.id], using=alias)
    assert actions.retry_jobs([job.id], using=alias) == 1
    assert actions.retry_jobs([job.id], using=alias) == 0  # queued, not finished
    drain(1, using=alias)
    row = _job(alias, job.id)
    assert (row.status, row.outputs, row.attempts) == ("succeeded", 2, 1)


def test_paused_queue_is_not_claimed_until_resumed(alias):
    paused = jobline.enqueue("add", {"a": 1}, queue="mail", using=alias)
    other = jobline.enqueue("add", {"a": 1}, using=alias)
    actions.pause_queue("mail", using=alias)
    assert drain(using=alias) == 1
    assert _job(alias, other.id).status == "succeeded"
    assert _job(alias, paused.id).status == "queued"
    actions.resume_queue("mail", using=alias)
    assert drain(using=alias) == 1
    assert _job(alias, paused.id).status == "succeeded"


def test_queue_only_exclude_and_tags_filter_claims(alias):
    in_mail = jobline.enqueue("add", {"a": 1}, queue="mail", using=alias)
    in_default = jobline.enqueue("add", {"a": 1}, using=alias)
    sync_job = jobline.enqueue("sync_add", {"a": 1, "b": 1}, queue="mail", using=alias)
    gpu = jobline.enqueue("gpu_only", queue="mail", using=alias)
    assert drain(using=alias, queues=("mail",), exclude=("sync_add",)) == 1
    assert _job(alias, in_mail.id).status == "succeeded"
    assert _job(alias, in_default.id).status == "queued"
    assert _job(alias, gpu.id).status == "queued"  # needs the gpu tag
    assert drain(using=alias, only=("gpu_only",), tags=("gpu", "fast")) == 1
    assert _job(alias, gpu.id).status == "succeeded"
    assert _job(alias, sync_job.id).status == "queued"


def test_unknown_only_type_is_an_error(alias):
    with pytest.raises(ValueError, match="unknown job types: nope"):
        drain(using=alias, only=("nope",))


def test_priority_then_age_order(alias):
    low = jobline.enqueue("add", {"a": 1}, priority=-5, using=alias)
    first = jobline.enqueue("add", {"a": 1}, using=alias)
    high = jobline.enqueue("add", {"a": 1}, priority=10, using=alias)
    second = jobline.enqueue("add", {"a": 1}, using=alias)
    drain(using=alias, concurrency=1)
    order = list(Job.objects.using(alias).order_by("started_at").values_list("id", flat=True))
    assert order == [high.id, first.id, second.id, low.id]


def test_delayed_job_waits_for_run_at(alias):
    job = jobline.enqueue("add", {"a": 1}, delay=3600, using=alias)
    assert drain(using=alias) == 0
    assert _job(alias, job.id).status == "queued"


def test_idle_worker_wakes_when_a_delayed_job_is_due(alias):
    # The poll is far longer than the delay: the worker must sleep until run_at, no longer.
    with running_worker(alias, poll=30.0):
        job = jobline.enqueue("add", {"a": 1}, delay=1.0, using=alias)
        wait_until(lambda: _job(alias, job.id).status == "succeeded", timeout=5.0)
    row = _job(alias, job.id)
    assert row.started_at >= row.run_at
    assert (row.started_at - row.run_at).total_seconds() < 1.0  # well under one poll


def test_worker_row_lives_while_running(alias):
    with running_worker(alias, concurrency=7, tags=("gpu",)) as worker:
        row = Worker.objects.using(alias).get(pk=worker.id)
        assert (row.concurrency, row.tags) == (7, ["gpu"])
    assert not Worker.objects.using(alias).filter(pk=worker.id).exists()


def test_jobs_of_a_worker_whose_lease_expired_are_put_back(alias):
    from django.utils import timezone

    past = timezone.now() - timezone.timedelta(minutes=1)
    Worker.objects.using(alias).create(
        id="dead",
        hostname="h",
        pid=1,
        concurrency=1,
        started_at=past,
        last_heartbeat_at=past,
        lease_expires_at=past,
    )
    job = jobline.enqueue("add", {"a": 1}, using=alias)
    last = jobline.enqueue("add", {"a": 1}, max_attempts=1, using=alias)
    Job.objects.using(alias).filter(pk__in=[job.id, last.id]).update(
        status="running", worker_id="dead", attempts=1, started_at=past
    )
    drain(1, using=alias)
    row = _job(alias, job.id)
    assert (row.status, row.attempts, row.outputs) == ("succeeded", 2, 2)
    lost = _job(alias, last.id)
    assert lost.status == "failed" and "worker lost" in lost.error
    assert not Worker.objects.using(alias).filter(pk="dead").exists()


def test_worker_that_lost_its_lease_stops_its_jobs_and_starts_over(alias, runlog):
    """Never two live copies: a worker declared dead abandons what it ran."""
    from django.utils import timezone

    from tests.conftest import read_runlog

    job = jobline.enqueue("record", {"seconds": 1.0}, using=alias)
    with running_worker(alias) as worker:
        wait_until(lambda: _job(alias, job.id).status == "running")
        first_id = worker.id
        # What another host sees after this worker went silent past its lease.
        Worker.objects.using(alias).filter(pk=first_id).update(
            lease_expires_at=timezone.now() - timezone.timedelta(seconds=1)
        )
        wait_until(lambda: _job(alias, job.id).status == "succeeded", timeout=15)
        assert worker.id != first_id
    row = _job(alias, job.id)
    assert row.attempts == 2 and row.outputs is not None
    events = read_runlog(runlog)
    assert [e[0] for e in events["start"]] == [job.id, job.id]
    assert [e[0] for e in events["end"]] == [job.id]  # the first copy was stopped
