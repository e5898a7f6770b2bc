"""Issue 14's acceptance tests: a fleet of real processes through database crashes, an outage
and a black-holed link, on the private cluster.

Before the store port's reconnects and deadlines, processes kept a dead connection forever
and a cut-off worker kept running jobs another worker had taken over.
"""

from __future__ import annotations

import time

import httpx
import pytest

from tests.conftest import free_port, wait_until
from tests.faults.outages import (
    Fleet,
    add_timers,
    enqueue,
    env_for,
    overlaps,
    query,
    statuses,
    wait_progress,
)

pytestmark = pytest.mark.timeout(1200)

DRAIN = 3000
TIMERS = 5  #: one-off schedules due during the faults: each must fire once


def _succeeded(url: str) -> int:
    return (statuses(url) or {}).get("succeeded", -1)


def _start_fleet(fleet: Fleet, env: dict[str, str]) -> str:
    """Two workers, a scheduler and a web server; returns the web server's base URL."""
    port = free_port()
    fleet.start("worker-1", "worker", "--concurrency", "20")
    fleet.start("worker-2", "worker", "--concurrency", "20")
    fleet.start("scheduler", "scheduler")
    fleet.start("web", "web", "--port", str(port))
    return f"http://127.0.0.1:{port}"


def _healthy(base: str) -> bool:
    try:
        body = httpx.get(f"{base}/api/v1/health", timeout=5).json()
    except (httpx.HTTPError, ValueError):
        return False
    return body["status"] == "ok" and body["workers"] == 2


def _check_after(url: str, env: dict[str, str], fleet: Fleet, base: str, runlog) -> None:
    """Everything succeeded, timers fired once, no overlap, and the fleet still works."""
    assert statuses(url) == {"succeeded": DRAIN + TIMERS}, fleet.tails()
    fired = query(
        url,
        "SELECT s.name, count(j.id) FROM jobline_schedule s"
        " LEFT JOIN jobline_job j ON j.schedule_id = s.id GROUP BY s.name",
    )
    assert sorted(fired) == [(f"timer-{i}", 1) for i in range(TIMERS)]
    assert not overlaps(runlog), overlaps(runlog)
    assert not fleet.dead(), fleet.tails()
    enqueue(env, "stamp", [{}] * 50)  # still working: new jobs run
    wait_progress(
        "jobs after the faults",
        lambda: _succeeded(url) == DRAIN + TIMERS + 50,
        lambda: _succeeded(url),
        fleet,
    )
    wait_until(lambda: _healthy(base), timeout=120, what="health green with 2 workers")


def _drain_through(faults, url: str, env: dict[str, str], fleet: Fleet, runlog) -> None:
    """Drain DRAIN jobs (and fire TIMERS timers) on the whole fleet; ``faults``:
    ``[(succeeded jobs, fault to cause then), ...]``. Then check what ``_check_after`` does."""
    base = _start_fleet(fleet, env)
    wait_until(lambda: _healthy(base), timeout=120, what="the fleet up")
    add_timers(env, [5, 10, 15, 20, 25])
    enqueue(env, "stamp", [{"seconds": 0.02}] * DRAIN)
    for after, fault in faults:
        wait_progress(
            f"{after} jobs succeeded",
            lambda n=after: _succeeded(url) >= n,
            lambda: _succeeded(url),
            fleet,
        )
        fault()
    wait_progress(
        "the drain after the faults",
        lambda: _succeeded(url) == DRAIN + TIMERS,
        lambda: _succeeded(url),
        fleet,
    )
    _check_after(url, env, fleet, base, runlog)


def test_two_crash_restarts_during_a_drain(pg_cluster, pg_database, service_env, runlog, tmp_path):
    env = env_for(service_env, pg_database)
    fleet = Fleet(env, tmp_path)
    crash = pg_cluster.restart_immediate  # at a quarter and at half the drain
    try:
        _drain_through([(DRAIN // 4, crash), (DRAIN // 2, crash)], pg_database, env, fleet, runlog)
    finally:
        fleet.stop()


def test_a_ten_second_outage_during_a_drain(pg_cluster, pg_database, service_env, runlog, tmp_path):
    env = env_for(service_env, pg_database)
    fleet = Fleet(env, tmp_path)

    def outage() -> None:
        pg_cluster.stop()
        time.sleep(10)  # the outage itself: the database is away this long
        pg_cluster.start()

    try:
        _drain_through([(DRAIN // 3, outage)], pg_database, env, fleet, runlog)
    finally:
        fleet.stop()


def test_a_black_holed_worker_never_runs_a_job_twice_at_once(
    pg_cluster, pg_database, pg_proxy, service_env, runlog, tmp_path
):
    name = pg_database.rsplit("/", 1)[1]
    env = env_for(service_env, pg_database)
    fleet = Fleet(env, tmp_path)
    try:
        # Worker A reaches the database only through the proxy; it also takes queue "a".
        cut = fleet.start(
            "worker-a",
            "worker",
            "--queue",
            "default,a",
            "--concurrency",
            "8",
            DATABASE_URL=pg_cluster.database_url(name, port=pg_proxy.port),
        )
        enqueue(env, "stamp", [{"seconds": 20}] * 8)

        def running_on_a() -> bool:
            rows = query(
                pg_database,
                "SELECT count(*) FROM jobline_job j JOIN jobline_worker w ON w.id = j.worker_id"
                " WHERE j.status = 'running' AND w.pid = %s",
                (cut.pid,),
            )
            return bool(rows) and rows[0][0] == 8

        wait_until(running_on_a, timeout=120, what="8 long jobs running on worker A")
        fleet.start("worker-b", "worker", "--queue", "default", "--concurrency", "8")
        pg_proxy.blackhole()
        # B rescues A's jobs once A's lease lapses and runs them again.
        wait_progress(
            "A's jobs taken over and finished",
            lambda: _succeeded(pg_database) == 8,
            lambda: statuses(pg_database),
            fleet,
        )
        assert not overlaps(runlog), overlaps(runlog)
        pg_proxy.restore()
        enqueue(env, "stamp", [{}] * 10, queue="a")  # only A takes these
        wait_progress(
            "A works again",
            lambda: _succeeded(pg_database) == 18,
            lambda: statuses(pg_database),
            fleet,
        )
        assert statuses(pg_database) == {"succeeded": 18}
        assert not overlaps(runlog), overlaps(runlog)
        assert not fleet.dead(), fleet.tails()
    finally:
        pg_proxy.restore()
        fleet.stop()
