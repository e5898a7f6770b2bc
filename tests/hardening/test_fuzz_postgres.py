"""The schemathesis run of tests/api/test_openapi.py, with PostgreSQL behind the API: NUL
characters, calendar edges and odd names reach a database that refuses them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, connections
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from jobline.models.api import ApiToken
from tests.api.test_openapi import fuzzed


@pytest.fixture
def pg_bearer(pg_alias: str) -> Iterator[dict[str, str]]:
    original = connections["default"]
    connections["default"] = connections[pg_alias]
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    try:
        yield {"Authorization": f"Bearer {ApiToken.issue('fuzz')[1]}"}
    finally:
        for signal in (request_started, request_finished):
            signal.connect(close_old_connections)
        connections["default"] = original


@fuzzed.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_fuzz_on_postgres__no_server_errors_and_responses_fit_the_schema(case, pg_bearer):
    case.call_and_validate(headers=pg_bearer, excluded_checks=[positive_data_acceptance])
