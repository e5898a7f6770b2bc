"""Pipelines on real SQLite and PostgreSQL: wiring, fan-out/in, failure, cancel, resume, crashes."""

from __future__ import annotations

import asyncio
import random
import signal
import time

import pytest
from django.db import connections, transaction
from django.test import Client

import jobline
from jobline.core.pipelines import StepStatus
from jobline.core.states import JobStatus
from jobline.core.values import ClaimFilter, Completion
from jobline.exceptions import PipelineRunError
from jobline.models import Job, PipelineRun, Worker
from jobline.pipelines import PipelineInputsError, define, get_pipeline
from jobline.services import database
from jobline.store import postgres, sqlite
from jobline.testing import drain, running_worker
from tests.conftest import ALL_DATABASES, jobline_process, read_runlog, wait_until

pytestmark = ALL_DATABASES

Step = jobline.Step

CHAIN = jobline.pipeline(
    "test-chain",
    steps=[
        Step("first", "pl_add", map={"n": "input.n"}),
        Step("second", "pl_add", map={"n": "first.n"}, inputs={"plus": 10}),
        Step("third", "pl_add", map={"n": "second.n"}, queue="other", priority=5),
    ],
)
FAN = jobline.pipeline(
    "test-fan",
    steps=[
        Step("split", "pl_range", map={"count": "input.count"}),
        Step("square", "pl_square", map={"x": "split.items"}, fan_out="x"),
        Step("total", "pl_total", map={"values": "square.n"}),
    ],
)
FAILING = jobline.pipeline(
    "test-failing",
    steps=[
        Step("first", "pl_add", map={"n": "input.n"}),
        Step("middle", "pl_fail", map={"n": "first.n"}),
        Step("last", "pl_add", map={"n": "middle.n"}),
        Step("aside", "pl_add", map={"n": "first.n"}),
    ],
)
GATED = jobline.pipeline(
    "test-gated",
    steps=[
        Step("first", "pl_add", map={"n": "input.n"}),
        Step("gate", "pl_gate", map={"n": "first.n"}),
        Step("after_gate", "pl_add", map={"n": "gate.n"}),
        Step("end", "pl_total", after=["after_gate"], inputs={"values": []}),
    ],
)
SLOW = jobline.pipeline(
    "test-slow",
    steps=[
        Step("wait", "slow", inputs={"seconds": 30}),
        Step("also", "slow", inputs={"seconds": 30}),
        Step("queued", "pl_add", inputs={"n": 1}, queue="nobody-takes-this"),
        Step("after", "pl_add", map={"n": "queued.n"}, after=["wait", "also"]),
    ],
)
SKIPPING = jobline.pipeline(
    "test-skipping",
    steps=[
        Step("split", "pl_range", map={"count": "input.count"}),
        Step(
            "square",
            "pl_square",
            map={"x": "split.items"},
            inputs={"fail_on": 3},
            fan_out="x",
            on_failure="skip",
        ),
        Step("total", "pl_total", map={"values": "square.n"}),
        Step("optional", "pl_fail", inputs={"n": 1}, on_failure="skip", max_attempts=1),
        Step("after_optional", "pl_add", map={"n": "optional.n"}),
    ],
)


def finish(run: PipelineRun, timeout: float = 60) -> PipelineRun:
    """Run workers in this process until the run is over."""
    deadline = time.monotonic() + timeout
    while True:
        drain(None, using=run._state.db, timeout=timeout)
        run.refresh_from_db()
        if run.status != "running":
            return run
        if time.monotonic() > deadline:
            raise AssertionError(f"run {run.id} still running: {run.steps}")
        time.sleep(0.05)  # a retry waits for its backoff


def jobs_of(run: PipelineRun) -> dict[str, list[Job]]:
    found: dict[str, list[Job]] = {}
    for job in run.jobs.using(run._state.db).order_by("pipeline_step", "pipeline_index"):
        found.setdefault(job.pipeline_step, []).append(job)
    return found


def statuses(run: PipelineRun) -> dict[str, str]:
    return {s.name: str(s.status) for s in run.steps}


def test_chain_passes_outputs_along(alias):
    run = CHAIN.enqueue({"n": 1}, using=alias)
    assert run.status == "running" and statuses(run)["first"] == "queued"
    finish(run)
    jobs = jobs_of(run)
    assert [jobs[s][0].inputs for s in ("first", "second", "third")] == [
        {"n": 1, "plus": 1},
        {"n": 2, "plus": 10},
        {"n": 12, "plus": 1},
    ]
    assert (run.status, run.outputs, run.error) == ("succeeded", {"third": {"n": 13}}, "")
    assert run.finished_at is not None and run.finished_at >= run.created_at
    assert (jobs["third"][0].queue, jobs["third"][0].priority) == ("other", 5)
    assert all(j.attempts == 1 and j.status == "succeeded" for js in jobs.values() for j in js)
    assert statuses(run) == dict.fromkeys(("first", "second", "third"), "succeeded")


def test_fan_out_of_500_and_fan_in_in_order(alias):
    run = finish(FAN.enqueue({"count": 500}, using=alias), timeout=120)
    jobs = jobs_of(run)
    assert [j.pipeline_index for j in jobs["square"]] == list(range(500))
    assert [j.inputs["x"] for j in jobs["square"]] == list(range(500))
    assert jobs["total"][0].inputs == {"values": [i * i for i in range(500)]}
    assert run.status == "succeeded" and run.outputs == {
        "total": {"n": sum(i * i for i in range(500))}
    }
    steps = {s.name: s for s in run.steps}
    assert steps["square"].fan_out and steps["square"].counts.succeeded == 500
    assert steps["square"].jobs == [j.id for j in jobs["square"]]


def test_empty_fan_out_feeds_an_empty_list(alias):
    run = finish(FAN.enqueue({"count": 0}, using=alias))
    assert run.status == "succeeded" and run.outputs == {"total": {"n": 0}}
    assert statuses(run) == {"split": "succeeded", "square": "succeeded", "total": "succeeded"}
    assert "square" not in jobs_of(run) and run.step_states["square"]["status"] == "succeeded"


def test_failing_middle_step_cancels_its_dependants_and_fails_the_run(alias):
    run = finish(FAILING.enqueue({"n": 1}, using=alias))
    assert run.status == "failed"
    assert run.error == "step 'middle' failed: RuntimeError: cannot handle 2"
    assert statuses(run) == {
        "first": "succeeded",
        "middle": "failed",
        "last": "cancelled",
        "aside": "succeeded",  # another branch runs to its end
    }
    jobs = jobs_of(run)
    assert "last" not in jobs and jobs["middle"][0].attempts == 2  # retried, then failed
    assert run.outputs is None


def test_skip_policy_drops_failed_items_and_skips_dependants(alias):
    run = finish(SKIPPING.enqueue({"count": 6}, using=alias))
    assert run.status == "succeeded", run.error
    assert statuses(run) == {
        "split": "succeeded",
        "square": "succeeded",
        "total": "succeeded",
        "optional": "skipped",
        "after_optional": "skipped",
    }
    assert jobs_of(run)["total"][0].inputs == {"values": [0, 1, 4, 16, 25]}  # 3 failed
    assert run.outputs == {"total": {"n": 46}, "after_optional": None}


def test_missing_output_at_run_time_fails_the_step_with_the_reason(alias):
    nullable = jobline.pipeline(
        "test-nullable",
        steps=[
            Step("maybe", "pl_maybe", map={"n": "input.n"}),
            Step("then", "pl_add", map={"n": "maybe.n"}),
        ],
    )
    run = finish(nullable.enqueue({"n": 0}, using=alias))
    assert run.status == "failed" and statuses(run)["then"] == "failed"
    assert run.error == (
        "step 'then' failed: input 'n': maybe.n is missing from the outputs of step 'maybe'"
    )
    assert "then" not in jobs_of(run)


def test_cancel_mid_way_leaves_nothing_running(alias):
    run = SLOW.enqueue(using=alias)
    with running_worker(using=alias, concurrency=10, queues=("default",)):
        wait_until(
            lambda: statuses(run)["wait"] == "running" and statuses(run)["also"] == "running"
        )
        assert run.cancel() is True
        assert run.status == "cancelled" and run.finished_at is not None
        wait_until(
            lambda: not run.jobs.using(alias).filter(status__in=["queued", "running"]).exists(),
            what="every job stopped",
        )
    assert statuses(run) == {
        "wait": "cancelled",
        "also": "cancelled",
        "queued": "cancelled",
        "after": "cancelled",
    }
    assert set(run.jobs.using(alias).values_list("status", flat=True)) == {"cancelled"}
    run.refresh_from_db()
    assert run.status == "cancelled" and not run.cancel()  # late completions change nothing


def test_resume_reruns_the_failed_step_and_what_it_blocked(alias, monkeypatch):
    monkeypatch.setenv("JOBLINE_TEST_GATE", "closed")
    run = finish(GATED.enqueue({"n": 1}, using=alias))
    assert run.status == "failed" and statuses(run)["after_gate"] == "cancelled"
    first_id = jobs_of(run)["first"][0].id
    with pytest.raises(PipelineRunError, match="only a failed or cancelled run"):
        CHAIN.enqueue({"n": 1}, using=alias).resume()
    monkeypatch.setenv("JOBLINE_TEST_GATE", "open")
    assert run.resume() == 1
    assert run.status == "running" and run.error == "" and run.finished_at is None
    finish(run)
    assert run.status == "succeeded" and run.outputs == {"end": {"n": 0}}
    jobs = jobs_of(run)
    assert jobs["first"][0].id == first_id and jobs["first"][0].attempts == 1  # not run again
    assert [len(jobs[s]) for s in ("first", "gate", "after_gate", "end")] == [1, 1, 1, 1]
    assert jobs["after_gate"][0].inputs == {"n": 2, "plus": 1}


def test_resume_a_cancelled_run(alias):
    run = CHAIN.enqueue({"n": 1}, using=alias)
    run.cancel()
    assert statuses(run) == dict.fromkeys(("first", "second", "third"), "cancelled")
    assert run.resume() == 1  # the first step's job; the others wait for it again
    assert statuses(run) == {"first": "queued", "second": "waiting", "third": "waiting"}
    assert finish(run).outputs == {"third": {"n": 13}}


def test_terminating_a_queued_step_job_cancels_the_run_s_rest(alias):
    from jobline.services import actions

    run = CHAIN.enqueue({"n": 1}, using=alias)
    actions.cancel_jobs([jobs_of(run)["first"][0].id], using=alias)
    run.refresh_from_db()
    assert run.status == "cancelled" and run.error.startswith("step 'first' was cancelled")
    assert statuses(run) == dict.fromkeys(("first", "second", "third"), "cancelled")


def test_retrying_a_failed_step_job_reopens_the_run(alias, monkeypatch):
    from jobline.services import actions

    monkeypatch.setenv("JOBLINE_TEST_GATE", "closed")
    run = finish(GATED.enqueue({"n": 1}, using=alias))
    monkeypatch.setenv("JOBLINE_TEST_GATE", "open")
    assert actions.retry_jobs([jobs_of(run)["gate"][0].id], using=alias) == 1
    run.refresh_from_db()
    assert run.status == "running" and statuses(run)["after_gate"] == "waiting"
    assert finish(run).status == "succeeded"


def test_enqueue_joins_the_caller_s_transaction(alias):
    with pytest.raises(RuntimeError), transaction.atomic(using=alias):
        CHAIN.enqueue({"n": 1}, using=alias)
        raise RuntimeError("rolled back")
    assert not PipelineRun.objects.using(alias).exists() and not Job.objects.using(alias).exists()


def test_bad_inputs_are_refused_before_anything_is_written(alias):
    with pytest.raises(PipelineInputsError) as info:
        CHAIN.enqueue({"n": "many"}, using=alias)
    assert info.value.errors[0]["field"] == "n" and "test-chain" in str(info.value)
    with pytest.raises(PipelineInputsError, match="required"):
        FAN.enqueue({}, using=alias)
    assert not PipelineRun.objects.using(alias).exists() and not Job.objects.using(alias).exists()


def test_pipeline_defined_as_data(alias):
    data = {
        "name": "stored",
        "steps": [
            {"name": "a", "job_type": "pl_add", "map": {"n": "input.n"}},
            {"name": "b", "job_type": "pl_add", "map": {"n": "a.n"}, "inputs": {"plus": 5}},
        ],
    }
    stored = define(data, using=alias)
    assert stored.definition["edges"] == [["a", "b"]]
    run = finish(get_pipeline("stored", using=alias).enqueue({"n": 1}, using=alias))
    assert run.pipeline == "stored" and run.outputs == {"b": {"n": 7}}
    with pytest.raises(jobline.PipelineDefinitionError, match="no input 'nope'"):
        define({**data, "steps": [{**data["steps"][0], "inputs": {"nope": 1}}]})


def test_a_step_s_success_and_its_children_commit_together(alias, monkeypatch):
    """A crash between the two is impossible: a failed children insert undoes the success."""
    run = CHAIN.enqueue({"n": 1}, using=alias)
    dialect = (
        postgres.PipelineSQL if connections[alias].vendor == "postgresql" else sqlite.PipelineSQL
    )
    where = ClaimFilter(queues=None, types=("pl_add",))

    async def complete(job_id: int | None) -> None:
        store = database.store(alias).session()
        await store.open()
        try:
            if job_id is None:  # claim it first
                [job] = await store.claim("w1", 10, where)
                assert job.pipeline_run_id == run.id
                job_id = job.id
            done = Completion(
                id=job_id, status=JobStatus.SUCCEEDED, outputs='{"n": 2}', pipeline_run_id=run.id
            )
            await store.complete("w1", [done])
        finally:
            await store.close()

    def crash(self, rows):
        raise RuntimeError("the worker died here")

    with monkeypatch.context() as patch:
        patch.setattr(dialect, "insert_jobs", crash)
        with pytest.raises(RuntimeError, match="died"):
            asyncio.run(complete(None))
    first = jobs_of(run)["first"][0]
    assert (first.status, first.outputs, list(jobs_of(run))) == ("running", None, ["first"])
    asyncio.run(complete(first.id))  # the same completion, written again
    jobs = jobs_of(run)
    assert jobs["first"][0].status == "succeeded" and len(jobs["second"]) == 1
    asyncio.run(complete(first.id))  # a completion that no longer applies adds nothing
    assert len(jobs_of(run)["second"]) == 1


def test_a_step_lost_with_its_worker_moves_its_run_on(alias):
    """The rescue fails a lost job out of attempts, and its run with it, in one transaction."""
    lost = jobline.pipeline(
        "test-lost",
        steps=[
            Step("a", "pl_add", inputs={"n": 1}, max_attempts=1),
            Step("b", "pl_add", after=["a"], inputs={"n": 1}),
        ],
    )
    run = lost.enqueue(using=alias)

    async def claim_then_rescue() -> list[int]:
        store = database.store(alias).session()
        await store.open()
        try:  # claimed by a worker that never registered: its lease is long gone
            await store.claim("ghost", 10, ClaimFilter(queues=None, types=("pl_add",)))
            return await store.rescue_lost()
        finally:
            await store.close()

    assert asyncio.run(claim_then_rescue()) == [jobs_of(run)["a"][0].id]
    run.refresh_from_db()
    assert run.status == "failed" and run.error.startswith("step 'a' failed: worker lost")
    assert statuses(run) == {"a": "failed", "b": "cancelled"}


def test_admin_shows_runs_and_definitions(django_user_model):
    run = FAILING.enqueue({"n": 1})  # the admin works on the default database
    define({"name": "shown", "steps": [{"name": "a", "job_type": "noop"}]})
    admin = django_user_model.objects.create_superuser("root", "", "pw")
    client = Client()
    client.force_login(admin)
    page = client.get(f"/admin/jobline/pipelinerun/{run.id}/change/")
    assert page.status_code == 200 and "middle" in page.content.decode()
    assert client.get("/admin/jobline/pipelinerun/").status_code == 200
    assert client.get("/admin/jobline/pipelinedefinition/").status_code == 200
    jobs = client.get(f"/admin/jobline/job/?pipeline_run={run.id}&pipeline_step=first")
    assert jobs.status_code == 200
    client.post(
        "/admin/jobline/pipelinerun/",
        {"action": "cancel", "_selected_action": [run.id]},
    )
    run.refresh_from_db()
    assert run.status == "cancelled"


KILLED = jobline.pipeline(
    "test-killed",
    steps=[
        Step("start", "pl_record", map={"n": "input.n"}, inputs={"seconds": 0.3}),
        Step("split", "pl_range", map={"count": "input.count"}, after=["start"]),
        Step("each", "pl_record", map={"n": "split.items"}, inputs={"seconds": 0.4}, fan_out="n"),
        Step("total", "pl_total", map={"values": "each.n"}),
        Step("end", "pl_record", map={"n": "total.n"}, inputs={"seconds": 0.3}),
    ],
)


def test_killing_workers_repeatedly_neither_loses_nor_duplicates_a_step(alias, service_env, runlog):
    """SIGKILL workers while they run steps; every step item ends with exactly one job."""
    env = service_env(alias)
    count = 40
    runs = [KILLED.enqueue({"n": 0, "count": count}, using=alias) for _ in range(3)]
    workers = [jobline_process(env, "worker", "--concurrency", "8") for _ in range(3)]
    kills = 0
    rng = random.Random(7)
    try:
        deadline = time.monotonic() + 150
        while PipelineRun.objects.using(alias).filter(status="running").exists():
            assert time.monotonic() < deadline, "the runs did not finish"
            time.sleep(rng.uniform(0.05, 0.3))
            if kills >= 4:
                continue
            busy = Job.objects.using(alias).filter(status="running").values("worker_id")
            pids = set(
                Worker.objects.using(alias).filter(id__in=busy).values_list("pid", flat=True)
            )
            victim = next((w for w in workers if w.pid in pids), None)
            if victim is not None:  # a worker in the middle of a step
                victim.send_signal(signal.SIGKILL)
                victim.communicate(timeout=10)
                workers.remove(victim)
                workers.append(jobline_process(env, "worker", "--concurrency", "8"))
                kills += 1
    finally:
        for w in workers:
            w.send_signal(signal.SIGTERM)
        for w in workers:
            w.communicate(timeout=30)
    assert kills >= 3 and Job.objects.using(alias).filter(attempts__gt=1).exists()
    starts: dict[int, int] = {}
    for job_id, _ in read_runlog(runlog)["start"]:
        starts[job_id] = starts.get(job_id, 0) + 1
    for run in runs:
        run.refresh_from_db()
        assert run.status == "succeeded", run.error
        assert run.outputs == {"end": {"n": sum(range(1, count + 1)) + 1}}
        jobs = jobs_of(run)
        assert {s: len(js) for s, js in jobs.items()} == {
            "start": 1,
            "split": 1,
            "each": count,
            "total": 1,
            "end": 1,
        }
        assert [j.pipeline_index for j in jobs["each"]] == list(range(count))
        for job in (j for js in jobs.values() for j in js):
            assert job.status == "succeeded"
            # every start was an attempt the database counted: nothing ran behind its back
            assert starts.get(job.id, 0) <= job.attempts


def test_step_statuses_before_anything_runs(alias):
    run = FAN.enqueue({"count": 3}, using=alias)
    steps = run.steps
    assert [(s.name, s.status, s.after) for s in steps] == [
        ("split", StepStatus.QUEUED, ()),
        ("square", StepStatus.WAITING, ("split",)),
        ("total", StepStatus.WAITING, ("square",)),
    ]
    assert steps[0].to_json()["counts"]["queued"] == 1
