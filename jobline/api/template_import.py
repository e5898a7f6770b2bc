"""``jobline import-templates FILE``: RestJobScheduler's ``job_templates.json`` as templates.

The file is an object keyed by job type (or a list of the same objects)::

    {"otp_send_job": {
        "type": "otp_send_job",            # the job type (default: the key)
        "startInSeconds": 1,               # -> delay: seconds before a started job runs
        "userTriggered": true,             # -> user_triggered
        "rescheduleAfterTermination": false,
        "payload_schema": {                # -> inputs_schema (JSON Schema), per field:
            "user_id": {"type": "uint", "minValue": 0, "maxValue": null,
                        "required": true, "label": "User Id"},
            "filter": {"type": "options", "options": ["a", "b"], "required": true},
            "job_type": null},             # a field without a form control: any value
        "payload": {"user_id": 0, "filter": ["a"], "job_type": ""}}}  # -> default inputs

``uint`` bounds come from ``minValue``/``maxValue`` or ``range: [min, max]`` (null: open).
An ``options`` field takes one of its options, or a list of them when its default is a
list; values a default uses beyond the options are added to them (with a warning), so
every template accepts its own defaults. ``int``, ``number``, ``string`` and ``bool``
fields are understood too. A template whose job type is not defined here is imported
disabled, with a warning naming it. ``rescheduleAfterTermination`` gives a template a
schedule that runs its job again ``startInSeconds`` after the previous one finished.
Templates are matched by name (the key) and updated. Any error in the file imports nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.text import slugify

from jobline.core.jobtypes import registry
from jobline.exceptions import JoblineError
from jobline.models.api import Template, schema_errors

SCALAR_TYPES = {
    "int": "integer",
    "integer": "integer",
    "number": "number",
    "float": "number",
    "string": "string",
    "str": "string",
    "text": "string",
    "bool": "boolean",
    "boolean": "boolean",
}


class TemplateFileError(JoblineError):
    """The templates file cannot be imported; nothing was."""


@dataclass(slots=True)
class Imported:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _fail(where: str, problem: str) -> TemplateFileError:
    return TemplateFileError(f"{where}: {problem}")


def _bound(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise _fail(where, f"bounds must be whole numbers or null, got {value!r}")
    return int(value)


def _uint(spec: dict[str, Any], where: str) -> dict[str, Any]:
    low, high = spec.get("minValue"), spec.get("maxValue")
    if "range" in spec:
        bounds = spec["range"]
        if not isinstance(bounds, list) or len(bounds) != 2:
            raise _fail(where, "range must be [min, max]")
        low, high = bounds
    low, high = _bound(low, where), _bound(high, where)
    schema: dict[str, Any] = {"type": "integer", "minimum": max(0, low or 0)}
    if high is not None:
        if high < schema["minimum"]:
            raise _fail(where, f"maximum {high} is below minimum {schema['minimum']}")
        schema["maximum"] = high
    return schema


def _options(spec: dict[str, Any], default: Any, where: str, warnings: list[str]) -> dict:
    options = spec.get("options")
    if not isinstance(options, list) or not options:
        raise _fail(where, "options must be a non-empty list")
    if not all(isinstance(o, str | int | float | bool) for o in options):
        raise _fail(where, "options must be strings or numbers")
    used = default if isinstance(default, list) else [] if default is None else [default]
    extra = [v for v in used if v not in options]
    if extra:
        warnings.append(f"{where}: default {extra} not among the options; added to them")
    choice = {"enum": list(dict.fromkeys([*options, *extra]))}
    if isinstance(default, list):  # a list default: pick any number of the options
        return {"type": "array", "items": choice, "uniqueItems": True}
    return choice


def _field_schema(spec: Any, default: Any, where: str, warnings: list[str]) -> dict[str, Any]:
    if spec is None:
        return {}
    if not isinstance(spec, dict):
        raise _fail(where, "a field is described by an object or null")
    kind = spec.get("type")
    if kind == "uint":
        schema = _uint(spec, where)
    elif kind == "options":
        schema = _options(spec, default, where, warnings)
    elif kind in SCALAR_TYPES:
        schema = {"type": SCALAR_TYPES[kind]}
        if schema["type"] in ("integer", "number"):
            for key, word in (("minValue", "minimum"), ("maxValue", "maximum")):
                if spec.get(key) is not None:
                    schema[word] = _bound(spec[key], where)
    else:
        known = ", ".join(["uint", "options", *SCALAR_TYPES])
        raise _fail(where, f"unknown field type {kind!r} (known: {known})")
    if isinstance(spec.get("label"), str):
        schema["title"] = spec["label"]
    return schema


def inputs_schema(
    fields: dict[str, Any], payload: dict[str, Any], where: str, warnings: list[str]
) -> dict[str, Any]:
    """A JSON Schema for a RestJobScheduler ``payload_schema`` and its ``payload`` defaults."""
    properties: dict[str, Any] = {}
    required = []
    for name in dict.fromkeys([*fields, *payload]):
        spec = fields.get(name)
        prop = _field_schema(spec, payload.get(name), f"{where} field {name!r}", warnings)
        if name in payload:
            prop["default"] = payload[name]
        properties[name] = prop
        if isinstance(spec, dict) and spec.get("required") is True:
            required.append(name)
    schema = {"type": "object", "properties": properties, "additionalProperties": False}
    return schema | ({"required": required} if required else {})


def _template(key: str, raw: Any, warnings: list[str]) -> dict[str, Any]:
    where = f"template {key!r}"
    if not isinstance(raw, dict):
        raise _fail(where, "each template is an object")
    job_type = raw.get("type", key)
    if not isinstance(job_type, str) or not job_type:
        raise _fail(where, "type must be a job type's name")
    name = slugify(raw.get("name") or key)[:100]
    if not name:
        raise _fail(where, "its name has no letters or digits")
    fields, payload = raw.get("payload_schema") or {}, raw.get("payload") or {}
    if not isinstance(fields, dict) or not isinstance(payload, dict):
        raise _fail(where, "payload_schema and payload must be objects")
    delay = raw.get("startInSeconds")
    if delay is not None and (isinstance(delay, bool) or not isinstance(delay, int | float)):
        raise _fail(where, "startInSeconds must be a number")
    if delay is not None and delay < 0:
        raise _fail(where, "startInSeconds must be >= 0")
    schema = inputs_schema(fields, payload, where, warnings)
    for error in schema_errors(schema, payload):
        warnings.append(f"{where}: default {error['field']}: {error['message']}")
    enabled = job_type in registry
    if not enabled:
        warnings.append(f"{where}: job type {job_type!r} has no handler here; imported disabled")
    repeat = bool(raw.get("rescheduleAfterTermination"))
    if repeat and not enabled:
        warnings.append(f"{where}: no schedule (rescheduleAfterTermination) while disabled")
    label = raw.get("label") or raw.get("title") or name.replace("_", " ").capitalize()
    return {
        "name": name,
        "label": str(label)[:200],
        "job_type": job_type,
        "inputs": payload,
        "inputs_schema": schema,
        "user_triggered": bool(raw.get("userTriggered", False)),
        "enabled": enabled,
        "delay": None if delay is None else float(delay),
        "repeat": repeat and enabled,
    }


def convert(data: Any) -> tuple[list[dict[str, Any]], list[str]]:
    """Template fields for each template of a parsed file, and warnings; raises
    :class:`TemplateFileError` on anything it cannot understand."""
    if isinstance(data, dict):
        items = list(data.items())
    elif isinstance(data, list):
        items = [
            (str(t.get("name") or t.get("type")) if isinstance(t, dict) else "?", t) for t in data
        ]
    else:
        raise TemplateFileError("the file holds an object of templates keyed by job type")
    warnings: list[str] = []
    templates = [_template(key, raw, warnings) for key, raw in items]
    names = [t["name"] for t in templates]
    if duplicates := sorted({n for n in names if names.count(n) > 1}):
        raise TemplateFileError(f"two templates are named {', '.join(duplicates)}")
    return templates, warnings


def import_templates(path: str | Path) -> Imported:
    """Create or update the templates of a file, all or none."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise TemplateFileError(f"cannot read {path}: {exc.strerror}") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise TemplateFileError(f"{path} is not JSON: {exc}") from None
    templates, warnings = convert(data)
    result = Imported(warnings=warnings)
    with transaction.atomic():
        for fields in templates:
            repeat = fields.pop("repeat")
            template = Template.objects.filter(name=fields["name"]).first() or Template()
            (result.updated if template.pk else result.created).append(fields["name"])
            for key, value in fields.items():
                setattr(template, key, value)
            if repeat:
                template.schedule = _repeat(template, result.warnings)
            try:
                template.full_clean()
            except ValidationError as exc:
                raise TemplateFileError(f"template {fields['name']!r}: {exc.messages}") from None
            template.save()
    return result


def _repeat(template: Template, warnings: list[str]) -> Any:
    """rescheduleAfterTermination: a schedule that runs the template's job again
    ``startInSeconds`` after the last one finished (named ``template:<name>``)."""
    from jobline.scheduler.api import schedule

    try:
        return schedule(
            f"template:{template.name}",
            template.job_type,
            template.inputs,
            every=timedelta(seconds=max(1.0, template.delay or 0.0)),
            reschedule_after_finish=True,
            title=template.label,
        )
    except ValidationError as exc:  # e.g. defaults that are not complete inputs for the type
        warnings.append(f"template {template.name!r}: no schedule: {'; '.join(exc.messages)}")
        return template.schedule
