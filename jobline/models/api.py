"""API tokens, and templates (presets to start jobs from)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from jobline.core import input_rules

if TYPE_CHECKING:
    import jsonschema
from jobline.core.jobtypes import registry
from jobline.exceptions import InputsError
from jobline.input_guard import field_errors
from jobline.redact import unmasked

TOKEN_PREFIX = "jl_"
#: pydantic's error types for a required input left out (models, dataclasses, signatures)
_MISSING = {"missing", "missing_argument", "missing_keyword_only_argument"}
LAST_USED_PRECISION = timedelta(minutes=1)  # so a busy token is not a write per request


def hash_token(secret: str) -> str:
    """Tokens are random 256-bit secrets, so a plain SHA-256 is enough to store them."""
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiToken(models.Model):
    """A bearer token for the API. Only its hash is stored; the secret is shown once."""

    name = models.CharField(max_length=100, unique=True)
    read_only = models.BooleanField(default=False, help_text="Can only read, never change.")
    prefix = models.CharField(max_length=12, editable=False, help_text="To recognise it.")
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…{', read-only' if self.read_only else ''})"

    def new_secret(self) -> str:
        """Give the token a fresh secret (not saved) and return it: the only time it is seen."""
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        self.prefix = secret[:8]
        self.token_hash = hash_token(secret)
        return secret

    @classmethod
    def issue(cls, name: str, *, read_only: bool = False) -> tuple[ApiToken, str]:
        """Create and save a token; returns it with its secret."""
        token = cls(name=name, read_only=read_only)
        secret = token.new_secret()
        token.full_clean()
        token.save()
        return token, secret

    @classmethod
    def find(cls, secret: str) -> ApiToken | None:
        if not secret.startswith(TOKEN_PREFIX) or len(secret) > 100:
            return None
        return cls.objects.filter(token_hash=hash_token(secret)).first()

    def touch(self) -> None:
        now = timezone.now()
        if self.last_used_at is None or now - self.last_used_at > LAST_USED_PRECISION:
            ApiToken.objects.filter(pk=self.pk).update(last_used_at=now)
            self.last_used_at = now


class Template(models.Model):
    """A preset to start jobs from: job type, default inputs, options, who may start it, and
    optionally the schedule that starts it on a clock."""

    name = models.SlugField(max_length=100, unique=True, help_text="Letters, digits, - and _.")
    label = models.CharField(max_length=200, blank=True, help_text="Shown to people.")
    description = models.TextField(blank=True)
    job_type = models.CharField(max_length=200)
    inputs = models.JSONField(default=dict, blank=True, help_text="Default inputs.")
    inputs_schema = models.JSONField(
        null=True,
        blank=True,
        help_text="Optional JSON Schema the merged inputs must also fit (and the form shows).",
    )
    user_triggered = models.BooleanField(default=True, help_text="People may start it.")
    enabled = models.BooleanField(default=True)
    queue = models.CharField(max_length=100, blank=True, help_text="Empty: the type's queue.")
    priority = models.SmallIntegerField(null=True, blank=True, help_text="Empty: the type's.")
    delay = models.FloatField(
        null=True, blank=True, help_text="Seconds a job started from it waits before it runs."
    )
    schedule = models.OneToOneField(
        "jobline.Schedule",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="template",
        help_text="The schedule that starts its jobs on a clock, if any.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return self.label or self.name

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if self.enabled and self.job_type not in registry:
            errors["job_type"] = f"unknown job type; known types: {', '.join(registry.names())}"
        if not isinstance(self.inputs, dict):
            errors["inputs"] = "default inputs must be a JSON object"
        if self.inputs_schema is not None:
            try:
                from jobline.core import safe_schema  # jsonschema: on first use, not in workers

                safe_schema.check(self.inputs_schema)
            except ValueError as exc:
                errors["inputs_schema"] = str(exc)
        # Values no database can hold first: a NUL in a default input says so, not "unknown key".
        for field, problems in field_errors(self).items():
            errors.setdefault(field, problems[0])
        if "inputs" not in errors and "inputs_schema" not in errors:
            if found := self.default_input_errors():
                errors["inputs"] = "; ".join(f"{e['field']}: {e['message']}" for e in found)
        if self.priority is not None and not -100 <= self.priority <= 100:
            errors["priority"] = "priority must be between -100 and 100"
        if self.delay is not None and not 0 <= self.delay <= input_rules.MAX_DELAY:
            errors["delay"] = f"delay must be between 0 and {input_rules.MAX_DELAY} seconds"
        if errors:
            raise ValidationError(errors)

    def default_input_errors(self) -> list[dict[str, Any]]:
        """How the default inputs would fail every job started from the template, as
        ``{"field", "message", "type"}`` with fields inside the inputs. Defaults may leave out
        what each run gives, so a missing input is no error; an unknown key or a value of the
        wrong type is. Defaults that are no object, or an invalid ``inputs_schema``, are
        ``clean``'s to report."""
        if not isinstance(self.inputs, dict):
            return []
        if self.inputs_schema is not None:
            from jobline.core import safe_schema  # jsonschema: on first use, not in workers

            try:
                safe_schema.check(self.inputs_schema)
            except ValueError:
                return []
        errors: list[dict[str, Any]] = []
        if self.job_type in registry:
            try:
                registry.get(self.job_type).inputs.validate(self.inputs)
            except InputsError as exc:
                errors += [e for e in exc.errors if e["type"] not in _MISSING]
        if self.inputs_schema is not None:
            found = schema_errors(self.inputs_schema, self.inputs)
            errors += [e for e in found if e["type"] != "required"]
        return errors

    def merged_inputs(self, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        """Default inputs with ``overrides`` on top (top-level keys), checked against the
        template's own schema; the job type's schema is checked at enqueue. Overrides that are
        still the masks of the template's secrets (as forms and the API show them) keep them."""
        overrides = unmasked(self.job_type, overrides or {}, self.inputs, self.inputs_schema)
        inputs = {**self.inputs, **overrides}
        if self.inputs_schema is not None:
            if errors := schema_errors(self.inputs_schema, inputs):
                raise InputsError(self.job_type, errors)
        return inputs


def schema_errors(schema: dict[str, Any], data: Any) -> list[dict[str, Any]]:
    """Every way ``data`` fails ``schema``, as ``{"field", "message", "type"}`` like pydantic's."""
    from jobline.core import safe_schema  # jsonschema: on first use, not in workers

    found = sorted(safe_schema.errors(schema, data), key=lambda e: list(map(str, e.path)))
    return [{"field": _field(e), "message": e.message, "type": str(e.validator)} for e in found]


def _field(error: jsonschema.ValidationError) -> str:
    path = [str(p) for p in error.absolute_path]
    if error.validator == "required":  # name the missing field, as pydantic does
        path.append(error.message.removesuffix(" is a required property").strip("'\""))
    return ".".join(path)
