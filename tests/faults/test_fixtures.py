"""The fault fixtures do what they say: a black hole hangs a client, a crash is survived."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from tests.conftest import wait_until


def test_cluster_crash_restart_and_stop_start(pg_cluster):
    conn = psycopg.connect(pg_cluster.url, autocommit=True)
    assert conn.execute("SELECT 1").fetchone() == (1,)
    pg_cluster.restart_immediate()
    with pytest.raises(psycopg.OperationalError):  # its backend was killed
        conn.execute("SELECT 1")
    assert pg_cluster.accepts_connections()
    pg_cluster.stop()
    assert not pg_cluster.running() and not pg_cluster.accepts_connections()
    pg_cluster.start()
    with psycopg.connect(pg_cluster.url) as again:
        assert again.execute("SELECT 1").fetchone() == (1,)


def test_cluster_is_private(pg_cluster):
    assert pg_cluster.port != 5432
    with psycopg.connect(pg_cluster.url) as conn:
        data_dir = conn.execute("SHOW data_directory").fetchone()[0]
    assert data_dir == str(pg_cluster.data)


def test_blackhole_hangs_a_query_until_the_client_deadline_and_restore_heals(pg_cluster, pg_proxy):
    url = pg_cluster.database_url("postgres", port=pg_proxy.port)
    conn = psycopg.connect(url, autocommit=True)
    conn.execute("SET statement_timeout = 0")
    pg_proxy.blackhole()
    # The query never reaches the server and no error comes back: only a deadline of the
    # client's own (here the wait on ``done``) ends the wait.
    done = threading.Event()
    failure: list[BaseException] = []

    def query() -> None:
        try:
            conn.execute("SELECT 1")
        except BaseException as exc:  # reported below
            failure.append(exc)
        done.set()

    threading.Thread(target=query, daemon=True).start()
    assert not done.wait(2.0), "a black-holed query answered"
    # New connections hang too (no SYN answered): connect_timeout is the deadline.
    started = time.monotonic()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=2)
    assert time.monotonic() - started >= 1.5
    pg_proxy.restore()
    assert done.wait(30), "the held query did not finish after restore"
    assert not failure, failure
    with psycopg.connect(url, connect_timeout=10) as fresh:
        assert fresh.execute("SELECT 2").fetchone() == (2,)
    conn.close()


def test_reset_closes_every_connection(pg_cluster, pg_proxy):
    url = pg_cluster.database_url("postgres", port=pg_proxy.port)
    conn = psycopg.connect(url, autocommit=True)
    conn.execute("SELECT 1")
    wait_until(lambda: pg_proxy.connections == 1, what="one proxied connection")
    pg_proxy.reset()
    with pytest.raises(psycopg.OperationalError):
        conn.execute("SELECT 1")
    assert pg_proxy.connections == 0
    with psycopg.connect(url, connect_timeout=10) as fresh:  # new connections still work
        assert fresh.execute("SELECT 3").fetchone() == (3,)
