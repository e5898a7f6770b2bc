"""API tests: a client with a bearer token and JSON bodies, and an HTTP receiver on loopback."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.test import Client

from jobline.models.api import ApiToken

BASE = "/api/v1"


class Api:
    """Calls ``/api/v1/...`` with JSON bodies, as a token (or the client's session) would."""

    def __init__(self, client: Client, token: str | None = None):
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def get(self, path: str, **params: Any) -> Any:
        return self.client.get(BASE + path, params, headers=self.headers)

    def send(self, method: str, path: str, body: Any = None, **headers: str) -> Any:
        call = getattr(self.client, method.lower())
        data = b"" if body is None else body
        content_type = "application/json"
        return call(BASE + path, data, content_type=content_type, headers=self.headers | headers)

    def post(self, path: str, body: Any = None) -> Any:
        return self.send("POST", path, body)

    def patch(self, path: str, body: Any = None) -> Any:
        return self.send("PATCH", path, body)

    def delete(self, path: str) -> Any:
        return self.send("DELETE", path)


@pytest.fixture
def api(db, client: Client) -> Api:
    """A client with a read-write token."""
    return Api(client, ApiToken.issue("tests")[1])


@pytest.fixture
def reader(db, client: Client) -> Api:
    """A client with a read-only token."""
    return Api(client, ApiToken.issue("reader", read_only=True)[1])


@pytest.fixture
def anonymous(db, client: Client) -> Api:
    return Api(client)


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    headers: dict[str, str]
    at: float  #: time.time() when it arrived


class Receiver(ThreadingHTTPServer):
    """A real HTTP server on loopback that answers 200 and records every call."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Record)
        self.calls: list[Call] = []

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"

    def wait_for_calls(self, n: int, timeout: float) -> list[Call]:
        deadline = time.monotonic() + timeout
        while len(self.calls) < n and time.monotonic() < deadline:
            time.sleep(0.01)
        return list(self.calls)


class _Record(BaseHTTPRequestHandler):
    server: Receiver

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _answer(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.calls.append(Call(self.command, self.path, dict(self.headers), time.time()))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = _answer


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
