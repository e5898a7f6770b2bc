"""Hostile input through the public surface (API, UI, admin) on SQLite and PostgreSQL.

The ``surface`` fixture serves the project's "default" database from the ``alias`` under
test, so Django's test client drives the API, the UI and the admin against real PostgreSQL
too. A loopback ``receiver`` records any request that would leak out.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.contrib.auth.models import User
from django.db import connections
from django.test import Client

from jobline.models.api import ApiToken
from tests.api.conftest import Api
from tests.api.conftest import receiver as receiver
from tests.conftest import ALL_DATABASES


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/hardening/" in str(item.path).replace("\\", "/"):
            item.add_marker(ALL_DATABASES)


@pytest.fixture
def surface(alias: str) -> Iterator[str]:
    """Requests (and the ORM's "default") go to ``alias`` for the test."""
    original = connections["default"]
    connections["default"] = connections[alias]
    try:
        yield alias
    finally:
        connections["default"] = original


@pytest.fixture
def api(surface: str) -> Api:
    return Api(Client(), ApiToken.issue("hostile")[1])


@pytest.fixture
def reader(surface: str) -> Api:
    return Api(Client(), ApiToken.issue("hostile-reader", read_only=True)[1])


@pytest.fixture
def staff(surface: str) -> User:
    return User.objects.create_user("ops", password="pw-ops-123", is_staff=True, is_superuser=True)


@pytest.fixture
def ui(staff: User) -> Client:
    client = Client()
    client.force_login(staff)
    return client
