"""Fixtures: each behaviour test runs against real SQLite and real PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.core.cache import caches
from django.db import connections
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from jobline.dispatch.broker import BrokerUnavailable, local_broker
from jobline.dispatch.broker import free_port as free_port  # for the tests that import it here
from jobline.store import close_async_connections
from tests import otel

ROOT = Path(__file__).resolve().parent.parent

ALL_DATABASES = pytest.mark.django_db(transaction=True, databases="__all__")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test run on one database (the ``alias`` fixture) flushes only that one afterwards.

    Flushing PostgreSQL after every SQLite test was most of the suite's time. A PostgreSQL
    test keeps the SQLite database too: users and tokens of the web face live there.
    """
    for item in items:
        alias = getattr(getattr(item, "callspec", None), "params", {}).get("alias")
        marker = item.get_closest_marker("django_db")
        if alias is None or marker is None or marker.kwargs.get("databases") != "__all__":
            continue
        databases = ["default"] if alias == "default" else ["default", alias]
        item.add_marker(pytest.mark.django_db(transaction=True, databases=databases), append=False)


@pytest.fixture(params=["default", "postgres"], ids=["sqlite", "postgres"])
def alias(request: pytest.FixtureRequest) -> str:
    """A database alias; PostgreSQL is skipped only when unreachable outside CI."""
    if request.param not in settings.DATABASES:
        pytest.skip(
            f"PostgreSQL unreachable ({settings.POSTGRES_ERROR}); "
            "set JOBLINE_TEST_POSTGRES_URL (never skipped with CI=true)"
        )
    return request.param


@pytest.fixture(autouse=True)
def _no_async_connections_left() -> Iterator[None]:
    """``aenqueue`` keeps idle connections per event loop; a test's loop ends with the test,
    and an open connection would keep the test database from being dropped."""
    yield
    close_async_connections()


@pytest.fixture(autouse=True)
def _no_login_failures_carried_over() -> Iterator[None]:
    """Sign-in failures are counted in the cache (per address too): each test starts at 0."""
    yield
    caches["default"].clear()


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
    """``jobline ARGS``; its output is read by ``stop_process``, unless ``stdout`` (a file)
    takes it: a process that logs more than a pipe holds (64 KiB) would block on a pipe."""
    kwargs.setdefault("stdout", subprocess.PIPE)
    return subprocess.Popen(
        [sys.executable, "-m", "jobline.cli.main", *args],
        env=env,
        cwd=ROOT,
        stderr=subprocess.STDOUT,
        text=True,
        **kwargs,
    )


def wait_until(predicate, timeout: float = 30.0, what: str = "condition"):
    """Poll ``predicate`` until it returns something true, and return that."""
    deadline = time.monotonic() + timeout
    while not (result := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout} s")
        time.sleep(0.02)
    return result


def stop_process(proc: subprocess.Popen[str], timeout: float = 30) -> str:
    """Stop a ``jobline_process`` (SIGTERM, then SIGKILL after ``timeout``): its output (None
    if it went to a file)."""
    proc.terminate()
    try:
        return proc.communicate(timeout=timeout)[0]
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate()[0]


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


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Kafka-compatible broker (tansu, in memory) on a free port: its bootstrap address.

    Skipped with a message when it cannot start, except with CI=true, where that fails.
    """
    log = tmp_path_factory.mktemp("tansu") / "broker.log"
    with open(log, "w") as out:
        try:
            with local_broker(output=out) as address:
                yield address
                return
        except BrokerUnavailable as exc:
            why = f"{exc}: {log.read_text()[-2000:]}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"Kafka broker unavailable in CI: {why}")
    pytest.skip(f"Kafka broker unavailable: {why} (never skipped with CI=true)")


@pytest.fixture
def kafka(settings, kafka_broker: str) -> str:
    """Kafka enabled against the test broker, on a topic of this test's own."""
    settings.JOBLINE_KAFKA_ENABLED = True
    settings.JOBLINE_KAFKA_BOOTSTRAP_SERVERS = kafka_broker
    settings.JOBLINE_KAFKA_IDEMPOTENT = False  # tansu has no InitProducerId
    settings.JOBLINE_KAFKA_TOPIC = f"jobs-{uuid.uuid4().hex[:12]}"
    return settings.JOBLINE_KAFKA_TOPIC


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """OpenTelemetry configured for this test (tests/otel.py) and its finished spans:
    ``spans.get_finished_spans()``."""
    with otel.recording() as found:
        yield found
