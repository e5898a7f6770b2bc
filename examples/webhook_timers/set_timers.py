"""Set timers through jobline's REST API, each calling its own URL; report how late they were.

    python examples/webhook_timers/set_timers.py --token TOKEN [--timers 1000] [--seconds 10]

Runs a receiver on loopback that records every call of ``/hook/<n>``, sets one timer per
``n`` with ``POST /api/v1/timer``, waits for the calls, then prints how late they arrived
(p50, p99, max) and whether every URL was called exactly once: once at the receiver, with
the timer's id in its ``Idempotency-Key`` header, by a job that succeeded on its first
attempt (so no retry is still to come). Exits 1 if not.

Lateness is counted from when the POST was sent plus the timer's duration: an upper bound,
since it includes the time the API took to answer.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
import time

import httpx
from aiohttp import web


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def summary(values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return f"p50 {percentile(ms, 50):.0f} ms, p99 {percentile(ms, 99):.0f} ms, max {max(ms):.0f} ms"


class Receiver:
    """The web hooks' target: remembers when each /hook/<n> was called, and with what key."""

    def __init__(self, expected: int):
        self.calls: dict[int, list[tuple[float, str]]] = {}
        self.expected = expected
        self.all_called = asyncio.Event()

    async def hook(self, request: web.Request) -> web.Response:
        n = int(request.match_info["n"])
        key = request.headers.get("Idempotency-Key", "")
        self.calls.setdefault(n, []).append((time.monotonic(), key))
        if len(self.calls) == self.expected:
            self.all_called.set()
        return web.Response(status=204)

    async def start(self, host: str) -> tuple[web.AppRunner, str]:
        app = web.Application()
        app.router.add_post("/hook/{n:\\d+}", self.hook)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        sock = socket.create_server((host, 0))
        await web.SockSite(runner, sock).start()
        return runner, f"http://{host}:{sock.getsockname()[1]}"


async def set_timers(
    api: httpx.AsyncClient, hooks: str, count: int, seconds: int, concurrency: int
) -> tuple[dict[int, str], dict[int, float], list[float]]:
    """One timer per n: returns each one's id, its due time (monotonic), the POSTs' durations."""
    ids: dict[int, str] = {}
    due: dict[int, float] = {}
    took: list[float] = []
    gate = asyncio.Semaphore(concurrency)

    async def one(n: int) -> None:
        async with gate:
            sent = time.monotonic()
            r = await api.post("/api/v1/timer", json={"seconds": seconds, "url": f"{hooks}/{n}"})
            took.append(time.monotonic() - sent)
            if r.status_code != 201:
                sys.exit(f"POST /api/v1/timer answered {r.status_code}: {r.text}")
            ids[n], due[n] = r.json()["id"], sent + seconds

    await asyncio.gather(*(one(n) for n in range(count)))
    return ids, due, took


async def timer_jobs(api: httpx.AsyncClient) -> dict[str, dict]:
    """Every http job by timer id (its idempotency key is ``timer:<id>``)."""
    found, cursor = {}, None
    while True:
        params = {"type": "http", "limit": 500} | ({"cursor": cursor} if cursor else {})
        page = (await api.get("/api/v1/jobs", params=params)).raise_for_status().json()
        for job in page["items"]:
            found[(job["idempotency_key"] or "").removeprefix("timer:")] = job
        if not (cursor := page["next_cursor"]):
            return found


async def first_attempts(api: httpx.AsyncClient, ids: dict[int, str], wait: float) -> list[str]:
    """Problems with the timers' jobs: each must succeed, on its first attempt."""
    deadline = time.monotonic() + wait
    while True:
        jobs = await timer_jobs(api)
        mine = [jobs.get(timer_id) for timer_id in ids.values()]
        waiting = any(job and job["status"] in ("queued", "running") for job in mine)
        if not waiting or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    problems = []
    for n, timer_id in ids.items():
        job = jobs.get(timer_id)
        if job is None:
            problems.append(f"/hook/{n}: no job for timer {timer_id}")
        elif job["status"] != "succeeded" or job["attempts"] != 1:
            problems.append(
                f"/hook/{n}: timer {timer_id} {job['status']}, attempts {job['attempts']}"
            )
    return problems


def check_calls(receiver: Receiver, ids: dict[int, str]) -> list[str]:
    problems = []
    for n, timer_id in ids.items():
        calls = receiver.calls.get(n, [])
        if len(calls) != 1:
            problems.append(f"/hook/{n} called {len(calls)} times")
        elif calls[0][1] != timer_id:
            problems.append(f"/hook/{n}: Idempotency-Key {calls[0][1]!r}, timer id {timer_id}")
    return problems


async def main(args: argparse.Namespace) -> int:
    receiver = Receiver(args.timers)
    runner, base = await receiver.start(args.host)
    headers = {"Authorization": f"Bearer {args.token}"}
    try:
        async with httpx.AsyncClient(base_url=args.api, headers=headers, timeout=30) as api:
            began = time.monotonic()
            ids, due, took = await set_timers(
                api, f"{base}/hook", args.timers, args.seconds, args.concurrency
            )
            print(
                f"set {args.timers} timers of {args.seconds} s in {time.monotonic() - began:.1f} s"
                f" (POST {summary(took)})"
            )
            last_due = max(due.values())
            try:
                await asyncio.wait_for(
                    receiver.all_called.wait(), last_due + args.wait - time.monotonic()
                )
            except TimeoutError:
                pass
            problems = check_calls(receiver, ids) or await first_attempts(api, ids, args.wait)
    finally:
        await runner.cleanup()
    late = [calls[0][0] - due[n] for n, calls in receiver.calls.items()]
    print(f"called: {len(receiver.calls)} of {args.timers} URLs")
    if late:
        print(f"late: {summary(late)}")
    for problem in problems[:20]:
        print(problem)
    if problems:
        print(f"NOT exactly once: {len(problems)} problems")
        return 1
    print(f"every URL called exactly once ({args.timers} of {args.timers})")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--api", default="http://127.0.0.1:8000", help="jobline's address")
    parser.add_argument("--token", default=os.environ.get("JOBLINE_TOKEN"), help="or JOBLINE_TOKEN")
    parser.add_argument("--timers", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=10, help="each timer's duration")
    # One POST at a time keeps each one short, and so the bound on lateness tight.
    parser.add_argument("--concurrency", type=int, default=1, help="POSTs in flight at once")
    parser.add_argument("--wait", type=float, default=30, help="seconds to wait past the last due")
    parser.add_argument("--host", default="127.0.0.1", help="the receiver's address")
    args = parser.parse_args()
    if not args.token:
        parser.error("pass --token or set JOBLINE_TOKEN (jobline token create NAME)")
    sys.exit(asyncio.run(main(args)))
