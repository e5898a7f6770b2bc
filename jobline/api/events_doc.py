"""``/api/v1/events`` in the OpenAPI document.

The stream is an async Django view beside the API (``jobline.web.events``), so django-ninja
does not describe it; this path item does, in the words of the view's docstring.
"""

from __future__ import annotations

from typing import Any

from ninja import NinjaAPI


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _filter(name: str, kind: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "style": "form",
        "explode": True,
        "schema": {"type": "array", "items": {"type": kind}},
        "description": description,
    }


EVENTS: dict[str, Any] = {
    "get": {
        "operationId": "jobline_events",
        "summary": "Live job events",
        "description": (
            "Server-sent events: `event: job` with `{id, type, queue, status, event}` for each"
            " change of a job; `event: progress` with the same fields (`progress`,"
            " `progress_message`, `log_lines` among them) when a running job reported progress"
            " or logged lines; `ready` once listening (reload what you show), `resync` after"
            " the source reconnected and `overflow` when events were dropped (reload as well),"
            " `revoked` before the stream of a revoked token ends. Needs an ASGI server."
        ),
        "tags": ["events"],
        "parameters": [
            _filter("job", "integer", "Only these jobs (ids)."),
            _filter("type", "string", "Only jobs of these types."),
            _filter("queue", "string", "Only jobs in these queues."),
        ],
        "responses": {
            "200": {
                "description": "An endless stream of events.",
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
            },
            "401": _error("Unauthorized"),
            "403": _error("Forbidden"),
            "503": _error("Served by a WSGI server, which the stream would hold forever."),
        },
        "security": [{"BearerToken": []}, {"Session": []}],
    }
}


class DocumentedEvents(NinjaAPI):
    """A NinjaAPI whose OpenAPI document also has ``events`` (mounted beside it)."""

    def get_openapi_schema(self, **kwargs: Any) -> Any:
        schema = super().get_openapi_schema(**kwargs)
        prefix = kwargs.get("path_prefix") or self.get_root_path(kwargs.get("path_params") or {})
        schema["paths"][f"{prefix}events"] = EVENTS
        return schema
