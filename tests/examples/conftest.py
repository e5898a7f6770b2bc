"""Services for the examples' tests: a DynamoDB (moto's server) and fresh databases.

Each is skipped with a message when it cannot be had, except with CI=true, where that fails.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.conf import settings

from tests.conftest import free_port
from tests.settings import PG_URL


def unavailable(what: str, why: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} unavailable in CI: {why}")
    pytest.skip(f"{what} unavailable: {why} (never skipped with CI=true)")


@pytest.fixture(scope="session")
def dynamodb_endpoint() -> Iterator[str]:
    """moto's server mode on a free loopback port: a DynamoDB that boto3 reaches over HTTP."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as exc:
        unavailable("moto server", f"{exc} (is the dev dependency group installed?)")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request otherwise
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A DATABASE_URL for an empty database of its own, dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'example.sqlite3'}"
        return
    if settings.POSTGRES_ERROR is not None:
        unavailable("PostgreSQL", settings.POSTGRES_ERROR)
    import psycopg

    name = f"jobline_example_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlsplit(PG_URL)._replace(path=f"/{name}").geturl()
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def query(url: str, sql: str) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` on the database at ``url`` (an example's own tables)."""
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
            return db.execute(sql).fetchall()
    import psycopg

    with psycopg.connect(url) as db:
        return db.execute(sql).fetchall()
