"""examples/visitor_reports: reports scheduled in the admin of the example's own Django
project, run by ``manage.py jobline up`` over DynamoDB (moto's server), and checked against
counts made straight from the events file."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import httpx

from tests.conftest import ROOT, free_port, wait_until
from tests.examples.conftest import query
from tests.integration.test_schedule_admin import form

EXAMPLE = ROOT / "examples" / "visitor_reports"
EVENTS = list(csv.DictReader((EXAMPLE / "events.csv").read_text().splitlines()))
BETWEEN = "reports.jobs.build_reports_between"
LAST_MINUTES = "reports.jobs.build_reports_last_minutes"
# Across midnight, so the window spans two days (partitions) of the store; its ends are
# events' own timestamps, so a window that is not half-open [start, end) shows.
START, END = EVENTS[700]["timestamp"], EVENTS[2300]["timestamp"]


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def counted(start: str, end: str, shift: timedelta = timedelta(0)) -> Counter[tuple[str, str]]:
    """Views per (visitor, page) in the file, timestamps moved by ``shift``, in [start, end)."""
    low, high = when(start), when(end)
    return Counter(
        (e["visitor_id"], e["page"]) for e in EVENTS if low <= when(e["timestamp"]) + shift < high
    )


def reported(database_url: str, where: str) -> Counter[tuple[str, str]]:
    rows = query(
        database_url, f"SELECT visitor_id, page, visits FROM reports_visitorreport WHERE {where}"
    )
    return Counter({(visitor, page): visits for visitor, page, visits in rows})


def add_schedule(browser: httpx.Client, name: str, job_type: str, inputs: dict) -> None:
    """Fill in the admin's "add schedule" form as a person would: a timer due in 1 s."""
    fields = form(name=name, job_type=job_type, inputs=json.dumps(inputs), kind="in", rule="1s")
    page = browser.post(
        "/admin/jobline/schedule/add/",
        data={**fields, "csrfmiddlewaretoken": browser.cookies["csrftoken"]},
    )
    assert page.status_code == 302, page.text[-3000:]


def shift_of_the_copy(env: dict[str, str]) -> timedelta:
    """How far ``load_events --to-now`` moved the events: find the newest one's copy."""
    newest = EVENTS[-1]
    dynamodb = boto3.client(
        "dynamodb",
        endpoint_url=env["DYNAMODB_ENDPOINT_URL"],
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    pages = dynamodb.get_paginator("scan").paginate(
        TableName=env["DYNAMODB_TABLE"],
        FilterExpression="request_id = :id",
        ExpressionAttributeValues={":id": {"S": newest["request_id"]}},
    )
    stamps = sorted(item["timestamp"]["S"] for page in pages for item in page["Items"])
    assert len(stamps) == 2 and stamps[0] == newest["timestamp"], stamps
    return when(stamps[1]) - when(newest["timestamp"])


def test_scheduled_reports_equal_counts_from_the_events_file(
    database_url: str, dynamodb_endpoint: str, tmp_path: Path
):
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update(
        DATABASE_URL=database_url,
        DYNAMODB_ENDPOINT_URL=dynamodb_endpoint,
        DYNAMODB_TABLE=f"page_views_{tmp_path.name}",
        AWS_ACCESS_KEY_ID="test",
        AWS_SECRET_ACCESS_KEY="test",
        INITIAL_SUPERUSER_NAME="root",
        INITIAL_SUPERUSER_PASSWORD="pw-123",
    )

    def manage(*args: str) -> str:
        res = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=EXAMPLE,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert res.returncode == 0, res.stdout + res.stderr
        return res.stdout

    assert "loaded 3000 events" in manage("load_events")
    manage("load_events", "--to-now")  # a copy ending now, for the last-minutes report
    port = free_port()
    log = tmp_path / "up.log"
    with open(log, "w") as out:
        up = subprocess.Popen(
            [sys.executable, "manage.py", "jobline", "up", "--port", str(port)],
            cwd=EXAMPLE,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as browser:

            def healthy() -> bool:
                assert up.poll() is None, log.read_text()[-3000:]
                try:
                    return browser.get("/api/v1/health").json()["workers"] == 1
                except httpx.HTTPError:
                    return False

            wait_until(healthy, 60, "jobline up serving with its worker")
            browser.get("/admin/login/")
            login = browser.post(
                "/admin/login/?next=/admin/",
                data={
                    "username": "root",
                    "password": "pw-123",
                    "csrfmiddlewaretoken": browser.cookies["csrftoken"],
                },
            )
            assert login.status_code == 302, login.text[-2000:]
            add_schedule(browser, "midnight hour", BETWEEN, {"start": START, "end": END})
            add_schedule(browser, "last minutes", LAST_MINUTES, {"minutes": 3})

            def finished() -> list[dict[str, Any]]:
                jobs = browser.get(f"/api/v1/jobs?type={BETWEEN}&type={LAST_MINUTES}").json()
                done = [j for j in jobs["items"] if j["status"] not in ("queued", "running")]
                return done if len(done) == 2 else []

            jobs = {j["type"]: j for j in wait_until(finished, 60, "both scheduled jobs finished")}
    finally:
        up.send_signal(signal.SIGTERM)
        up.wait(30)
    for job in jobs.values():
        assert job["status"] == "succeeded", (job["error"], log.read_text()[-3000:])
        assert job["schedule_id"] is not None  # fired by the scheduler, run by the worker

    expected = counted(START, END)
    assert jobs[BETWEEN]["outputs"]["visits"] == expected.total() > 1000
    assert reported(database_url, "window_end < '2026-01-01'") == expected

    window = jobs[LAST_MINUTES]["outputs"]
    recent = counted(window["start"], window["end"], shift_of_the_copy(env))
    assert when(window["end"]) - when(window["start"]) == timedelta(minutes=3)
    assert window["visits"] == recent.total() > 0
    assert reported(database_url, "window_end >= '2026-01-01'") == recent
