"""A SQLite database locked by another process, or read-only: every face says so in one
clear line (CLI exit 1, API and UI 503 with Retry-After), the worker waits and carries on,
and nothing is lost or half-written.

Everything runs as real processes on a file of the test's own: ``jobline web`` on loopback,
``jobline worker`` and ``scheduler``, and a second process holding SQLite's write lock.
Root ignores file modes, so the read-only test drops CAP_DAC_OVERRIDE for its processes.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, free_port, jobline_process, stop_process, wait_until

BUSY_TIMEOUT = "0.5"  # seconds; what a locked write waits before it fails
# As root, drop the capability that ignores file modes (inherited by the command run).
AS_USER = (
    ["setpriv", "--inh-caps=-dac_override", "--bounding-set=-dac_override"]
    if os.geteuid() == 0
    else []
)
HOLD_LOCK = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
db.execute("UPDATE jobline_job SET priority = priority")  # a long writer, mid-transaction
print("held", flush=True)
sys.stdin.readline()
db.execute("COMMIT")
"""


class Service:
    """A migrated SQLite file, an admin, an API token, and the environment to run on it."""

    def __init__(self, tmp_path: Path):
        self.path = tmp_path / "jobline.sqlite3"
        self.env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
        self.env.update(
            DATABASE_URL=f"sqlite:///{self.path}",
            JOBLINE_DATA_DIR=str(tmp_path / "data"),
            JOBLINE_SQLITE_BUSY_TIMEOUT=BUSY_TIMEOUT,
            JOBLINE_HEARTBEAT_SECONDS="0.5",
            INITIAL_SUPERUSER_NAME="admin",
            INITIAL_SUPERUSER_PASSWORD="admin-password-1",
            PYTHONPATH=str(ROOT),
            SECRET_KEY="tests-only",
        )
        self.run("migrate")
        self.run("initialsuperuser")
        self.token = self.run("token", "create", "t").stdout.strip().splitlines()[-1]

    def run(self, *args: str, check: bool = True, prefix: list[str] | None = None):
        command = [*(prefix or []), sys.executable, "-m", "jobline.cli.main", *args]
        done = subprocess.run(command, env=self.env, cwd=ROOT, capture_output=True, text=True)
        if check:
            assert done.returncode == 0, done.stdout + done.stderr
        return done

    def rows(self, sql: str) -> list[tuple]:
        with sqlite3.connect(f"file:{self.path}?mode=ro", uri=True) as db:
            return db.execute(sql).fetchall()

    def statuses(self) -> dict[str, int]:
        return dict(self.rows("SELECT status, count(*) FROM jobline_job GROUP BY status"))


@pytest.fixture
def service(tmp_path: Path) -> Service:
    return Service(tmp_path)


@pytest.fixture
def web(service: Service) -> Iterator[str]:
    port = free_port()
    proc = jobline_process(service.env, "web", "--port", str(port))
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(f"{base}/api/v1/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(up, what="jobline web answering")
    yield base
    stop_process(proc)


@pytest.fixture
def hold_lock(service: Service) -> Iterator[Callable[[], subprocess.Popen[str]]]:
    """Start a second process that holds the database's write lock until ``release``."""
    holders: list[subprocess.Popen[str]] = []

    def start() -> subprocess.Popen[str]:
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLD_LOCK, str(service.path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        holders.append(holder)
        assert holder.stdout.readline().strip() == "held"
        return holder

    yield start
    for holder in holders:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


def release(holder: subprocess.Popen[str]) -> None:
    holder.stdin.write("\n")
    holder.stdin.flush()
    assert holder.wait(timeout=10) == 0


def signed_in(base: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=30)
    client.get("/login/")
    form = {"username": "admin", "password": "admin-password-1"}
    form["csrfmiddlewaretoken"] = client.cookies["csrftoken"]
    assert client.post("/login/", data=form).status_code == 302
    return client


def one_clear_line(done: subprocess.CompletedProcess[str], words: str) -> str:
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert words in lines[0]
    return lines[0]


def test_a_locked_database_is_waited_out_and_nothing_is_lost(service, web, hold_lock, tmp_path):
    api = httpx.Client(
        base_url=web, headers={"Authorization": f"Bearer {service.token}"}, timeout=30
    )
    ui = signed_in(web)
    before = [api.post("/api/v1/jobs", json={"type": "noop"}).json()["id"] for _ in range(5)]
    holder = hold_lock()
    line = one_clear_line(service.run("enqueue", "noop", check=False), "is locked")
    assert line.startswith("jobline enqueue: the SQLite database")
    assert "JOBLINE_SQLITE_BUSY_TIMEOUT" in line

    refused = api.post("/api/v1/jobs", json={"type": "noop"})
    assert refused.status_code == 503
    assert int(refused.headers["Retry-After"]) > 0
    assert "is locked" in refused.json()["detail"]
    assert api.get("/api/v1/jobs").status_code == 200  # WAL: reading goes on meanwhile

    csrf = {"X-CSRFToken": ui.cookies["csrftoken"]}
    page = ui.post("/queues/default/pause/", headers=csrf)
    assert page.status_code == 503
    assert "Retry-After" in page.headers
    assert "The database is unavailable" in page.text and "is locked" in page.text

    worker_log = tmp_path / "worker.log"
    scheduler_log = tmp_path / "scheduler.log"
    with worker_log.open("w") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "jobline.cli.main", "worker"],
            env=service.env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    with scheduler_log.open("w") as out:
        scheduler = subprocess.Popen(
            [sys.executable, "-m", "jobline.cli.main", "scheduler"],
            env=service.env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(lambda: "is locked" in worker_log.read_text(), what="the worker's log line")
        wait_until(lambda: "is locked" in scheduler_log.read_text(), what="the scheduler's")
        assert service.statuses() == {"queued": 5}  # nothing ran, nothing half-written

        release(holder)
        wait_until(lambda: service.statuses() == {"succeeded": 5}, what="the 5 jobs done")
        after = service.run("enqueue", "noop").stdout.strip().splitlines()[-1]
        wait_until(lambda: service.statuses() == {"succeeded": 6}, what="a job after the lock")
        assert ui.post("/queues/default/pause/", headers=csrf).status_code == 302
    finally:
        worker.terminate()
        scheduler.terminate()
        assert worker.wait(timeout=30) == 0
        scheduler.wait(timeout=30)

    worker_lines = worker_log.read_text().splitlines()
    assert len([w for w in worker_lines if "is locked" in w]) == 1  # once per outage
    assert any("starting the worker working again" in w for w in worker_lines)
    assert "Traceback" not in worker_log.read_text() + scheduler_log.read_text()
    assert service.rows("PRAGMA integrity_check") == [("ok",)]
    jobs = service.rows("SELECT id, status, attempts FROM jobline_job ORDER BY id")
    assert [j[0] for j in jobs][:5] == before and str(jobs[-1][0]) in after
    assert {(status, attempts) for _, status, attempts in jobs} == {("succeeded", 1)}


def test_a_read_only_database_says_so_everywhere_and_is_left_whole(service, tmp_path):
    queued = service.run("enqueue", "noop").stdout.strip().splitlines()[-1]
    service.path.chmod(0o444)
    try:
        done = service.run("enqueue", "noop", check=False, prefix=AS_USER)
        line = one_clear_line(done, "is read-only")
        assert "write access to the file and its folder" in line

        worker = service.run("worker", "--timeout", "5", check=False, prefix=AS_USER)
        assert "is read-only" in worker.stdout + worker.stderr
        assert worker.returncode == 1 and "Traceback" not in worker.stderr

        port = free_port()
        web = subprocess.Popen(
            [*AS_USER, sys.executable, "-m", "jobline.cli.main", "web", "--port", str(port)],
            env=service.env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            base = f"http://127.0.0.1:{port}"

            def answer() -> httpx.Response | None:
                try:
                    return httpx.post(
                        f"{base}/api/v1/jobs",
                        json={"type": "noop"},
                        headers={"Authorization": f"Bearer {service.token}"},
                    )
                except httpx.HTTPError:
                    return None

            refused = wait_until(answer, what="jobline web answering")
            assert refused.status_code == 503
            assert refused.headers["Retry-After"] == "60"
            assert "is read-only" in refused.json()["detail"]
        finally:
            stop_process(web)
    finally:
        service.path.chmod(0o600)
    assert service.rows("PRAGMA integrity_check") == [("ok",)]
    assert service.rows("SELECT id, status FROM jobline_job") == [(int(queued), "queued")]
