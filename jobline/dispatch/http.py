"""The ``http`` job type: call a URL from a worker, safely.

* **Connection reuse**: one ``aiohttp.ClientSession`` per worker, shared by its jobs.
* **Outcome**: an expected status (default: any 2xx) succeeds and stores the status, the
  response headers and the first 64 KiB of the body. 5xx, 408, 429, timeouts and
  connection errors fail the attempt, retried with backoff (``Retry-After`` honoured);
  other statuses fail the job at once.
* **Private addresses refused**: every connection's address is checked after DNS
  resolution, when it is made, so neither a redirect nor DNS rebinding gets around it
  (:mod:`jobline.dispatch.guard`). Only public addresses are reached, plus the networks
  listed in ``JOBLINE_HTTP_ALLOWED_NETWORKS``.
* **Receivers can trust and dedupe requests**: ``Idempotency-Key: <job id>`` on every
  request, and with ``sign_with`` an ``X-Jobline-Signature`` header (:func:`sign`,
  checked with :func:`verify_signature`).
* **Traced**: with OpenTelemetry configured, the request carries the job's trace context
  (``traceparent``), so the receiver's spans join the job's trace (:mod:`jobline.tracing`).
"""

from __future__ import annotations

import asyncio
import codecs
import email.utils
import hashlib
import hmac
import importlib
import json
import re
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator
from pydantic.dataclasses import dataclass

from jobline import conf, tracing
from jobline.core import input_rules
from jobline.core.jobtypes import current_job
from jobline.exceptions import Fail, Retry
from jobline.jobtypes import Job
from jobline.redact import masked_text, redacted
from jobline.worker.resources import make_at_start, shared

if TYPE_CHECKING:
    import aiohttp

SIGNATURE_HEADER = "X-Jobline-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
BODY_LIMIT = 64 * 1024  #: bytes of the response body kept in the job's outputs
MAX_RETRY_AFTER = 86_400.0  #: longest ``Retry-After`` wait honoured, in seconds
MAX_REDIRECTS = 10
RETRYABLE_CLIENT_ERRORS = frozenset({408, 429})  #: request timeout, too many requests
CLIENT_KEY = "jobline.http.client"

_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # an HTTP header name (RFC 9110)


def _new_client() -> aiohttp.ClientSession:
    guard = importlib.import_module("jobline.dispatch.guard")  # aiohttp: loaded on first use
    allowed = guard.parse_networks(conf.get("JOBLINE_HTTP_ALLOWED_NETWORKS"))
    return guard.guarded_session(allowed, headers={"User-Agent": "jobline"})


async def _open_client() -> aiohttp.ClientSession:
    # Importing aiohttp takes a moment (seconds on a loaded host): off the event loop, so
    # the worker's heartbeat and running jobs go on meanwhile.
    await asyncio.to_thread(importlib.import_module, "jobline.dispatch.guard")
    return _new_client()


async def _open_client_at_start() -> aiohttp.ClientSession:
    # Before its first claim a worker runs no job, so the import may hold the loop (under
    # `jobline up`, the web server's too, once at start): imported in a thread, aiohttp
    # stayed in that thread's malloc arena (worker RSS 81.3 -> 76.3 MB).
    return _new_client()


async def _close_client(client: aiohttp.ClientSession) -> None:
    await client.close()


make_at_start("http", CLIENT_KEY, _open_client_at_start, _close_client)


# -- signatures ----------------------------------------------------------------------------


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The signature header: ``t=<unix time>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify_signature(
    secret: str, header: str, body: bytes, *, tolerance: float = 300.0, now: float | None = None
) -> bool:
    """True when ``header`` (``X-Jobline-Signature``) signs ``body`` with ``secret``.

    Signatures older (or newer) than ``tolerance`` seconds are refused, so a captured
    request cannot be replayed later. ``body`` is the raw request body, as received.
    """
    fields = dict(part.strip().partition("=")[::2] for part in header.split(","))
    try:
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = sign(secret, body, timestamp).partition(",v1=")[2]
    return hmac.compare_digest(expected, fields.get("v1", ""))


def signing_secret(name: str) -> str:
    """The secret ``name`` of the ``JOBLINE_HTTP_SIGNING_SECRETS`` setting."""
    secrets: Any = conf.get("JOBLINE_HTTP_SIGNING_SECRETS")
    if isinstance(secrets, str):  # from the environment: "name=secret other=secret2"
        secrets = dict(pair.partition("=")[::2] for pair in secrets.split())
    secret = secrets.get(name)
    if not secret:
        raise Fail(f"no signing secret named {name!r} in JOBLINE_HTTP_SIGNING_SECRETS")
    return str(secret)


# -- responses -----------------------------------------------------------------------------


def retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return min(max(0.0, (when - now).total_seconds()), MAX_RETRY_AFTER)


def is_retryable(status: int, retry_client_errors: bool = False) -> bool:
    """Whether an unexpected status may change on a later attempt."""
    if status >= 500 or status in RETRYABLE_CLIENT_ERRORS:
        return True
    return retry_client_errors and 400 <= status < 500


StatusCode = Annotated[int, Field(ge=100, le=599)]
Method = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


@dataclass(frozen=True, kw_only=True, config=ConfigDict(extra="forbid"))
class HttpRequest:
    """What to call and what counts as success."""

    url: str = Field(max_length=8192, description="http:// or https:// URL")
    method: Method = Field("GET", description="HTTP method (any case).")
    headers: dict[str, str] = Field(default_factory=dict, description="Request headers.")
    body: str | None = Field(None, description="Request body as text (not with json).")
    json: Any = Field(None, description="Request body as JSON; sets Content-Type.")
    timeout: float = Field(30.0, gt=0, le=3600, description="Seconds for the whole request.")
    expected_status: StatusCode | list[StatusCode] | None = Field(
        None, description="Status (or statuses) that mean success; default any 2xx."
    )
    follow_redirects: bool = Field(
        False, description=f"Follow 3xx answers (up to {MAX_REDIRECTS})."
    )
    retry_client_errors: bool = Field(
        False, description="Retry every 4xx; by default only 408 and 429 are retried."
    )
    sign_with: str | None = Field(
        None, description="Name of a secret in JOBLINE_HTTP_SIGNING_SECRETS to sign with."
    )

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, method: Any) -> Any:
        return method.upper() if isinstance(method, str) else method

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        if problem := input_rules.http_url_problem(url):
            raise ValueError(problem)
        return url

    @field_validator("headers")
    @classmethod
    def _header_syntax(cls, headers: dict[str, str]) -> dict[str, str]:
        for name, value in headers.items():
            if not _TOKEN.match(name):
                raise ValueError(f"{name!r} is not a valid header name")
            if any(c in value for c in "\r\n\0"):
                raise ValueError(f"header {name!r} has a line break or NUL in its value")
        return headers

    @model_validator(mode="after")
    def _one_body(self) -> HttpRequest:
        if self.body is not None and self.json is not None:
            raise ValueError("give body or json, not both")
        return self

    def content(self) -> bytes:
        """The exact bytes sent (and signed)."""
        if self.json is not None:
            return json.dumps(self.json, separators=(",", ":")).encode()
        return (self.body or "").encode()

    def succeeded(self, status: int) -> bool:
        expected = self.expected_status
        if expected is None:
            return 200 <= status < 300
        return status in (expected if isinstance(expected, list) else [expected])


@dataclass(frozen=True, kw_only=True)
class HttpResponse:
    """The answer, as stored in the job's outputs."""

    status: int
    headers: dict[str, str]  #: lower-case names; repeated headers joined with ", "
    body: str  #: the first 64 KiB of the body, decoded as text
    truncated: bool  #: the body was longer than what ``body`` holds
    url: str  #: the URL that answered (after redirects)
    elapsed: float  #: seconds, from sending the request to reading the body


class Http(Job):
    """Call a URL; succeed on an expected status, otherwise retry or fail.

    Inputs, outputs and rules: docs/how-to/http-and-kafka.md."""

    name = "http"
    user_triggered = True
    max_attempts = 5
    Inputs = HttpRequest
    Outputs = HttpResponse

    async def run(self) -> HttpResponse:
        job = current_job()
        headers = {IDEMPOTENCY_HEADER: str(job.id), "X-Jobline-Attempt": str(job.attempt)}
        return await call(self.inputs, headers)


async def call(request: HttpRequest, headers: dict[str, str]) -> HttpResponse:
    """Make ``request`` on the worker's guarded client, signed when it says so, with
    ``headers`` under its own; an unexpected status raises ``Retry`` or ``Fail``."""
    content = request.content()
    headers = dict(headers)
    if request.json is not None:
        headers["Content-Type"] = "application/json"
    elif request.body is not None:
        headers["Content-Type"] = "text/plain; charset=utf-8"
    headers.update(tracing.outgoing_headers())  # traceparent: the receiver joins the trace
    headers.update(request.headers)
    if request.sign_with:
        secret = signing_secret(request.sign_with)
        headers[SIGNATURE_HEADER] = sign(secret, content, int(time.time()))
    async with shared(CLIENT_KEY, _open_client, _close_client) as client:
        response = await send(client, request, content, headers)
    return check(request, response)


async def send(
    client: aiohttp.ClientSession, request: HttpRequest, content: bytes, headers: dict[str, str]
) -> HttpResponse:
    """Make the request; errors become ``Retry`` (may pass) or ``Fail`` (will not)."""
    import aiohttp

    from jobline.dispatch.guard import is_refusal

    what = f"{request.method} {masked_text(request.url)}"  # errors show no URL password
    started = time.monotonic()
    try:
        async with asyncio.timeout(request.timeout):  # the whole request, redirects included
            async with client.request(
                request.method,
                request.url,
                data=content or None,
                headers=headers,
                allow_redirects=request.follow_redirects,
                max_redirects=MAX_REDIRECTS,
                timeout=aiohttp.ClientTimeout(total=request.timeout),  # not aiohttp's 300 s
            ) as response:
                body, truncated = await _read_prefix(response.content, BODY_LIMIT)
    except TimeoutError:
        raise Retry(f"timed out after {request.timeout:g} s: {what}") from None
    except aiohttp.ClientConnectorError as exc:
        if is_refusal(exc):
            raise Fail(f"{exc.strerror} ({what})") from None
        raise Retry(f"{type(exc).__name__}: {exc} ({what})") from None
    except (aiohttp.InvalidURL, aiohttp.TooManyRedirects) as exc:
        raise Fail(f"{type(exc).__name__}: {masked_text(str(exc))} ({what})") from None
    except aiohttp.ClientError as exc:
        raise Retry(f"{type(exc).__name__}: {masked_text(str(exc))} ({what})") from None
    return HttpResponse(
        status=response.status,
        # Outputs are shown as stored: a Set-Cookie or a URL password must not be in them.
        headers=redacted(_joined(response.headers.items())),
        body=body.decode(_charset(response.charset), errors="replace"),
        truncated=truncated,
        url=masked_text(str(response.url)),
        elapsed=round(time.monotonic() - started, 6),
    )


async def _read_prefix(stream: aiohttp.StreamReader, limit: int) -> tuple[bytes, bool]:
    """At most ``limit`` bytes of the body: a huge answer is not downloaded."""
    body = bytearray()
    async for chunk in stream.iter_chunked(64 * 1024):
        body += chunk
        if len(body) > limit:
            return bytes(body[:limit]), True
    return bytes(body), False


def _joined(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Headers by lower-case name; a repeated header's values joined with ", "."""
    headers: dict[str, str] = {}
    for name, value in items:
        key = name.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return headers


def _charset(name: str | None) -> str:
    try:
        return codecs.lookup(name or "utf-8").name
    except LookupError:  # a charset Python does not know
        return "utf-8"


def check(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    """The response if its status is expected; else ``Retry`` or ``Fail``."""
    if request.succeeded(response.status):
        return response
    problem = f"HTTP {response.status} from {request.method} {masked_text(request.url)}"
    if response.body:
        problem += f": {response.body[:200]}"
    if not is_retryable(response.status, request.retry_client_errors):
        raise Fail(problem)
    delay = retry_after(response.headers.get("retry-after"), datetime.now(UTC))
    raise Retry(problem, delay=delay)
