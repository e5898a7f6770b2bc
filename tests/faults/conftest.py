"""Fixtures for real faults: a private PostgreSQL cluster to crash, a proxy to cut links.

* ``pg_cluster``: the session's private cluster (``tests/faults/cluster.py``), running at the
  start and at the end of each test whatever the test did to it.
* ``pg_database``: a new database in it with jobline's tables: its DATABASE_URL.
* ``pg_proxy``: a ``TcpProxy`` (``tests/faults/proxy.py``) in front of the cluster; point a
  process at ``pg_cluster.database_url(name, port=pg_proxy.port)``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest

from tests.conftest import ROOT
from tests.faults.cluster import ClusterUnavailable, PostgresCluster
from tests.faults.proxy import TcpProxy


def _unavailable(why: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"private PostgreSQL cluster unavailable in CI: {why}")
    pytest.skip(f"private PostgreSQL cluster unavailable: {why} (never skipped with CI=true)")


@pytest.fixture(scope="session")
def _private_cluster() -> Iterator[PostgresCluster]:
    try:
        cluster = PostgresCluster()
    except ClusterUnavailable as exc:
        _unavailable(str(exc))
    with cluster:
        yield cluster


@pytest.fixture
def pg_cluster(_private_cluster: PostgresCluster) -> Iterator[PostgresCluster]:
    _private_cluster.ensure_running()
    yield _private_cluster
    _private_cluster.ensure_running()  # a test that stopped it leaves it usable for the next


@pytest.fixture
def pg_database(pg_cluster: PostgresCluster) -> str:
    """A fresh database with jobline's tables (``jobline migrate``): its DATABASE_URL."""
    name = f"jobline_{uuid.uuid4().hex[:12]}"
    url = pg_cluster.create_database(name)
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update(DATABASE_URL=url, SECRET_KEY="tests-only", PYTHONPATH=str(ROOT))
    res = subprocess.run(
        [sys.executable, "-m", "jobline.cli.main", "migrate"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    return url


@pytest.fixture
def pg_proxy(pg_cluster: PostgresCluster) -> Iterator[TcpProxy]:
    with TcpProxy("127.0.0.1", pg_cluster.port) as proxy:
        yield proxy
