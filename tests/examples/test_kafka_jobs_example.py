"""examples/kafka_jobs end to end: a schedule in ``jobline up`` produces job messages into a
real broker (tansu), the example's executor consumes one and reports back through the API.

The queue is paused at first so that each state is seen: queued, delivered, succeeded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from tests.conftest import ROOT, free_port, jobline_process, stop_process

T = TypeVar("T")

EXAMPLE = ROOT / "examples" / "kafka_jobs"
SCHEDULE = json.loads((EXAMPLE / "schedule.json").read_text())
API_KEY = SCHEDULE["inputs"]["configs"]["google_api_key"]
ADMIN = ("admin", "example-admin-pw")


def poll(check: Callable[[], T], what: str, timeout: float = 30.0) -> T:
    """``check()``'s first truthy answer."""
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(0.1)
    return found


@pytest.fixture
def service(database_url: str, kafka_broker: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    """``jobline up`` with Kafka enabled, as the README starts it: its env, with ``URL``."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update(
        DATABASE_URL=database_url,
        JOBLINE_DATA_DIR=str(tmp_path / "data"),
        KAFKA_ENABLED="true",
        KAFKA_BOOTSTRAP_SERVERS=kafka_broker,
        KAFKA_IDEMPOTENT="false",  # tansu has no InitProducerId
        KAFKA_TOPIC=f"jobs-{uuid.uuid4().hex[:8]}",
        INITIAL_SUPERUSER_NAME=ADMIN[0],
        INITIAL_SUPERUSER_PASSWORD=ADMIN[1],
        URL=f"http://127.0.0.1:{port}",
    )
    up = jobline_process(env, "up", "--port", str(port))
    try:
        poll(lambda: _healthy(env["URL"]) or up.poll(), "jobline up", 60)
        assert up.poll() is None, up.communicate()[0]
        yield env
    finally:
        log = stop_process(up)
        assert API_KEY not in log  # nor in jobline's logs


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/api/v1/health").status_code == 200
    except httpx.TransportError:
        return False


def shown(job: dict[str, Any]) -> str:
    """The state the UI shows: a delivered job's dispatch until its executor has finished."""
    pending = job["status"] == "succeeded" and job["dispatch"] in ("delivered", "running")
    return job["dispatch"] if pending else job["status"]


def test_example__schedule_to_executor_and_back(service):
    env = service
    run = dict(env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    token = subprocess.run(
        [sys.executable, "-m", "jobline.cli.main", "token", "create", "executor"], **run
    ).stdout.splitlines()[-1]
    imported = subprocess.run(
        [
            sys.executable,
            "-m",
            "jobline.cli.main",
            "import-templates",
            EXAMPLE / "job_templates.json",
        ],
        **run,
    )
    assert imported.stdout == "Imported 1 new and 0 updated templates\n", imported.stdout
    api = httpx.Client(
        base_url=f"{env['URL']}/api/v1", headers={"Authorization": f"Bearer {token}"}
    )
    (template,) = api.get("/templates").json()
    assert (template["name"], template["job_type"], template["enabled"]) == (
        "youtube_scraper",
        "kafka",
        True,
    )
    assert api.post("/queues/youtube/pause").status_code == 200
    created = api.post("/schedules", json=SCHEDULE | {"rule": "2s"})  # not 30 s: a test
    assert created.status_code == 201, created.text
    schedule = created.json()
    assert schedule["inputs"]["configs"]["google_api_key"] == "****WXYZ"

    def job() -> dict[str, Any] | None:
        items = api.get("/jobs", params={"schedule": schedule["id"]}).json()["items"]
        return items[-1] if items else None  # the first job the schedule fired

    seen = [shown(poll(job, "the schedule's first job"))]
    assert api.post("/queues/youtube/resume").status_code == 200
    delivered = poll(lambda: (j := job()) and j["dispatch"] == "delivered" and j, "delivery")
    seen.append(shown(delivered))
    assert delivered["outputs"]["sent"] is True and delivered["dispatch_outputs"] is None

    executor = subprocess.Popen(
        [sys.executable, EXAMPLE / "executor.py", "--api", env["URL"], "--token", token],
        env=env | {"PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        path = f"/jobs/{delivered['id']}"
        done = poll(lambda: (j := api.get(path).json())["dispatch"] == "succeeded" and j, "report")
    finally:
        executor_log = stop_process(executor)
    seen.append(shown(done))
    assert seen == ["queued", "delivered", "succeeded"], executor_log
    assert done["status"] == "succeeded" and done["error"] == ""
    outputs = done["dispatch_outputs"]
    assert outputs["title"] == "Jobline Demo Channel" and len(outputs["videos"]) == 3
    assert outputs["labels"]["vid-kafka-202"] == ["kafka"]
    assert api.post(f"{path}/report", json={"status": "failed"}).status_code == 409

    # The key: masked in the API and the UI, in full only where the executor needs it.
    assert done["inputs"]["configs"]["google_api_key"] == "****WXYZ"
    for answer in (api.get(path), api.get("/jobs"), api.get(f"/schedules/{schedule['id']}")):
        assert answer.status_code == 200 and API_KEY not in answer.text
    assert API_KEY not in executor_log
    ui = httpx.Client(base_url=env["URL"], follow_redirects=True)
    ui.get("/login/")
    ui.post(
        "/login/",
        data={
            "username": ADMIN[0],
            "password": ADMIN[1],
            "csrfmiddlewaretoken": ui.cookies["csrftoken"],
        },
    )
    page = ui.get(f"/jobs/{done['id']}/").text
    assert "its executor succeeded" in page and "Jobline Demo Channel" in page
    assert "****WXYZ" in page and API_KEY not in page
    listing = ui.get("/jobs/", params={"type": "kafka"}).text
    assert f'data-job="{done["id"]}"' in listing and API_KEY not in listing
