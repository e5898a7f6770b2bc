"""The API's settings, read from Django settings with documented defaults."""

from __future__ import annotations

from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    "JOBLINE_API_PUBLIC_READ": False,  # anyone may call the read-only (GET) endpoints
    "JOBLINE_API_MAX_BODY_BYTES": 1_048_576,  # larger request bodies get 413
    "JOBLINE_API_MAX_INPUTS_BYTES": 262_144,  # larger job inputs (as JSON) get 413
}


def get(name: str) -> Any:
    return getattr(settings, name, DEFAULTS[name])
