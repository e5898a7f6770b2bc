"""Secrets in job inputs: what the UI, the API and the logs show instead of them.

Two rules, one helper. Fields the job type's schema marks secret (``SecretStr``, a
``writeOnly`` or ``password`` field) are hidden entirely. Inside free-form objects, whose
schema names no fields (such as a ``kafka`` job's ``configs``), strings under secret-looking
keys (``google_api_key``, ``password``, ``token``...) show only their last 4 characters.
The stored inputs keep the real values: executors and jobs need them.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from jobline.core.schema import Schema
from jobline.definitions import registry

SECRET_NAME = re.compile(r"key|secret|password|passwd|token|credential", re.IGNORECASE)
HIDDEN = "••••••"


def mask(secret: str) -> str:
    """``****WXYZ``: the last 4 characters, and only of a secret long enough to spare them."""
    return f"****{secret[-4:]}" if len(secret) >= 12 else "****"


def redacted(value: Any) -> Any:
    """``value`` with strings under secret-looking keys masked, at any depth."""
    if isinstance(value, dict):
        return {
            k: mask(v) if isinstance(v, str) and SECRET_NAME.search(str(k)) else redacted(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redacted(v) for v in value]
    return value


def masked_inputs(job_type: str, inputs: Any) -> Any:
    """A job's inputs as people may see them (UI, API): secrets hidden or masked."""
    if job_type not in registry:
        return redacted(inputs)
    schema = _json_schema(registry.get(job_type).inputs)
    return _masked(inputs, schema, schema.get("$defs", {}))


@lru_cache(maxsize=256)
def _json_schema(inputs: Schema) -> dict[str, Any]:
    return inputs.json_schema()  # built once per type: a page of the API masks many jobs


def _masked(value: Any, schema: dict[str, Any], defs: dict[str, Any]) -> Any:
    if "$ref" in schema:
        schema = defs.get(schema["$ref"].rsplit("/", 1)[-1], {})
    for option in schema.get("anyOf", []):
        if option.get("type") != "null":
            return _masked(value, option, defs)
    if schema.get("writeOnly") or schema.get("format") == "password":
        return HIDDEN if value else value
    if isinstance(value, dict):
        if "properties" not in schema:  # free-form: only the keys' names can tell
            return redacted(value)
        props = schema["properties"]
        return {k: _masked(v, props.get(k, {}), defs) for k, v in value.items()}
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [_masked(v, schema["items"], defs) for v in value]
    return value
