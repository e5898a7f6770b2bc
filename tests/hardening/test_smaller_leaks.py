"""The smaller leaks: health's database text, file modes, revoked tokens' streams, the address
guard's IPv6 spellings of IPv4, the UI's Content-Security-Policy; and the contract gaps:
timer ids, --data-dir after the command, the OpenAPI document."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import stat
import subprocess
import sys
import uuid

import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from django.test import AsyncClient, Client, override_settings

import jobline
from jobline.dispatch.guard import refusal
from jobline.models import Job
from jobline.models.api import ApiToken
from jobline.testing import drain
from jobline.web import events
from jobline.web.events import hub_for
from tests.conftest import ROOT, free_port


def test_health_hides_the_database_error_from_anonymous_callers(surface, tmp_path, caplog):
    conn = connections[surface]
    saved = dict(conn.settings_dict)
    conn.close()
    if conn.vendor == "sqlite":
        conn.settings_dict["NAME"] = str(tmp_path / "missing" / "db.sqlite3")
    else:
        conn.settings_dict.update(HOST="127.0.0.1", PORT=str(free_port()))
    try:
        with caplog.at_level(logging.WARNING, logger="jobline.api"):
            r = Client().get("/api/v1/health")
    finally:
        conn.close()
        conn.settings_dict.clear()
        conn.settings_dict.update(saved)
    assert r.status_code == 503
    assert r.json()["error"] == "the database cannot be reached"
    assert "cannot be reached" in caplog.text  # operators find the real error in the log
    assert len(caplog.text) > len("health: the database cannot be reached: ") + 10


def test_sqlite_files_are_private_and_data_dir_is_accepted_after_the_command(tmp_path):
    data = tmp_path / "data"
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "SECRET_KEY", "JOBLINE_DATA_DIR")
    }
    done = subprocess.run(
        [sys.executable, "-m", "jobline.cli.main", "migrate", "--data-dir", str(data)],
        env=env | {"PYTHONPATH": str(ROOT)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=lambda: os.umask(0o022),  # the usual default: world-readable unless asked
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    files = [p for p in data.iterdir() if p.name.startswith(("jobline.sqlite3", "secret_key"))]
    assert {p.name for p in files} >= {"jobline.sqlite3", "secret_key"}
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path
    assert not (tmp_path / "jobline-data").exists()  # the option was not ignored


async def test_a_revoked_tokens_stream_ends(monkeypatch):
    monkeypatch.setattr(events, "RECHECK_SECONDS", 0.0)
    token, secret = await sync_to_async(ApiToken.issue)("watcher", read_only=True)
    response = await AsyncClient().get(
        "/api/v1/events", headers={"Authorization": f"Bearer {secret}"}
    )
    assert response.status_code == 200
    chunks = response.streaming_content
    try:
        assert await anext(chunks) == b"retry: 2000\n\n"
        assert await anext(chunks) == b"event: ready\ndata: {}\n\n"
        await sync_to_async(token.delete)()
        await sync_to_async(jobline.enqueue)("noop")  # an event to deliver: the check runs
        rest = [chunk async for chunk in _until_end(chunks)]
        assert rest[-1].startswith(b"event: revoked"), rest
        assert not any(b"event: job" in chunk for chunk in rest)
    finally:
        await chunks.aclose()
        await hub_for().aclose()
        await sync_to_async(connections.close_all)()


async def _until_end(chunks):
    while True:
        try:
            yield await asyncio.wait_for(anext(chunks), 30)
        except StopAsyncIteration:
            return


@pytest.mark.parametrize(
    ("address", "embedded"),
    [
        ("64:ff9b::7f00:1", "127.0.0.1"),  # NAT64
        ("64:ff9b::a9fe:a9fe", "169.254.169.254"),
        ("2002:7f00:1::", "127.0.0.1"),  # 6to4
        ("2002:c0a8:101::1", "192.168.1.1"),
        ("::127.0.0.1", "127.0.0.1"),  # IPv4-compatible
        ("::10.1.2.3", "10.1.2.3"),
        ("::ffff:127.0.0.1", "127.0.0.1"),  # mapped, as before
    ],
)
def test_guard_judges_embedded_ipv4_addresses(address, embedded):
    why = refusal(address, [])
    assert why is not None and why.startswith(embedded)
    assert refusal("64:ff9b::808:808", []) is None  # a public address through NAT64


def test_http_jobs_to_embedded_loopback_are_refused_before_connecting(surface, receiver):
    port = receiver.server_address[1]
    hosts = ["[64:ff9b::7f00:1]", "[2002:7f00:1::]", "[::127.0.0.1]"]
    with override_settings(JOBLINE_HTTP_ALLOWED_NETWORKS=""):
        ids = [
            jobline.enqueue("http", {"url": f"http://{h}:{port}/x"}, using=surface).id
            for h in hosts
        ]
        drain(len(ids), using=surface, timeout=60)
    for job in Job.objects.using(surface).filter(pk__in=ids):
        assert job.status == "failed" and "loopback" in job.error, job.error
    assert receiver.calls == []


def test_ui_pages_carry_a_content_security_policy_and_no_inline_code(ui):
    jobline.enqueue("noop")
    for path in ("/", "/jobs/", "/schedules/", "/templates/", "/jobs/new/", "/login/"):
        r = ui.get(path)
        policy = r.headers.get("Content-Security-Policy", "")
        assert "script-src 'self'" in policy and "style-src 'self'" in policy, path
        assert "unsafe-inline" not in policy
        html = r.content.decode()
        # Scripts come from files; JSON data blocks are data, not code.
        assert not re.search(r"<script(?![^>]*\b(src=|type=\"application/json\"))[^>]*>", html)
        assert " style=" not in html and not re.search(r"\son[a-z]+=", html), path


@pytest.fixture
def loopback_timers(settings):
    """The receiver listens on loopback, which timers may only call when allowed."""
    settings.JOBLINE_HTTP_ALLOWED_NETWORKS = "127.0.0.0/8"


@pytest.mark.usefixtures("loopback_timers")
def test_timer_ids_are_uuids_and_unknown_ids_are_404(api, receiver):
    made = api.post("/timer", {"minutes": 1, "url": receiver.url()})
    assert made.status_code == 201
    timer_id = made.json()["id"]
    assert str(uuid.UUID(timer_id)) == timer_id
    found = api.get(f"/timer/{timer_id}").json()
    assert found["id"] == timer_id and found["status"] == "pending"
    assert 55 <= found["time_left"] <= 60  # whole seconds left; the request itself takes some
    job = Job.objects.get(idempotency_key=f"timer:{timer_id}")
    assert api.get(f"/timer/{job.pk}").json()["id"] == timer_id  # a job id finds it too
    for unknown in (str(uuid.uuid4()), "not-a-timer", "0", "-1", "9" * 40, "1e3", "%20"):
        assert api.get(f"/timer/{unknown}").status_code == 404, unknown


@pytest.mark.usefixtures("loopback_timers")
def test_timer_time_left_stays_within_the_cap(api, receiver):
    from jobline.core.input_rules import MAX_DELAY

    cap = {"hours": MAX_DELAY // 3600, "minutes": 0, "seconds": 0, "url": receiver.url()}
    assert api.post("/timer", cap).status_code == 201
    over = cap | {"minutes": 60 * 24, "seconds": MAX_DELAY}
    r = api.post("/timer", over)
    assert r.status_code == 422 and Job.objects.count() == 1
    assert 0 < api.get("/timer/" + str(Job.objects.get().pk)).json()["time_left"] <= MAX_DELAY


def test_openapi_describes_events_and_catch_up(api):
    doc = api.client.get("/api/v1/openapi.json").json()
    events_get = doc["paths"]["/api/v1/events"]["get"]
    assert "text/event-stream" in events_get["responses"]["200"]["content"]
    assert {p["name"] for p in events_get["parameters"]} == {"job", "type", "queue"}
    out = doc["components"]["schemas"]["ScheduleOut"]["properties"]["catch_up"]
    assert out["minimum"] == 0
    timer = doc["components"]["schemas"]["TimerOut"]["properties"]
    assert timer["id"]["type"] == "string" and timer["time_left"]["minimum"] == 0
    assert json.dumps(doc)  # still one JSON document
