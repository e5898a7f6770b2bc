"""The API of a running service (``jobline web`` + ``jobline worker``) on PostgreSQL, over HTTP."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx

from tests.conftest import ALL_DATABASES, ROOT, free_port, jobline_process, wait_until

pytestmark = ALL_DATABASES


def _healthy(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_jobs_and_timer_through_a_running_service(pg_alias, service_env, receiver):
    env = service_env(pg_alias, JOBLINE_HTTP_ALLOWED_NETWORKS="127.0.0.0/8")
    created = subprocess.run(
        [sys.executable, "-m", "jobline.cli.main", "token", "create", "e2e"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    token = created.stdout.splitlines()[-1]
    port = free_port()
    base = f"http://127.0.0.1:{port}/api/v1"
    web = jobline_process(env, "web", "--port", str(port))
    worker = jobline_process(env, "worker", "--concurrency", "10")
    try:
        wait_until(lambda: _healthy(f"{base}/health"), 30, "jobline web")
        assert httpx.get(f"{base}/jobs").status_code == 401
        api = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"})

        r = api.post("/jobs", json={"type": "add", "inputs": {"a": 2, "b": 3}})
        assert r.status_code == 201 and r.json()["status"] == "queued"
        job_id = r.json()["id"]
        done = wait_until(
            lambda: (j := api.get(f"/jobs/{job_id}").json())["status"] == "succeeded" and j,
            20,
            "the job",
        )
        assert done["outputs"] == 5 and done["attempts"] == 1
        bad = api.post("/jobs", json={"type": "add", "inputs": {"a": "x"}})
        assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "inputs.a"
        page = api.get("/jobs", params={"type": "add", "limit": 1}).json()
        assert [j["id"] for j in page["items"]] == [job_id] and page["next_cursor"] is None

        started = time.time()
        timer = api.post(
            "/timer", json={"hours": 0, "minutes": 0, "seconds": 2, "url": receiver.url()}
        )
        assert timer.status_code == 201 and timer.json()["time_left"] == 2
        (call,) = receiver.wait_for_calls(1, timeout=15)
        # Never before it is due. How late it may be on a busy host is the benchmarks' subject
        # (docs/benchmarks.md, timer lateness), not a wall-clock bound here.
        assert call.at >= started + 2
        assert call.method == "POST"
        assert api.get(f"/timer/{timer.json()['id']}").json()["time_left"] == 0
        (timer_job,) = api.get("/jobs", params={"type": "http"}).json()["items"]
        wait_until(
            lambda: api.get(f"/jobs/{timer_job['id']}").json()["status"] == "succeeded",
            10,
            "the timer's job",
        )
        assert len(receiver.calls) == 1
    finally:
        for process in (worker, web):
            process.terminate()
        for process in (worker, web):
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
