"""Error bodies and handlers: 422 names the failing fields, 413 for oversized bodies.

Every error is ``{"detail": "message"}``, except 422: ``{"detail": [{"field", "message",
"type"}]}`` where ``field`` is a dotted path into the body or the query (``inputs.a``).
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.core.exceptions import RequestDataTooBig, ValidationError
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from ninja import Schema
from ninja.errors import AuthenticationError, HttpError, ValidationErrorContext
from ninja.errors import ValidationError as RequestError
from ninja.parser import Parser

from jobline.api import conf
from jobline.api.events_doc import DocumentedEvents
from jobline.exceptions import DatabaseReadOnly, InputsError, StoreUnavailable, UnknownJobType
from jobline.input_guard import nul_refusal
from jobline.services import database


class Error(Schema):
    detail: str


class FieldError(Schema):
    field: str  #: dotted path, "" for the body as a whole
    message: str
    type: str


class ValidationErrors(Schema):
    detail: list[FieldError]


class FieldErrors(Exception):
    """Answer 422 with these ``{"field", "message", "type"}`` errors."""

    def __init__(self, errors: list[dict[str, Any]]):
        super().__init__(errors)
        self.errors = errors


def inputs_errors(exc: InputsError, prefix: str = "inputs") -> FieldErrors:
    """A job's inputs errors, with fields under ``prefix`` (``inputs.a``)."""
    return FieldErrors(
        [{**e, "field": ".".join(p for p in (prefix, e["field"]) if p)} for e in exc.errors]
    )


def unknown_type(exc: UnknownJobType, field: str = "type") -> FieldErrors:
    return FieldErrors([{"field": field, "message": str(exc), "type": "unknown_job_type"}])


def model_errors(exc: ValidationError, renamed: dict[str, str] | None = None) -> FieldErrors:
    """A model's ``full_clean`` errors, by field (``renamed`` maps model to API names)."""
    renamed = renamed or {}
    return FieldErrors(
        [
            {"field": renamed.get(field, field), "message": message, "type": "invalid"}
            for field, messages in exc.message_dict.items()
            for message in messages
        ]
    )


def check_json_size(value: Any, what: str) -> None:
    """413 when job data (inputs, outputs), as JSON, pass ``JOBLINE_API_MAX_INPUTS_BYTES``."""
    limit = conf.get("JOBLINE_API_MAX_INPUTS_BYTES")
    if len(json.dumps(value, separators=(",", ":"))) > limit:
        raise HttpError(413, f"{what} are over {limit} bytes of JSON")


def responses(ok: dict[int, Any], *codes: int) -> dict[int, Any]:
    """An operation's documented responses: ``ok`` plus 401, 403 and the error ``codes``."""
    errors = {code: ValidationErrors if code == 422 else Error for code in (401, 403, *codes)}
    return {**ok, **errors}


def _field(loc: tuple[Any, ...], model: Any) -> str:
    """The dotted path of an error as the client sent it (no parameter names of ours)."""
    if model.__ninja_param_source__ == "body":
        parts = loc[1:] if getattr(model, "__read_from_single_attr__", None) else loc
    else:  # query and path: ninja flattens schema fields; map back the longest known prefix
        flat = model.__ninja_flatten_map_reverse__
        prefix = next((n for n in range(len(loc), 0, -1) if loc[:n] in flat), 0)
        parts = (*flat[loc[:prefix]], *loc[prefix:]) if prefix else loc
    return ".".join(str(p) for p in parts)


class StrictJSON(Parser):
    """JSON without NaN and Infinity, which no database's JSON type accepts."""

    def parse_body(self, request: HttpRequest) -> Any:
        return json.loads(request.body, parse_constant=_reject_constant)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _body_too_large(request: HttpRequest) -> bool:
    limit = conf.get("JOBLINE_API_MAX_BODY_BYTES")
    try:
        size = int(request.headers.get("Content-Length") or 0)
    except ValueError:
        size = 0
    return size > limit or (request.method not in ("GET", "HEAD") and len(request.body) > limit)


class JoblineAPI(DocumentedEvents):
    """A NinjaAPI whose 422s name fields as sent, with jobline's handlers and body limit."""

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        handlers: dict[type[Exception], Callable[[HttpRequest, Any], HttpResponse]] = {
            RequestError: lambda request, exc: self._reply(request, exc.errors, 422),
            FieldErrors: lambda request, exc: self._reply(request, exc.errors, 422),
            InputsError: lambda request, exc: self._reply(request, inputs_errors(exc).errors, 422),
            UnknownJobType: lambda request, exc: self._reply(
                request, unknown_type(exc).errors, 422
            ),
            AuthenticationError: self._unauthenticated,
            RequestDataTooBig: lambda request, exc: self._too_large(request),
            DatabaseError: self._unavailable,
            StoreUnavailable: self._unavailable,
            DatabaseReadOnly: self._unavailable,
        }
        for exc_class, handler in handlers.items():
            self.add_exception_handler(exc_class, handler)
        self.add_decorator(self._limit_body, mode="view")

    def validation_error_from_error_contexts(
        self, error_contexts: list[ValidationErrorContext]
    ) -> RequestError:
        return RequestError(
            [
                {
                    "field": _field(tuple(e["loc"]), context.model),
                    "message": e["msg"],
                    "type": e["type"],
                }
                for context in error_contexts
                for e in context.pydantic_validation_error.errors(include_url=False)
            ]
        )

    def _reply(self, request: HttpRequest, detail: Any, status: int) -> HttpResponse:
        return self.create_response(request, {"detail": detail}, status=status)

    def _unauthenticated(self, request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
        message = exc.message if exc.message != "Unauthorized" else "authentication required"
        response = self._reply(request, message, 401)
        response["WWW-Authenticate"] = 'Bearer realm="jobline"'
        return response

    def _unavailable(self, request: HttpRequest, exc: Exception) -> HttpResponse:
        """503 when the database is locked, read-only or away; any other error raises."""
        explained = database.explain(exc)
        if explained is None:
            raise exc
        response = self._reply(request, str(explained), 503)
        response["Retry-After"] = str(getattr(explained, "retry_after", 5))
        return response

    def _too_large(self, request: HttpRequest) -> HttpResponse:
        limit = conf.get("JOBLINE_API_MAX_BODY_BYTES")
        return self._reply(request, f"the request body is over {limit} bytes", 413)

    def _refused(self, request: HttpRequest) -> HttpResponse | None:
        try:
            if _body_too_large(request):
                return self._too_large(request)
        except RequestDataTooBig:  # over Django's own DATA_UPLOAD_MAX_MEMORY_SIZE
            return self._too_large(request)
        return nul_refusal(request)  # PostgreSQL can neither store nor compare NUL characters

    def _limit_body(self, run: Callable[..., Any]) -> Callable[..., Any]:
        """Wrap a whole operation, so an oversized body or a NUL character is refused before
        it is parsed."""
        if inspect.iscoroutinefunction(run):

            @wraps(run)
            async def async_wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
                return self._refused(request) or await run(request, *args, **kwargs)

            return async_wrapper

        @wraps(run)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            return self._refused(request) or run(request, *args, **kwargs)

        return wrapper
