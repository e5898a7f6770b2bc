"""Inputs and outputs schemas: derived from type hints, validated with pydantic."""

from __future__ import annotations

import inspect
import json
import typing
from collections.abc import Callable
from typing import Any

import pydantic
import pydantic_core


class InputsError(ValueError):
    """Inputs do not fit the job type's schema; ``errors`` lists each failing field."""

    def __init__(self, job_type: str, errors: list[dict[str, Any]]):
        self.job_type = job_type
        self.errors = errors
        fields = "; ".join(f"{e['field'] or '(root)'}: {e['message']}" for e in errors)
        super().__init__(f"invalid inputs for job type {job_type!r}: {fields}")


class Schema:
    """A validator and JSON Schema for one shape of data (a job's inputs or outputs)."""

    def __init__(
        self, name: str, adapter: pydantic.TypeAdapter[Any] | None, *, strict: bool = False
    ):
        self.name = name
        self._adapter = adapter
        #: refuse unknown keys and values of the wrong JSON type ("5" for an int), as the API
        #: does, instead of dropping or coercing them; job types opt out with ``strict=False``
        self.strict = strict
        self._is_model = False
        self._secrets: bool | None = None  # whether the schema has SecretStr-like fields

    @classmethod
    def from_type(cls, name: str, tp: Any, *, strict: bool = False) -> Schema:
        return cls(name, None if tp is None else pydantic.TypeAdapter(tp), strict=strict)

    @classmethod
    def from_signature(cls, name: str, fn: Callable[..., Any], *, strict: bool = False) -> Schema:
        """Build the inputs model from a function's keyword parameters and their hints."""
        hints = typing.get_type_hints(fn)
        fields: dict[str, Any] = {}
        for param in inspect.signature(fn).parameters.values():
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                raise TypeError(f"job {name!r}: *args and **kwargs cannot be described as inputs")
            default = ... if param.default is param.empty else param.default
            fields[param.name] = (hints.get(param.name, Any), default)
        model = pydantic.create_model(
            f"{name}_inputs", __config__=pydantic.ConfigDict(extra="forbid"), **fields
        )
        schema = cls(name, pydantic.TypeAdapter(model), strict=strict)
        schema._is_model = True
        return schema

    def json_schema(self) -> dict[str, Any]:
        if self._adapter is None:
            return {}
        return self._adapter.json_schema()

    def validate(self, data: Any) -> Any:
        """Return the typed value for ``data`` or raise :class:`InputsError`."""
        if self._adapter is None:
            return data
        data = {} if data is None else data
        try:
            if self.strict:
                return self._validate_strictly(data)
            return self._adapter.validate_python(data)
        except pydantic.ValidationError as exc:
            raise InputsError(self.name, _field_errors(exc)) from None

    def _validate_strictly(self, data: Any) -> Any:
        # Inputs are JSON once stored, so they are judged as JSON: strict JSON mode refuses
        # "5" for an int yet takes an ISO string for a datetime, which strict Python mode
        # would not. Python values with no JSON form are judged as they are.
        try:
            raw = pydantic_core.to_json(data)
        except pydantic_core.PydanticSerializationError:
            return self._adapter.validate_python(data, strict=True, extra="forbid")
        return self._adapter.validate_json(raw, strict=True, extra="forbid")

    def to_json(self, value: Any, *, keep_secrets: bool = False) -> Any:
        """Dump a typed value back to plain JSON data.

        pydantic writes ``SecretStr`` values as ``"**********"``; with ``keep_secrets`` (for
        inputs, which are stored for the job to run with) they keep their real value."""
        if self._adapter is None:
            return value
        data = self._adapter.dump_python(value, mode="json")
        if keep_secrets and self._has_secrets():
            data = _revealed(data, self._adapter.dump_python(value))
        return data

    def _has_secrets(self) -> bool:
        if self._secrets is None:
            try:
                self._secrets = '"writeOnly": true' in json.dumps(self.json_schema())
            except pydantic.PydanticUserError:  # no JSON Schema: look at the values each time
                self._secrets = True
        return self._secrets

    def as_kwargs(self, value: Any) -> dict[str, Any]:
        """The validated inputs of a function job, as keyword arguments."""
        assert self._is_model, "only signature schemas map to keyword arguments"
        # The model forbids extra keys, so its __dict__ holds exactly the fields: 25 times
        # cheaper than dict(value), whose keys() probe goes through pydantic's __getattr__.
        return dict(value.__dict__)


def _revealed(data: Any, raw: Any) -> Any:
    """``data`` (a JSON dump) with the secrets found at the same places in ``raw`` (the
    Python dump, which keeps ``SecretStr`` objects) in full."""
    if isinstance(raw, pydantic.SecretStr | pydantic.SecretBytes | pydantic.Secret):
        secret = raw.get_secret_value()
        return secret.decode() if isinstance(secret, bytes) else secret
    if isinstance(raw, dict) and isinstance(data, dict):
        return {k: _revealed(v, raw.get(k)) for k, v in data.items()}
    if isinstance(raw, list | tuple) and isinstance(data, list) and len(raw) == len(data):
        return [_revealed(v, r) for v, r in zip(data, raw, strict=True)]
    return data


def _field_errors(exc: pydantic.ValidationError) -> list[dict[str, Any]]:
    return [
        {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"], "type": e["type"]}
        for e in exc.errors(include_url=False)
    ]
