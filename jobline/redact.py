"""Secrets in job inputs: what the UI, the API and the logs show instead of them.

Three rules, one module. Fields the job type's schema marks secret (``SecretStr``, a
``writeOnly`` or ``password`` field) are hidden entirely. Values under secret-looking keys
(``google_api_key``, ``password``, ``token``, ``Authorization``, ``Cookie``...), at any depth
and of any type, are masked: strings show only their last 4 characters, anything else is
hidden. The password of a URL (``https://user:password@host``) is masked wherever it
appears: in inputs, outputs, errors and logs (:func:`masked_text`, :class:`SecretsFilter`).
The lines a job logs are masked further: values after secret-looking keys in the text
(:func:`masked_log_text`).
The stored inputs keep the real values: executors and jobs need them.

Forms (web UI, admin) and the API show stored inputs masked, so what comes back on save may
hold those masks: :func:`unmasked` puts the stored secret back wherever a submitted value is
still the mask of the stored one at the same place, so editing another field keeps the real
secret while a newly typed value replaces it.
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache
from typing import Any

from django import forms

from jobline.core.jobtypes import registry
from jobline.core.schema import Schema

SECRET_NAME = re.compile(
    r"key|secret|password|passwd|token|credential|authori[sz]ation|cookie", re.IGNORECASE
)
HIDDEN = "••••••"
# In free text (a job's log lines): ``api_key=...``, ``"password": "..."``,
# ``Authorization: Bearer ...``: the value after a secret-looking key.
SECRET_PAIR = re.compile(
    rf"(?i)(?P<key>[\w.-]*(?:{SECRET_NAME.pattern})[\w.-]*[\"']?\s*[=:]\s*[\"']?)"
    r"(?P<scheme>(?:bearer|basic|token)\s+)?(?P<value>[^\s\"',;&]+)"
)
# scheme://user:password@ -> the password; the user name stays readable.
URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/?#\s:@]*:)[^/?#\s@]*@")


def mask(secret: str) -> str:
    """``****WXYZ``: the last 4 characters, and only of a secret long enough to spare them."""
    return f"****{secret[-4:]}" if len(secret) >= 12 else "****"


def masked_text(text: str) -> str:
    """``text`` with the password of every URL in it masked."""
    return URL_PASSWORD.sub(r"\1****@", text)


def storable(text: str) -> str:
    """``text`` with each NUL character replaced: PostgreSQL text cannot hold it, and a write
    it refuses would be tried again and again."""
    return text.replace("\x00", "\ufffd")


def masked_log_text(text: str) -> str:
    """A line of free text as a job's log shows it: URL passwords masked, and values after
    secret-looking keys (``token=...``, ``password: ...``)."""
    return SECRET_PAIR.sub(
        lambda m: m["key"] + (m["scheme"] or "") + mask(m["value"]), masked_text(text)
    )


def _secret(value: Any) -> Any:
    """A value under a secret-looking key, whatever its type."""
    if isinstance(value, str):
        return mask(value)
    return value if value is None else HIDDEN


def redacted(value: Any) -> Any:
    """``value`` with values under secret-looking keys and URL passwords masked, at any
    depth."""
    if isinstance(value, dict):
        return {
            k: _secret(v) if SECRET_NAME.search(str(k)) else redacted(v) for k, v in value.items()
        }
    if isinstance(value, list):
        return [redacted(v) for v in value]
    if isinstance(value, str):
        return masked_text(value)
    return value


class SecretsFilter(logging.Filter):
    """A logging filter that masks URL passwords in every record it passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        shown = masked_text(message)
        if shown != message:
            record.msg, record.args = shown, None
        return True


def masked_inputs(job_type: str, inputs: Any, schema: dict[str, Any] | None = None) -> Any:
    """A job's inputs as people may see them (UI, API): secrets hidden or masked.

    ``schema`` is a further JSON Schema the inputs fit (a template's own ``inputs_schema``):
    the fields it marks secret are hidden too."""
    if job_type not in registry:
        shown = redacted(inputs)
    else:
        by_type = _json_schema(registry.get(job_type).inputs)
        shown = _masked(inputs, by_type, by_type.get("$defs", {}))
    if isinstance(schema, dict):
        shown = _either(shown, _masked(inputs, schema, schema.get("$defs", {})), inputs)
    return shown


def unmasked(
    job_type: str, submitted: Any, stored: Any, schema: dict[str, Any] | None = None
) -> Any:
    """``submitted`` inputs with each value that is still the mask of the ``stored`` value at
    the same place (as :func:`masked_inputs` shows it, for the stored inputs' ``job_type`` and
    ``schema``) replaced by the stored value: an unchanged mask keeps the secret."""
    return _restored(submitted, masked_inputs(job_type, stored, schema), stored)


def _restored(new: Any, shown: Any, old: Any) -> Any:
    if isinstance(new, dict) and isinstance(shown, dict) and isinstance(old, dict):
        return {
            k: _restored(v, shown[k], old[k]) if k in old and k in shown else v
            for k, v in new.items()
        }
    if isinstance(new, list) and isinstance(shown, list) and isinstance(old, list):
        return [
            _restored(v, shown[i], old[i]) if i < min(len(old), len(shown)) else v
            for i, v in enumerate(new)
        ]
    if isinstance(new, str) and isinstance(shown, str) and new == shown and shown != old:
        return old  # the mask came back unchanged
    return new


def _either(a: Any, b: Any, raw: Any) -> Any:
    """Two maskings of ``raw`` merged: what either of them masks is masked."""
    if isinstance(raw, dict) and isinstance(a, dict) and isinstance(b, dict):
        return {k: _either(a.get(k), b.get(k), v) for k, v in raw.items()}
    if isinstance(raw, list) and isinstance(a, list) and isinstance(b, list):
        return [_either(x, y, v) for x, y, v in zip(a, b, raw, strict=True)]
    return a if a != raw else b


class MaskedInputsForm(forms.ModelForm):
    """An admin form for a model with ``job_type`` and ``inputs`` (and maybe
    ``inputs_schema``): the inputs box shows secrets masked, and a mask sent back unchanged
    keeps the stored secret (:func:`unmasked`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None and "inputs" in self.fields:
            self.initial["inputs"] = masked_inputs(*self._stored())

    def _stored(self) -> tuple[str, Any, Any]:
        # Until the form is saved the instance holds what is stored, not what was sent.
        instance = self.instance
        return instance.job_type, instance.inputs, getattr(instance, "inputs_schema", None)

    def clean_inputs(self) -> Any:
        value = self.cleaned_data.get("inputs")
        if self.instance.pk is None:
            return value
        job_type, stored, schema = self._stored()
        return unmasked(job_type, value, stored, schema)


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
        return {k: _field(k, v, props.get(k, {}), defs) for k, v in value.items()}
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [_masked(v, schema["items"], defs) for v in value]
    return redacted(value)


def _field(key: Any, value: Any, schema: dict[str, Any], defs: dict[str, Any]) -> Any:
    """A typed object's field: hidden if its schema says so, masked if its name says so."""
    shown = _masked(value, schema, defs)
    if shown != HIDDEN and SECRET_NAME.search(str(key)):
        return _secret(value)
    return shown
