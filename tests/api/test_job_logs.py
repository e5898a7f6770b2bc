"""``GET /api/v1/jobs/{id}/logs`` and the progress fields of a job's JSON."""

from __future__ import annotations

from django.utils import timezone

from jobline.models import Job, JobLog


def _job_with_log(attempts: dict[int, range]) -> Job:
    job = Job.objects.create(
        type="chatty", status="running", run_at=timezone.now(), created_at=timezone.now(),
        attempts=max(attempts), progress=0.25, progress_message="page 1 of 4",
        log_lines=max(attempts[max(attempts)]),
    )  # fmt: skip
    JobLog.objects.bulk_create(
        JobLog(job=job, attempt=a, seq=n, level="INFO", text=f"a{a} l{n}", created_at=job.run_at)
        for a, seqs in attempts.items()
        for n in seqs
    )
    return job


def test_a_job_s_json_carries_its_progress(api):
    job = _job_with_log({1: range(1, 4)})
    got = api.get(f"/jobs/{job.id}").json()
    assert (got["progress"], got["progress_message"], got["log_lines"]) == (0.25, "page 1 of 4", 3)
    listed = api.get("/jobs").json()["items"][0]
    assert (listed["progress"], listed["log_lines"]) == (0.25, 3)


def test_logs__the_latest_attempt_by_default_with_what_the_cap_dropped(api):
    job = _job_with_log({1: range(1, 3), 2: range(6, 11)})  # attempt 2 kept lines 6-10
    r = api.get(f"/jobs/{job.id}/logs")
    assert r.status_code == 200
    log = r.json()
    assert (log["attempt"], log["attempts"], log["dropped"], log["truncated"]) == (
        2,
        [1, 2],
        5,
        True,
    )
    assert [x["text"] for x in log["lines"]] == [f"a2 l{n}" for n in range(6, 11)]
    assert set(log["lines"][0]) == {"attempt", "seq", "level", "time", "text"}
    assert (log["next_after"], log["more"], log["limits"]["max_lines"]) == (10, False, 1000)


def test_logs__follow_with_after_and_pick_an_attempt(api):
    job = _job_with_log({1: range(1, 3), 2: range(1, 11)})
    page = api.get(f"/jobs/{job.id}/logs", attempt=2, after=4, limit=3).json()
    assert ([x["seq"] for x in page["lines"]], page["next_after"], page["more"]) == (
        [5, 6, 7],
        7,
        True,
    )
    caught_up = api.get(f"/jobs/{job.id}/logs", attempt=2, after=10).json()
    assert (caught_up["lines"], caught_up["next_after"]) == ([], 10)
    first = api.get(f"/jobs/{job.id}/logs", attempt=1).json()
    assert ([x["text"] for x in first["lines"]], first["dropped"]) == (["a1 l1", "a1 l2"], 0)


def test_logs__a_job_that_logged_nothing(api):
    job = Job.objects.create(type="noop", run_at=timezone.now(), created_at=timezone.now())
    log = api.get(f"/jobs/{job.id}/logs").json()
    assert (log["attempt"], log["lines"], log["dropped"], log["next_after"]) == (None, [], 0, 0)


def test_logs__404_for_an_unknown_job_and_422_naming_a_bad_parameter(api, anonymous):
    r = api.get("/jobs/999999/logs")
    assert (r.status_code, r.json()["detail"]) == (404, "job 999999 not found")
    bad = api.get("/jobs/1/logs", after=-1)
    assert bad.status_code == 422
    assert "after" in str(bad.json())
    assert api.get("/jobs/1/logs", limit=0).status_code == 422
    assert anonymous.get("/jobs/1/logs").status_code == 401
