"""The OpenAPI document, the offline Swagger UI, and a schemathesis fuzz run of the whole API."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from jobline.models.api import ApiToken

schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", get_wsgi_application())
# /api/v1/events is an endless stream (ASGI only; over WSGI it answers 503 by design): a fuzzer
# that reads whole bodies cannot call it. tests/web/test_events.py and tests/hardening cover it.
fuzzed = schema.exclude(operation_id="jobline_events")


def test_openapi_document(anonymous):
    r = anonymous.client.get("/api/v1/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    assert doc["openapi"].startswith("3.")
    paths = doc["paths"]
    for path in (
        "/api/v1/jobs",
        "/api/v1/jobs/{job_id}",
        "/api/v1/jobs/{job_id}/report",
        "/api/v1/jobs/cancel",
        "/api/v1/job-types",
        "/api/v1/queues/{name}/pause",
        "/api/v1/workers",
        "/api/v1/templates/{template_id}/run",
        "/api/v1/timer",
        "/api/v1/timer/{timer_id}",
    ):
        assert path in paths, path
    assert doc["components"]["securitySchemes"]["BearerToken"]["scheme"] == "bearer"
    create = paths["/api/v1/jobs"]["post"]
    assert {"201", "401", "403", "413", "422"} <= set(create["responses"])
    assert "security" not in paths["/api/v1/health"]["get"]


def test_swagger_ui_is_served_from_the_installed_package(anonymous):
    page = anonymous.client.get("/api/v1/docs").content.decode()
    assert "swagger-ui-bundle.js" in page
    external = re.findall(r'(?:src|href)="(https?:[^"]*)"', page)
    assert external == [], "the docs page must work offline"
    for asset in re.findall(r'(?:src|href)="(/[^"]+)"', page):
        r = anonymous.client.get(asset)
        assert r.status_code == 200 and b"".join(r.streaming_content), asset
    assert anonymous.client.get("/api/v1/docs/assets/settings.py").status_code == 404


@pytest.fixture
def bearer(db) -> Iterator[dict[str, str]]:
    """A token; and, as Django's test client does, the test's connection kept open."""
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield {"Authorization": f"Bearer {ApiToken.issue('fuzz')[1]}"}
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


@fuzzed.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_fuzz__no_server_errors_and_responses_fit_the_schema(case, bearer):
    """Every default check but positive_data_acceptance: schema-valid bodies may still break
    rules the schema cannot state (an unknown job type, inputs for that type), which is 422."""
    case.call_and_validate(headers=bearer, excluded_checks=[positive_data_acceptance])
