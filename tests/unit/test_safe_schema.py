"""jobline.core.safe_schema on its own: refs resolve only inside the document (a loopback
server and a real file as bait, even for a schema that skipped the check), patterns on RE2."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from referencing.exceptions import Unresolvable

from jobline.core import safe_schema
from jobline.core.input_rules import datetime_problem, nul_path, queue_problem, url_problem


class _Bait(BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:
        self.hits.append(self.path)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b'{"type": "integer"}')

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def bait_url():
    server = HTTPServer(("127.0.0.1", 0), _Bait)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Bait.hits = []
    yield f"http://127.0.0.1:{server.server_port}/schema.json"
    server.shutdown()
    server.server_close()


def test_unchecked_schemas_fetch_nothing_when_validating(bait_url, tmp_path):
    bait_file = tmp_path / "bait.json"
    bait_file.write_text('{"enum": ["FILE-CONTENT"]}')
    for ref in (bait_url, bait_file.as_uri()):
        schema = {"properties": {"a": {"$ref": ref}}}
        errors = list(safe_schema.errors(schema, {"a": "x"}))
        assert [e.message for e in errors] == [
            f"the schema is refused: $ref {ref!r} is not allowed: a schema may only refer"
            " inside itself (such as '#/$defs/name')"
        ]
        with pytest.raises(Unresolvable):  # the bare validator: unresolved, never retrieved
            list(safe_schema.validator(schema).iter_errors({"a": "x"}))
    assert _Bait.hits == []


def test_local_refs_and_embedded_ids_resolve(bait_url):
    schema = {"$id": bait_url, "$defs": {"n": {"type": "integer"}}, "$ref": "#/$defs/n"}
    safe_schema.check(schema)
    assert [e.message for e in safe_schema.errors(schema, "x")] == ["'x' is not of type 'integer'"]
    assert _Bait.hits == []


def test_refs_that_point_nowhere_are_refused():
    with pytest.raises(safe_schema.UnsafeSchema, match="does not point into this schema"):
        safe_schema.check({"$ref": "#/$defs/missing"})


def test_values_in_const_enum_and_default_are_not_refs():
    safe_schema.check({"const": {"$ref": "http://x/"}, "default": {"$ref": "file:///"}})


def test_re2_patterns_are_linear():
    validator = safe_schema.validator({"pattern": "^(a+)+$"})
    started = time.monotonic()
    assert not validator.is_valid("a" * 100_000 + "!")
    assert time.monotonic() - started < 5


def test_unsupported_patterns_are_errors_not_crashes():
    schema = {"properties": {"s": {"pattern": "(a)\\1"}}}
    with pytest.raises(safe_schema.UnsafeSchema, match="not supported"):
        safe_schema.check(schema)
    errors = list(safe_schema.validator(schema).iter_errors({"s": "aa"}))
    assert errors and "not supported" in errors[0].message


def test_value_rules():
    assert nul_path({"a": [{"b": "x\x00"}]}) == "a.0.b"
    assert nul_path({"a\x00": 1}) == "a\x00"
    assert nul_path({"a": ["ok"]}) is None
    from datetime import UTC, datetime, timedelta, timezone

    assert datetime_problem(datetime(9999, 12, 31, 23, 59, tzinfo=timezone(-timedelta(hours=23))))
    assert datetime_problem(datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14))))
    assert datetime_problem(datetime(2030, 1, 1, tzinfo=UTC)) is None
    assert queue_problem("a/b") and queue_problem("") and queue_problem("x" * 101)
    assert queue_problem("eu.west:high-priority_1") is None
    assert url_problem("http://x/a b") and url_problem("http://x/\x00") is not None
    assert url_problem("http://x/a%20b") is None
