"""Input that no database or page can hold, refused with 422 before any view uses it.

One check for every surface: the API (its own decorator, as it also serves library mode),
the UI's pages and ``InputGuardMiddleware`` (service mode: the admin and login too) look at
the request; ``field_errors`` checks a model instance in its ``clean()`` (forms, admin, API).
The rules themselves are in :mod:`jobline.core.input_rules`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django import forms
from django.db import models
from django.http import HttpRequest, JsonResponse

from jobline.core import input_rules


def nul_field(request: HttpRequest) -> str | None:
    """Where the request holds a NUL character (``path``, a parameter's name, a dotted path
    into a JSON body), or None."""
    if "\x00" in request.path:
        return "path"
    sources = [request.GET]
    # Not multipart: reading it here would leave the view no body to read. Its fields meet
    # Django's form checks (CharField refuses NUL) and the models' (``field_errors``).
    if request.method == "POST" and request.content_type == "application/x-www-form-urlencoded":
        sources.append(request.POST)
    for source in sources:
        for key, items in source.lists():
            if "\x00" in key or any("\x00" in item for item in items):
                return key
    if request.content_type == "application/json" and b"\\u0000" in request.body:
        try:
            return input_rules.nul_path(json.loads(request.body))
        except ValueError:
            return None  # not JSON: the view's own parser says so
    return None


def field_errors(instance: models.Model) -> dict[str, list[str]]:
    """What a model instance holds that cannot be stored and shown, by field: NUL characters,
    times past the calendar's edges, queue names outside the pattern."""
    errors: dict[str, list[str]] = {}
    for field in instance._meta.concrete_fields:
        value = getattr(instance, field.attname)
        if isinstance(value, datetime):
            problem = input_rules.datetime_problem(value) or input_rules.offset_problem(value)
        elif field.name == "queue" and value:
            problem = input_rules.queue_problem(value)
        elif (where := input_rules.nul_path(value)) is not None:
            problem = input_rules.NUL_MESSAGE + (f" (at {where})" if where else "")
        else:
            problem = None
        if problem:
            errors[field.name] = [problem]
    return errors


class GuardedModelForm(forms.ModelForm):
    """An admin form for models whose ``clean()`` does not run :func:`field_errors`."""

    def _post_clean(self) -> None:
        super()._post_clean()
        for name, problems in field_errors(self.instance).items():
            self.add_error(name if name in self.fields else None, problems)


def nul_refusal(request: HttpRequest) -> JsonResponse | None:
    """422 in the API's error format when the request holds a NUL character, else None."""
    if (where := nul_field(request)) is None:
        return None
    error = {"field": where, "message": input_rules.NUL_MESSAGE, "type": "nul"}
    return JsonResponse({"detail": [error]}, status=422)


class InputGuardMiddleware:
    """422 for any request with a NUL character, before a view or a query sees it."""

    def __init__(self, get_response: Callable[[HttpRequest], Any]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> Any:
        return nul_refusal(request) or self.get_response(request)
