"""Live events: changes written by other connections reach the hub, and ``/api/v1/events``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.db import connections
from django.test import AsyncClient, Client
from django.utils import timezone

import jobline
from jobline.models import Job
from jobline.models.api import ApiToken
from jobline.services import actions
from jobline.testing import running_worker
from jobline.web import events
from jobline.web.events import Stream, hub_for
from tests.conftest import ALL_DATABASES


async def next_events(stream: Stream, want: int, timeout: float = 15) -> list[dict]:
    """Read job events from a stream until ``want`` arrived."""
    found: list[dict] = []
    deadline = time.monotonic() + timeout
    while len(found) < want:
        left = deadline - time.monotonic()
        assert left > 0, f"only {found} within {timeout} s"
        for chunk in (await stream.next(left)).split("\n\n"):
            if chunk.startswith("event: job\n"):
                found.append(json.loads(chunk.split("data: ", 1)[1]))
    return found


def kinds(found: list[dict], job_id: int) -> list[str]:
    return [e["event"] for e in found if e["id"] == job_id]


@contextlib.asynccontextmanager
async def listening(alias: str, *streams: Stream):
    """The hub of ``alias`` with ``streams`` subscribed, ready; everything closed after."""
    hub = hub_for(alias)
    for stream in streams:
        hub.subscribe(stream)
    try:
        await asyncio.wait_for(hub.ready.wait(), 10)
        yield hub
    finally:
        for stream in streams:
            hub.unsubscribe(stream)
        await hub.aclose()
        await sync_to_async(connections.close_all)()  # sync_to_async's thread's connections


@ALL_DATABASES
async def test_hub__sees_what_another_connection_and_a_worker_do(alias):
    stream = Stream()
    async with listening(alias, stream):
        # Slow enough that even the SQLite poll sees it running.
        job = await sync_to_async(jobline.enqueue)("slow", {"seconds": 1.2}, using=alias)
        with running_worker(alias):
            found = await next_events(stream, 3)
        assert kinds(found, job.id) == ["created", "started", "succeeded"]
        done = found[-1]
        assert (done["type"], done["queue"], done["status"], done["attempts"]) == (
            "slow",
            "default",
            "succeeded",
            1,
        )
        assert done["finished_at"] and done["pipeline_run"] is None

        flaky = await sync_to_async(jobline.enqueue)("flaky", {"fail_times": 9}, using=alias)
        doomed = await sync_to_async(jobline.enqueue)("add", {"a": 1}, delay=3600, using=alias)
        await sync_to_async(actions.cancel_jobs)([doomed.id], using=alias)
        with running_worker(alias):
            found = await next_events(stream, 4)
            while "failed" not in kinds(found, flaky.id):
                found += await next_events(stream, 1)
        assert kinds(found, doomed.id) == ["created", "terminated"]
        gave_up = [e for e in found if e["id"] == flaky.id and e["event"] == "failed"]
        assert gave_up[0]["error"] == "RuntimeError: boom on attempt 3"


@ALL_DATABASES
async def test_hub__a_retry_by_hand_and_filters(alias):
    only_mail, everything = Stream(queues=frozenset({"mail"})), Stream()
    async with listening(alias, only_mail, everything):
        job = await sync_to_async(jobline.enqueue)("add", {"a": 1}, delay=3600, using=alias)
        await next_events(everything, 1)
        rows = Job.objects.using(alias).filter(pk=job.id)
        await sync_to_async(rows.update)(status="failed", finished_at=timezone.now())
        await next_events(everything, 1)
        await sync_to_async(actions.retry_jobs)([job.id], using=alias)
        mail = await sync_to_async(jobline.enqueue)("add", {"a": 2}, queue="mail", using=alias)
        found = await next_events(everything, 2)
        assert kinds(found, job.id) == ["queued"]
        assert [e["id"] for e in await next_events(only_mail, 1)] == [mail.id]


@ALL_DATABASES
async def test_hub__a_burst_is_one_overflow(alias, monkeypatch):
    monkeypatch.setattr(events, "MAX_PER_TICK", 5)
    stream = Stream()
    async with listening(alias, stream):
        await sync_to_async(jobline.enqueue_many)("add", [{"a": i} for i in range(50)], using=alias)
        deadline = time.monotonic() + 10
        text = ""
        while "event: overflow" not in text and time.monotonic() < deadline:
            text += await stream.next(1)
        assert "event: overflow" in text and "event: job" not in text


@pytest.mark.django_db(transaction=True)
async def test_events_endpoint__needs_credentials_and_streams(client):
    anonymous = AsyncClient()
    assert (await anonymous.get("/api/v1/events")).status_code == 401
    bad = await anonymous.get("/api/v1/events", headers={"Authorization": "Bearer jl_nope"})
    assert bad.status_code == 401
    nobody = await sync_to_async(User.objects.create_user)("nobody", password="pw")
    await sync_to_async(anonymous.force_login)(nobody)
    assert (await anonymous.get("/api/v1/events")).status_code == 403
    _, secret = await sync_to_async(ApiToken.issue)("events", read_only=True)
    response = await AsyncClient().get(
        "/api/v1/events", {"job": "1"}, headers={"Authorization": f"Bearer {secret}"}
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "text/event-stream"
    chunks = response.streaming_content
    try:
        assert await anext(chunks) == b"retry: 2000\n\n"
        assert await anext(chunks) == b"event: ready\ndata: {}\n\n"
    finally:
        await chunks.aclose()
        await hub_for().aclose()
        await sync_to_async(connections.close_all)()


@pytest.mark.django_db
def test_events_endpoint__refuses_wsgi_servers_that_it_would_hold_forever():
    staff = User.objects.create_user("ops", password="pw", is_staff=True)
    client = Client()
    client.force_login(staff)
    response = client.get("/api/v1/events")
    assert response.status_code == 503
    assert response.json() == {"detail": "live events need an ASGI server"}


async def _reported(stream: Stream, job_id: int, lines: int) -> dict:
    """The first event (``job`` or ``progress``) of the job saying it logged ``lines`` lines."""
    deadline = time.monotonic() + 20
    while True:
        assert time.monotonic() < deadline, f"no event of job {job_id} with {lines} lines"
        for chunk in (await stream.next(1)).split("\n\n"):
            if chunk.startswith(("event: job\n", "event: progress\n")):
                event = json.loads(chunk.split("data: ", 1)[1])
                if event["id"] == job_id and event["log_lines"] == lines:
                    return event


@ALL_DATABASES
async def test_hub__a_running_job_s_progress_is_a_progress_event(alias, tmp_path):
    stream = Stream()
    async with listening(alias, stream):
        inputs = {"lines": 40, "phases": 4, "gate": str(tmp_path)}
        job = await sync_to_async(jobline.enqueue)("chatty", inputs, using=alias)
        with running_worker(alias):
            await _reported(stream, job.id, 10)  # seen running (started, maybe progress)
            (tmp_path / "1").touch()
            event = await _reported(stream, job.id, 20)
            for phase in ("2", "3"):
                (tmp_path / phase).touch()
            done = await _reported(stream, job.id, 40)
        assert (event["event"], event["status"], event["progress"]) == ("progress", "running", 0.5)
        assert event["progress_message"] == "line 20 of 40"
        assert (done["progress"], done["progress_message"]) == (1.0, "line 40 of 40")
