"""MkDocs hooks (mkdocs.yml ``hooks:``): the reference pages that are generated, not written.

A page holding ``<!-- generated: cli -->`` gets the command line, read from jobline's own
argparse parser; ``<!-- generated: rest-api -->`` gets the REST API, read from the OpenAPI
document the app serves at ``/api/v1/openapi.json``. So neither can drift from the code.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Iterator
from typing import Any

import django
from django.conf import settings
from django.test import Client

from jobline.cli.main import build_parser

MARKERS = {
    "<!-- generated: cli -->": lambda: cli_markdown(),
    "<!-- generated: rest-api -->": lambda: rest_api_markdown(),
}


#: Sphinx roles in docstrings (``:class:`Limit` ``), which mkdocstrings leaves as text.
SPHINX_ROLE = re.compile(r":(?:class|func|meth|attr|mod|data|exc|obj):(<code>)")


def on_page_markdown(markdown: str, **_: Any) -> str:
    for marker, render in MARKERS.items():
        if marker in markdown:
            markdown = markdown.replace(marker, render())
    return markdown


def on_page_content(html: str, **_: Any) -> str:
    return SPHINX_ROLE.sub(r"\1", html)


# -- the command line ---------------------------------------------------------------------


def commands(
    parser: argparse.ArgumentParser | None = None, prefix: str = "jobline"
) -> Iterator[tuple[str, str, argparse.ArgumentParser]]:
    """``(name, help, parser)`` of every command and sub-command, in the parser's order."""
    parser = parser or build_parser()
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
        for name, sub in action.choices.items():
            full = f"{prefix} {name}"
            nested = any(isinstance(a, argparse._SubParsersAction) for a in sub._actions)
            if not nested:
                yield full, helps.get(name, ""), sub
            else:
                yield from commands(sub, full)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _option_rows(parser: argparse.ArgumentParser) -> Iterator[str]:
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
            continue
        names = ", ".join(f"`{n}`" for n in action.option_strings) or f"`{action.dest.upper()}`"
        if action.option_strings and action.nargs != 0:
            names += f" `{action.metavar or action.dest.upper()}`"
        default = action.default
        shown = "" if default in (None, False, [], argparse.SUPPRESS) else f"`{default}`"
        yield f"| {names} | {shown} | {_cell(action.help or '')} |"


def cli_markdown() -> str:
    out = []
    for name, help_text, parser in commands():
        usage = " ".join(parser.format_usage().split()).removeprefix("usage: ")
        summary = " ".join(help_text.split())
        out += [f"## `{name}`", "", summary[:1].upper() + summary[1:] + ".", ""]
        out += ["```text", usage, "```", ""]
        rows = list(_option_rows(parser))
        if rows and not parser.add_help:
            rows = []  # Django's own command: its arguments pass through, see below
        if rows:
            out += ["| argument | default | meaning |", "|---|---|---|", *rows, ""]
        else:
            out += ["Arguments after the command go to Django's own command unchanged.", ""]
    return "\n".join(out)


# -- the REST API -------------------------------------------------------------------------


def openapi_document() -> dict[str, Any]:
    """The document ``/api/v1/openapi.json`` serves, from a minimal in-memory project."""
    if not settings.configured:
        settings.configure(
            INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "jobline"],
            DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
            ROOT_URLCONF="jobline.urls",
            USE_TZ=True,
            SECRET_KEY="docs-build-only",
        )
        django.setup()
    response = Client().get("/api/v1/openapi.json")
    assert response.status_code == 200, response.content[:500]
    return json.loads(response.content)


def _type(schema: dict[str, Any]) -> str:
    if ref := schema.get("$ref"):
        name = ref.rsplit("/", 1)[-1]
        return f"[{name}](#schema-{name.lower()})"
    if "anyOf" in schema:
        kinds = [_type(s) for s in schema["anyOf"] if s.get("type") != "null"]
        nullable = len(kinds) < len(schema["anyOf"])
        return " or ".join(kinds) + (" or null" if nullable else "")
    if "enum" in schema:
        return " \\| ".join(f"`{json.dumps(v)}`" for v in schema["enum"])
    kind = schema.get("type", "any")
    if kind == "array":
        return f"list of {_type(schema.get('items', {}))}"
    return str(kind)


def _body_schema(part: dict[str, Any]) -> str:
    content = part.get("content") or {}
    media = next(iter(content.values()), {})
    return _type(media["schema"]) if "schema" in media else ""


def _operation(path: str, method: str, op: dict[str, Any]) -> list[str]:
    out = [f"### `{method.upper()} {path}`", ""]
    out += [op.get("description") or op.get("summary", ""), ""]
    params = op.get("parameters") or []
    if params:
        out += ["| parameter | in | type | meaning |", "|---|---|---|---|"]
        for p in params:
            required = " (required)" if p.get("required") else ""
            meaning = _cell(p.get("description") or p["schema"].get("description", ""))
            kind = _type(p["schema"])
            out.append(f"| `{p['name']}`{required} | {p['in']} | {kind} | {meaning} |")
        out.append("")
    if body := op.get("requestBody"):
        out += [f"Request body: {_body_schema(body)}", ""]
    answers = [
        f"`{code}` {r['description']}" + (f" ({s})" if (s := _body_schema(r)) else "")
        for code, r in sorted(op.get("responses", {}).items())
    ]
    out += ["Answers: " + "; ".join(answers) + ".", ""]
    if not op.get("security"):
        out += ["Public: no token or session needed.", ""]
    return out


def _schema(name: str, schema: dict[str, Any]) -> list[str]:
    out = [f"### {name} {{#schema-{name.lower()}}}", ""]
    if description := schema.get("description"):
        out += [_cell(description), ""]
    props = schema.get("properties") or {}
    if props:
        required = set(schema.get("required", []))
        out += ["| field | type | meaning |", "|---|---|---|"]
        for field, prop in props.items():
            mark = " (required)" if field in required else ""
            meaning = _cell(prop.get("description", ""))
            out.append(f"| `{field}`{mark} | {_type(prop)} | {meaning} |")
        out.append("")
    return out


def rest_api_markdown() -> str:
    doc = openapi_document()
    by_tag: dict[str, list[str]] = {}
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            tag = (op.get("tags") or ["other"])[0]
            by_tag.setdefault(tag, []).extend(_operation(path, method, op))
    out = []
    for tag, lines in by_tag.items():
        out += [f"## {tag.replace('-', ' ').capitalize()}", "", *lines]
    out += ["## Schemas", ""]
    for name, schema in doc["components"]["schemas"].items():
        out += _schema(name, schema)
    return "\n".join(out)
