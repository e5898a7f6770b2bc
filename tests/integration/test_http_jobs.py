"""The ``http`` job type through a real worker, against a real HTTP server on loopback."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

import jobline
from jobline.core.jobtypes import registry
from jobline.core.retry import RetryPolicy
from jobline.dispatch.http import verify_signature
from jobline.models import Job
from jobline.testing import drain
from tests.conftest import ALL_DATABASES, free_port

pytestmark = ALL_DATABASES


@dataclass(frozen=True)
class Seen:
    """One request as the server received it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    client_port: int


class Target(ThreadingHTTPServer):
    """Answers by path; remembers every request.

    ``/ok``: 200 with a JSON body. ``/status/N``: N. ``/fail/N/...``: 500 for the first N
    requests to that exact path, then 200. ``/busy/S/...``: 503 with ``Retry-After: S`` once,
    then 200. ``/slow/S``: 200 after S seconds. ``/big``: 200 with 100 KiB.
    ``/redirect?to=URL``: 302 to URL.
    """

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.seen: list[Seen] = []
        self.hits: Counter[str] = Counter()
        self.lock = threading.Lock()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"

    def requests_to(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.path == path]


class Handler(BaseHTTPRequestHandler):
    server: Target
    protocol_version = "HTTP/1.1"  # keep-alive, so connection reuse shows

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def _answer(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with self.server.lock:
            self.server.seen.append(
                Seen(
                    self.command,
                    self.path,
                    dict(self.headers),
                    body,
                    time.monotonic(),
                    self.client_address[1],
                )
            )
            self.server.hits[self.path] += 1
            hits = self.server.hits[self.path]
        parts = urlsplit(self.path).path.strip("/").split("/")
        status, headers, reply = self._route(parts, hits)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def _route(self, parts: list[str], hits: int) -> tuple[int, dict[str, str], bytes]:
        kind = parts[0]
        if kind == "status":
            return int(parts[1]), {}, b"status page"
        if kind == "fail" and hits <= int(parts[1]):
            return 500, {}, f"failure {hits}".encode()
        if kind == "busy" and hits == 1:
            return 503, {"Retry-After": parts[1]}, b"busy"
        if kind == "slow":
            time.sleep(float(parts[1]))
        if kind == "big":
            return 200, {}, b"x" * 100 * 1024
        if kind == "redirect":
            to = parse_qs(urlsplit(self.path).query)["to"][0]
            return 302, {"Location": to}, b""
        reply = json.dumps({"hello": "world"}).encode()
        return 200, {"Content-Type": "application/json", "X-Reply": "yes"}, reply

    do_GET = do_POST = do_PUT = do_DELETE = _answer


@pytest.fixture(scope="module")
def target():
    server = Target()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def loopback_allowed(settings):
    settings.JOBLINE_HTTP_ALLOWED_NETWORKS = "127.0.0.0/8"


@pytest.fixture
def fast_retries(monkeypatch):
    monkeypatch.setattr(registry.get("http"), "retry", RetryPolicy(base=0.05, jitter=0))


def unique(path: str) -> str:
    """``path`` made unique, so hit counts do not carry over between tests."""
    return f"{path}/{uuid.uuid4().hex[:8]}"


def run(alias: str, count: int = 1, **inputs) -> Job:
    """Enqueue one http job, let a worker finish ``count`` attempts; the job's row."""
    options = {k: inputs.pop(k) for k in ("max_attempts",) if k in inputs}
    job = jobline.enqueue("http", inputs, using=alias, **options)
    drain(count, using=alias, timeout=15)
    return Job.objects.using(alias).get(pk=job.id)


def test_http__success_stores_status_headers_and_body(alias, target, loopback_allowed):
    path = unique("/ok")
    row = run(alias, url=target.url(path), method="post", json={"n": 1, "s": "é"})
    assert row.status == "succeeded" and row.attempts == 1
    out = row.outputs
    assert out["status"] == 200 and out["url"] == target.url(path)
    assert out["headers"]["x-reply"] == "yes"
    assert json.loads(out["body"]) == {"hello": "world"} and out["truncated"] is False
    (seen,) = target.requests_to(path)
    assert seen.method == "POST"
    assert json.loads(seen.body) == {"n": 1, "s": "é"}
    assert seen.headers["Content-Type"] == "application/json"
    assert seen.headers["Idempotency-Key"] == str(row.id)
    assert seen.headers["X-Jobline-Attempt"] == "1"


def test_http__body_is_cut_at_64_kib(alias, target, loopback_allowed):
    out = run(alias, url=target.url("/big"), headers={"X-Custom": "1"}).outputs
    assert len(out["body"]) == 64 * 1024 and out["truncated"] is True


def test_http__5xx_is_retried_with_backoff_then_succeeds(
    alias, target, loopback_allowed, fast_retries
):
    path = unique("/fail/2")
    row = run(alias, 3, url=target.url(path))
    assert (row.status, row.attempts, row.outputs["status"]) == ("succeeded", 3, 200)
    attempts = [s.headers["X-Jobline-Attempt"] for s in target.requests_to(path)]
    assert attempts == ["1", "2", "3"]


def test_http__retry_after_is_honoured(alias, target, loopback_allowed, fast_retries):
    path = unique("/busy/1")
    row = run(alias, 2, url=target.url(path))
    assert (row.status, row.attempts) == ("succeeded", 2)
    first, second = target.requests_to(path)
    assert second.at - first.at >= 0.95  # not the 0.05 s backoff of the policy


@pytest.mark.parametrize("status", [400, 404, 410])
def test_http__4xx_fails_at_once(alias, target, loopback_allowed, status):
    row = run(alias, url=target.url(f"/status/{status}"))
    assert (row.status, row.attempts) == ("failed", 1)
    assert row.error.startswith(f"HTTP {status} from GET ") and "status page" in row.error


@pytest.mark.parametrize(
    ("path", "inputs"),
    [("/status/429", {}), ("/status/408", {}), ("/status/404", {"retry_client_errors": True})],
)
def test_http__retryable_4xx_is_retried(alias, target, loopback_allowed, path, inputs):
    row = run(alias, url=target.url(path), **inputs)
    assert (row.status, row.attempts) == ("queued", 1)


def test_http__expected_status(alias, target, loopback_allowed):
    row = run(alias, url=target.url("/status/404"), expected_status=[404, 410])
    assert (row.status, row.outputs["status"]) == ("succeeded", 404)
    row = run(alias, url=target.url("/ok"), expected_status=201, max_attempts=1)
    assert row.status == "failed" and row.error.startswith("HTTP 200 from GET")


def test_http__timeout_fails_the_attempt(alias, target, loopback_allowed):
    row = run(alias, url=target.url("/slow/1"), timeout=0.2, max_attempts=1)
    assert row.status == "failed"
    assert row.error == f"timed out after 0.2 s: GET {target.url('/slow/1')}"


def test_http__connection_refused_is_retried(alias, loopback_allowed):
    row = run(alias, url=f"http://127.0.0.1:{free_port()}/")
    assert (row.status, row.attempts) == ("queued", 1)
    assert row.error.startswith("ClientConnectorError: Cannot connect to host 127.0.0.1")


def test_http__signature_verifies_with_the_named_secret(alias, target, loopback_allowed, settings):
    settings.JOBLINE_HTTP_SIGNING_SECRETS = "billing=s3cret other=x"
    path = unique("/ok")
    run(alias, url=target.url(path), method="PUT", body="payload", sign_with="billing")
    (seen,) = target.requests_to(path)
    header = seen.headers["X-Jobline-Signature"]
    assert seen.body == b"payload"
    assert verify_signature("s3cret", header, seen.body)
    assert not verify_signature("x", header, seen.body)
    assert not verify_signature("s3cret", header, b"payload!")


def test_http__unknown_secret_fails_at_once(alias, target, loopback_allowed):
    row = run(alias, url=target.url("/ok"), sign_with="nope")
    assert (row.status, row.attempts) == ("failed", 1)
    assert "no signing secret named 'nope'" in row.error


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "localhost", "[::ffff:127.0.0.1]", "2130706433", "0x7f000001", "127.1"]
)
def test_http__loopback_is_refused_unless_allowed(alias, target, host):
    path = unique("/ok")
    url = target.url(path).replace("127.0.0.1", host)
    row = run(alias, url=url)
    assert (row.status, row.attempts) == ("failed", 1)
    if host in ("2130706433", "127.1"):  # legacy numeric forms: aiohttp refuses them itself
        assert "is not a canonical IPv4 address" in row.error
    else:
        assert row.error.startswith("refused to connect: 127.0.0.1 is a loopback address")
        assert "JOBLINE_HTTP_ALLOWED_NETWORKS" in row.error
    assert target.requests_to(path) == []


def test_http__redirect_to_a_forbidden_address_is_refused(alias, target, settings):
    settings.JOBLINE_HTTP_ALLOWED_NETWORKS = "127.0.0.1/32"
    port = target.server_address[1]
    followed = run(alias, url=target.url("/redirect?to=/ok"), follow_redirects=True)
    assert followed.status == "succeeded" and followed.outputs["url"] == target.url("/ok")
    path = f"/redirect?to=http://127.0.0.2:{port}/ok"
    row = run(alias, url=target.url(path), follow_redirects=True)
    assert (row.status, row.attempts) == ("failed", 1)
    assert row.error.startswith("refused to connect: 127.0.0.2 is a loopback address")
    not_followed = run(alias, url=target.url(path), max_attempts=1)
    assert not_followed.error.startswith("HTTP 302")


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://example.com/", "gopher://x", "http://", "example.com"]
)
def test_http__bad_url_is_refused_at_enqueue(alias, url):
    with pytest.raises(jobline.InputsError) as info:
        jobline.enqueue("http", {"url": url}, using=alias)
    assert info.value.errors[0]["field"] == "url"
    assert not Job.objects.using(alias).exists()


def test_http__jobs_share_one_client_per_worker(alias, target, loopback_allowed):
    paths = [unique("/ok") for _ in range(20)]
    jobline.enqueue_many("http", [{"url": target.url(p)} for p in paths], using=alias)
    drain(20, using=alias, concurrency=5)
    ports = {s.client_port for p in paths for s in target.requests_to(p)}
    assert 1 <= len(ports) <= 5  # at most one connection per job running at once
