"""Live job events: ``/api/v1/events`` as server-sent events, seen from any process's writes.

Where the changes come from: a poll of the jobs table, cheap because each of its queries
follows an index (new ids by primary key, the running set by status, what finished since
the last look by the partial ``finished_at`` index of migration 0006). It runs every
``POLL_SECONDS`` while anyone is watching, and at once when the store's listener wakes it
(``jobline_jobs`` when jobs are inserted or queued again, ``jobline_control`` on terminate),
so new and terminated jobs show without waiting. The worker's claims and completions notify
nobody: a NOTIFY per claim and per completion (a trigger) halved the drain rate on
PostgreSQL, because every notifying commit in a cluster takes one global lock.

A job finished and retried by hand shows as ``queued`` if it finished in the last
``LAG``, else when it starts again. One :class:`Hub` per process (and event loop) polls
while anyone is subscribed, looks the changed jobs up in one query per tick and fans the
events out to every open stream. Events: ``created``, ``started``, ``queued`` (again:
retried, or put back), ``succeeded``, ``failed``, ``cancelled``, ``terminated``; and
``progress`` (its own SSE event name) when a running job's progress fraction or log line
count changed, which its worker writes at most every ``JOBLINE_PROGRESS_SECONDS``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import weakref
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.db import DEFAULT_DB_ALIAS, connections
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse

from jobline.api.auth import public_read, user_can_read
from jobline.models import ApiToken, Job
from jobline.services import database
from jobline.store import CONTROL, JOBS, Listener

log = logging.getLogger("jobline.events")
T = TypeVar("T")

POLL_SECONDS = 0.5  #: between looks at the jobs table while anyone watches
BURST_SECONDS = 0.1  #: wake-ups this close together wake the poll once
MAX_PER_TICK = 500  #: beyond this, streams get one ``overflow`` event for the tick instead
MAX_BACKLOG = 2000  #: events a slow stream may have waiting before it gets ``overflow``
LAG = timedelta(seconds=2)  #: completions may commit out of order by this much
PING_SECONDS = 15.0  #: a comment line keeps proxies from closing an idle stream
RECHECK_SECONDS = 5.0  #: how often a token's stream checks that the token still exists
LINGER_SECONDS = 30.0  #: the hub keeps listening this long after its last stream closes
#: What a running job reports, looked at each poll: a change is a ``progress`` event. Not the
#: message: it may be long, and rarely changes without the fraction.
REPORTED = ("id", "progress", "log_lines")
FIELDS = (
    "id",
    "type",
    "queue",
    "status",
    "attempts",
    "max_attempts",
    "created_at",
    "started_at",
    "finished_at",
    "error",
    "cancel_requested",
    "dispatch",  # a kafka job's executor side: delivered, running, succeeded, failed
    "schedule",  # ids of what made the job, when something did
    "pipeline_run",
    "progress",  # what the running job reported (jobline.current_job().progress)
    "progress_message",
    "log_lines",  # the newest line number of its latest attempt's log
)


@dataclass(frozen=True, slots=True)
class Change:
    """A job was created (``status="created"``) or moved to ``status``."""

    id: int
    status: str


def event_for(change: Change, row: dict[str, Any]) -> dict[str, Any]:
    """The event sent for one change: its kind, and the job as it is now."""
    kind = {"running": "started"}.get(change.status, change.status)
    # actions.cancel_jobs marks queued jobs "terminated on request", running ones
    # cancel_requested; anything else cancelled it (a pipeline, a report).
    if kind == "cancelled" and (row["cancel_requested"] or row["error"] == "terminated on request"):
        kind = "terminated"
    job = {k: v for k, v in row.items() if k != "cancel_requested"}
    lines = (row["error"] or "").strip().splitlines()
    job["error"] = lines[0][:300] if lines else ""
    for name in ("created_at", "started_at", "finished_at"):
        if isinstance(job[name], datetime):
            job[name] = job[name].isoformat()
    return {"event": kind, **job}


def sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


@dataclass(eq=False)
class Stream:
    """One open ``/api/v1/events`` response: what it wants and what waits to be sent."""

    ids: frozenset[int] = frozenset()
    types: frozenset[str] = frozenset()
    queues: frozenset[str] = frozenset()
    pending: deque[str] = field(default_factory=deque)
    overflow: bool = False
    closed: bool = False  #: the server is stopping: end the response
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    def wants(self, event: dict[str, Any]) -> bool:
        return (
            (not self.ids or event["id"] in self.ids)
            and (not self.types or event["type"] in self.types)
            and (not self.queues or event["queue"] in self.queues)
        )

    def send(self, message: str) -> None:
        if len(self.pending) >= MAX_BACKLOG:
            self.overflow = True
        else:
            self.pending.append(message)
        self.wake.set()

    async def next(self, timeout: float) -> str:
        """What to send now: queued messages, or ``""`` after ``timeout`` seconds of quiet."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wake.wait(), timeout)
        self.wake.clear()
        out = "".join(self.pending)
        self.pending.clear()
        if self.overflow:  # this client fell behind: tell it to reload what it shows
            self.overflow = False
            out += sse("overflow", {})
        return out


async def _wait(listener: Listener, timeout: float) -> None:
    """Return after ``timeout`` seconds, or soon after a wake-up: a burst of them (many small
    enqueues) counts once, so the poll runs at most ~10 times a second."""
    events = [listener.event(JOBS), listener.event(CONTROL)]
    waits = [asyncio.ensure_future(e.wait()) for e in events]
    done, _ = await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    for task in waits:
        task.cancel()
    if done:
        await asyncio.sleep(BURST_SECONDS)
    for event in events:
        event.clear()


class _Poll:
    """What changed since the last look, computed from the jobs table."""

    def __init__(self, alias: str):
        self.alias = alias
        self.max_id = 0
        self.running: set[int] = set()
        self.reported: dict[int, tuple[Any, ...]] = {}  #: running id -> progress, line count
        self.finished: dict[int, datetime] = {}  #: recently finished id -> finished_at
        self.since: datetime | None = None
        self.flooded = False  #: more finished since the last look than a tick reports

    def _jobs(self):
        return Job.objects.using(self.alias)

    def prime(self) -> None:
        """Start from the current state: what exists now is not news."""
        self.max_id = self._jobs().order_by("-id").values_list("id", flat=True).first() or 0
        self.reported = self._running()
        self.running = set(self.reported)
        finished = self._jobs().filter(finished_at__isnull=False).order_by("-finished_at")
        self.since = finished.values_list("finished_at", flat=True).first()
        self._finished([])

    def _running(self) -> dict[int, tuple[Any, ...]]:
        rows = self._jobs().filter(status="running")
        return {r[0]: r[1:] for r in rows.values_list(*REPORTED)}

    def _finished(self, out: list[Change]) -> None:
        """Jobs finished since the last look (minus the lag), each reported once.

        A flood (the workers at full speed) is not read row by row: the look skips to its
        end, and the hub tells the streams to reload what they show instead.
        """
        if self.since is not None:
            fresh = self._jobs().filter(finished_at__gt=self.since)
            self.flooded = fresh.values("id")[: MAX_PER_TICK + 1].count() > MAX_PER_TICK
            if self.flooded:
                last = fresh.order_by("-finished_at").values_list("finished_at", flat=True)
                self.since, self.finished = last.first(), {}
                return
        if self.since is None:
            rows = self._jobs().filter(finished_at__isnull=False)
        else:
            rows = self._jobs().filter(finished_at__gte=self.since - LAG)
        for job_id, status, at in rows.values_list("id", "status", "finished_at"):
            if self.finished.get(job_id) != at:
                self.finished[job_id] = at
                out.append(Change(job_id, status))
            self.since = at if self.since is None else max(self.since, at)
        if self.since is not None:
            horizon = self.since - LAG
            self.finished = {i: at for i, at in self.finished.items() if at >= horizon}

    def poll(self) -> list[Change]:
        out: list[Change] = []
        newer = self._jobs().filter(id__gt=self.max_id).order_by("id")
        new = list(newer.values_list("id", flat=True)[: MAX_PER_TICK + 1])
        out += [Change(job_id, "created") for job_id in new]
        if len(new) > MAX_PER_TICK:  # a bulk insert: the hub reports an overflow anyway
            new.append(newer.order_by("-id").values_list("id", flat=True).first())
        self.max_id = max(new, default=self.max_id)
        reported = self._running()
        running = set(reported)
        out += [Change(job_id, "running") for job_id in sorted(running - self.running)]
        out += [
            Change(job_id, "progress")
            for job_id in sorted(running & self.running)
            if reported[job_id] != self.reported.get(job_id)
        ]
        self.reported = reported
        before = len(out)
        # (Retries are looked for among the few jobs that finished a moment ago.)
        recent = set(self.finished) if len(self.finished) <= MAX_PER_TICK else set()
        self._finished(out)
        if self.flooded:  # the hub reports an overflow: no need to look closer
            self.running = running
            return out
        # Left the running set without finishing, or finished a moment ago and now queued:
        # queued again (for another attempt, or retried by hand).
        back = (self.running - running - {c.id for c in out[before:]}) | recent
        if back:
            queued = self._jobs().filter(id__in=back, status="queued").values_list("id", flat=True)
            for job_id in queued:
                self.finished.pop(job_id, None)
                out.append(Change(job_id, "queued"))
        self.running = running
        return out


class Hub:
    """Listens for job changes while streams are open, and fans events out to them."""

    def __init__(self, alias: str = DEFAULT_DB_ALIAS):
        self.alias = alias
        self.streams: set[Stream] = set()
        self.ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # The ORM is synchronous: one thread of our own keeps one connection for the hub.
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="jobline-events")

    async def _db(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)

    def subscribe(self, stream: Stream) -> None:
        self.streams.add(stream)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="jobline-events")

    def unsubscribe(self, stream: Stream) -> None:
        self.streams.discard(stream)

    async def aclose(self) -> None:
        """Stop listening now and release the database connections."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._db(self._close_connection)
        self._thread.shutdown()

    def _close_connection(self) -> None:
        connections[self.alias].close()  # run in the hub's thread: its own connection

    async def _run(self) -> None:
        failed = False
        while True:
            try:
                await self._listen_until_idle(resync=failed)
                return
            except Exception as exc:  # the database went away: keep the streams, retry
                log.warning("event source failed (%s: %s); retrying", type(exc).__name__, exc)
                failed = True
                with contextlib.suppress(Exception):
                    await self._db(self._close_connection)
                await asyncio.sleep(1)
                if not self.streams:
                    return

    async def _listen_until_idle(self, *, resync: bool) -> None:
        poll = _Poll(self.alias)
        listener = database.store(self.alias).listener((JOBS, CONTROL))
        await listener.open()  # first: what changes after the look below wakes it
        try:
            await self._db(poll.prime)
            self.ready.set()
            if resync:  # back after an error: what happened meanwhile was not seen
                self._broadcast(sse("resync", {}), None)
            loop = asyncio.get_running_loop()
            idle_since = None
            while True:
                found = await self._db(poll.poll)
                if found or poll.flooded:
                    await self._publish(found, flooded=poll.flooded)
                if self.streams:
                    idle_since = None
                elif idle_since is None:
                    idle_since = loop.time()
                elif loop.time() - idle_since > LINGER_SECONDS:
                    return
                await _wait(listener, POLL_SECONDS)
        finally:
            self.ready.clear()
            await listener.close()
            await self._db(self._close_connection)

    async def _publish(self, changes: list[Change], *, flooded: bool = False) -> None:
        changes = list(dict.fromkeys(changes))  # the same change twice in a tick: once
        if flooded or len(changes) > MAX_PER_TICK:
            self._broadcast(sse("overflow", {"changes": len(changes)}), None)
            return
        rows = await self._db(self._rows, {c.id for c in changes})
        for change in changes:
            if (row := rows.get(change.id)) is not None:  # deleted since: nothing to say
                event = event_for(change, row)
                name = "progress" if change.status == "progress" else "job"
                self._broadcast(sse(name, event), event)

    def _rows(self, ids: Iterable[int]) -> dict[int, dict[str, Any]]:
        jobs = Job.objects.using(self.alias).filter(id__in=list(ids)).values(*FIELDS)
        return {row["id"]: row for row in jobs}

    def _broadcast(self, message: str, event: dict[str, Any] | None) -> None:
        for stream in self.streams:
            if event is None or stream.wants(event):
                stream.send(message)


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, Hub]] = (
    weakref.WeakKeyDictionary()
)


def close_streams() -> None:
    """End every open stream of this event loop (the server is stopping; browsers retry)."""
    for hub in _hubs.get(asyncio.get_running_loop(), {}).values():
        for stream in hub.streams:
            stream.closed = True
            stream.wake.set()


def hub_for(alias: str = DEFAULT_DB_ALIAS) -> Hub:
    """This event loop's hub for a database."""
    hubs = _hubs.setdefault(asyncio.get_running_loop(), {})
    if alias not in hubs:
        hubs[alias] = Hub(alias)
    return hubs[alias]


async def _authorized(request: HttpRequest) -> HttpResponse | None:
    """None when the caller may read events; else the 401/403 answer (as the API gives)."""
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        token = await sync_to_async(ApiToken.find)(header[7:].strip())
        if token is None:
            return JsonResponse({"detail": "invalid or revoked API token"}, status=401)
        await sync_to_async(token.touch)()
        return None
    user = await request.auser()
    if not user.is_authenticated:
        if public_read(request) is not None:
            return None
        return JsonResponse({"detail": "Unauthorized"}, status=401)
    if not await sync_to_async(user_can_read)(user):
        return JsonResponse({"detail": f"user {user.get_username()!r} may not read"}, status=403)
    return None


def _ints(values: list[str]) -> frozenset[int]:
    return frozenset(int(v) for v in values if v.isdigit())


async def events(request: HttpRequest) -> HttpResponse:
    """``GET /api/v1/events``: job events as server-sent events (``event: job``).

    Optional filters, each repeatable: ``job`` (id), ``type``, ``queue``. ``event: progress``
    when a running job's progress or log line count changed (the same fields). Other events:
    ``ready`` once listening (reload what you show: changes before it were not seen),
    ``resync`` after the source reconnected and ``overflow`` when events were dropped
    (reload as well); ``revoked`` just before a revoked token's stream ends. Described in
    the OpenAPI document by ``jobline.api.events_doc``.
    """
    if request.method != "GET":
        return JsonResponse({"detail": "Method not allowed"}, status=405)
    if (denied := await _authorized(request)) is not None:
        return denied
    if not isinstance(request, ASGIRequest):  # a WSGI worker would be held forever
        return JsonResponse({"detail": "live events need an ASGI server"}, status=503)
    stream = Stream(
        ids=_ints(request.GET.getlist("job")),
        types=frozenset(request.GET.getlist("type")),
        queues=frozenset(request.GET.getlist("queue")),
    )
    response = StreamingHttpResponse(
        _serve(hub_for(), stream, _token_check(request)), content_type="text/event-stream"
    )
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: pass events on as they come
    return response


def _token_check(request: HttpRequest) -> Callable[[], Any] | None:
    """For a stream opened with a token: whether that token still exists (not revoked)."""
    header = request.headers.get("Authorization", "")
    if header[:7].lower() != "bearer ":
        return None
    secret = header[7:].strip()
    return sync_to_async(lambda: ApiToken.find(secret) is not None)


async def _serve(
    hub: Hub, stream: Stream, still_allowed: Callable[[], Any] | None = None
) -> AsyncIterator[str]:
    """The stream's lines; with ``still_allowed``, re-checked before sending once
    ``RECHECK_SECONDS`` passed since the last look, so a revoked token's stream ends."""
    checked = time.monotonic()
    hub.subscribe(stream)
    try:
        yield "retry: 2000\n\n"
        while not hub.ready.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(hub.ready.wait(), PING_SECONDS)
            if not hub.ready.is_set():
                yield ": waiting for the database\n\n"
        yield sse("ready", {})
        while not stream.closed:
            message = await stream.next(PING_SECONDS) or ": ping\n\n"
            if still_allowed and time.monotonic() - checked >= RECHECK_SECONDS:
                if not await still_allowed():
                    yield sse("revoked", {})
                    return
                checked = time.monotonic()
            yield message
    finally:
        hub.unsubscribe(stream)
