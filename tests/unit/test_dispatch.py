"""The pieces of the http and kafka job types that need no network, and jobline.Fail."""

from __future__ import annotations

import asyncio
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest

import jobline
from jobline.core.jobtypes import JobType
from jobline.core.retry import RetryPolicy
from jobline.core.schema import Schema
from jobline.core.states import JobStatus, Outcome, after_attempt
from jobline.core.values import ClaimedJob
from jobline.dispatch import http, kafka
from jobline.dispatch.guard import (
    AddressNotAllowed,
    is_refusal,
    parse_networks,
    refusal,
    socket_factory,
)
from jobline.exceptions import JoblineError
from jobline.worker import resources
from jobline.worker.executor import run_attempt

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped: judged as the IPv4 address
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("fd00::1", "private"),
        ("169.254.169.254", "link-local"),  # cloud metadata
        ("fe80::1%eth0", "link-local"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("100.64.0.1", "non-public"),  # carrier-grade NAT
    ],
)
def test_refusal__non_public_addresses(address, kind):
    assert f"is a {kind} address" in (refusal(address, ()) or "")


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111"])
def test_refusal__public_addresses_pass(address):
    assert refusal(address, ()) is None


def test_refusal__allowed_networks_open_a_range():
    allowed = parse_networks("127.0.0.0/8 10.0.0.0/16")
    assert refusal("127.0.0.5", allowed) is None
    assert refusal("::ffff:10.0.3.4", allowed) is None
    assert refusal("10.1.0.1", allowed) is not None
    assert refusal("::1", allowed) is not None
    assert parse_networks(["::1/128"]) == parse_networks("::1")


def test_socket_factory__refuses_before_connecting():
    import errno
    import socket

    make = socket_factory(parse_networks("10.0.0.0/8"))
    with pytest.raises(AddressNotAllowed) as info:
        make((socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", 80)))
    assert info.value.errno == errno.EACCES and is_refusal(info.value)
    assert info.value.strerror == (
        "refused to connect: 127.0.0.1 is a loopback address; "
        "to allow it, list it in JOBLINE_HTTP_ALLOWED_NETWORKS"
    )
    with make((socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.2.3.4", 80))) as sock:
        assert sock.family == socket.AF_INET
    assert not is_refusal(ConnectionRefusedError(errno.ECONNREFUSED, "refused"))


def test_parse_networks__names_the_setting_on_error():
    with pytest.raises(JoblineError, match=r"JOBLINE_HTTP_ALLOWED_NETWORKS: .*'nope'"):
        parse_networks("10.0.0.0/8 nope")


def test_signature__round_trip_and_what_breaks_it():
    header = http.sign("secret", b'{"a":1}', 1_700_000_000)
    assert header.startswith("t=1700000000,v1=") and len(header.split("v1=")[1]) == 64
    ok = {"tolerance": 300, "now": 1_700_000_100}
    assert http.verify_signature("secret", header, b'{"a":1}', **ok)
    assert not http.verify_signature("secret", header, b'{"a":2}', **ok)
    assert not http.verify_signature("other", header, b'{"a":1}', **ok)
    assert not http.verify_signature("secret", header, b'{"a":1}', now=1_700_000_301)
    for broken in ["", "v1=abc", "t=x,v1=abc", "t=1700000000", header.replace("v1=", "v2=")]:
        assert not http.verify_signature("secret", broken, b'{"a":1}', **ok)


def test_signature__matches_the_documented_recipe():
    import hashlib
    import hmac

    expected = hmac.new(b"k", b"1700000000.body", hashlib.sha256).hexdigest()
    assert http.sign("k", b"body", 1_700_000_000) == f"t=1700000000,v1={expected}"


def test_signing_secret__from_a_dict_or_the_environment_string(settings):
    settings.JOBLINE_HTTP_SIGNING_SECRETS = {"a": "one"}
    assert http.signing_secret("a") == "one"
    settings.JOBLINE_HTTP_SIGNING_SECRETS = "a=one b=two=three"
    assert http.signing_secret("b") == "two=three"
    with pytest.raises(jobline.Fail, match="no signing secret named 'c'"):
        http.signing_secret("c")


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        (" 0 ", 0.0),
        ("Fri, 02 Jan 2026 03:05:05 GMT", 60.0),
        ("Fri, 02 Jan 2026 03:00:00 GMT", 0.0),  # in the past
        ("999999999", http.MAX_RETRY_AFTER),
        ("soon", None),
        ("-5", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after__seconds_or_http_date(value, seconds):
    assert http.retry_after(value, NOW) == seconds


@pytest.mark.parametrize(
    ("status", "retry_client_errors", "retryable"),
    [
        (500, False, True),
        (503, False, True),
        (408, False, True),
        (429, False, True),
        (404, False, False),
        (400, False, False),
        (404, True, True),
        (302, True, False),
    ],
)
def test_is_retryable(status, retry_client_errors, retryable):
    assert http.is_retryable(status, retry_client_errors) is retryable


def test_http_inputs__method_case_json_body_and_expected_status():
    schema = jobline.registry.get("http").inputs
    request = schema.validate({"url": "HTTPS://example.com", "method": "patch", "json": [1]})
    assert request.method == "PATCH" and request.content() == b"[1]"
    assert request.succeeded(204) and not request.succeeded(301)
    assert schema.validate({"url": "http://x", "expected_status": 301}).succeeded(301)
    assert schema.to_json(schema.validate({"url": "http://x"}))["json"] is None
    with pytest.raises(jobline.InputsError, match="give body or json, not both"):
        schema.validate({"url": "http://x", "body": "a", "json": {}})
    with pytest.raises(jobline.InputsError, match="line break"):
        schema.validate({"url": "http://x", "headers": {"X-A": "1\r\nX-B: 2"}})
    with pytest.raises(jobline.InputsError):
        schema.validate({"url": "http://x", "method": "TRACE"})


def test_kafka_inputs__topic_names():
    schema = jobline.registry.get("kafka").inputs
    assert schema.validate({"title": "t", "job_type": "x"}).configs == {}
    for bad in ["", "a b", "x" * 250, "semi;colon"]:
        with pytest.raises(jobline.InputsError):
            schema.validate({"title": "t", "job_type": "x", "topic": bad})


def test_kafka_producer_options__security_settings(settings):
    settings.JOBLINE_KAFKA_BOOTSTRAP_SERVERS = "a:9092, b:9092"
    options = kafka.producer_options()
    assert options["bootstrap_servers"] == ["a:9092", "b:9092"]
    assert (options["acks"], options["enable_idempotence"]) == ("all", True)
    assert "sasl_mechanism" not in options and "ssl_context" not in options
    settings.JOBLINE_KAFKA_SECURITY_PROTOCOL = "SASL_SSL"
    settings.JOBLINE_KAFKA_SASL_MECHANISM = "SCRAM-SHA-512"
    settings.JOBLINE_KAFKA_SASL_USERNAME = "user"
    settings.JOBLINE_KAFKA_SASL_PASSWORD = "pass"
    settings.JOBLINE_KAFKA_IDEMPOTENT = False
    options = kafka.producer_options()
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("user", "pass")
    assert options["ssl_context"] is not None and options["enable_idempotence"] is False


def test_kafka__disabled_logs_the_message_and_says_so(settings, caplog):
    settings.JOBLINE_KAFKA_ENABLED = False
    caplog.set_level(logging.WARNING, "jobline.kafka")
    configs = {"id": "c1", "google_api_key": "AIzaSyA-1234567890abcdWXYZ", "n": [{"token": "t"}]}
    inputs = {"title": "scan", "job_type": "youtube", "configs": configs}
    out = _run_kafka_inline(inputs)
    assert out == {"sent": False, "topic": "jobs", "partition": None, "offset": None}
    (record,) = caplog.records
    logged = record.getMessage()
    assert "KAFKA_ENABLED is false: message logged, not sent" in logged
    assert '"title":"scan"' in logged and "key=7" in logged and '"id":"c1"' in logged
    assert "1234567890" not in logged and '"google_api_key":"****WXYZ"' in logged
    assert '"token":"****"' in logged


def _run_kafka_inline(inputs: dict) -> object:
    """Run the kafka job as the worker would, with a job context (id 7)."""
    kafka_type = jobline.registry.get("kafka")
    job = ClaimedJob(
        id=7, type="kafka", queue="default", inputs=inputs, attempt=1, max_attempts=1, timeout=None
    )
    with ThreadPoolExecutor(1) as threads:
        done = asyncio.run(run_attempt(job, kafka_type, threads=threads))
    assert done.status is JobStatus.SUCCEEDED, done.error
    return json.loads(done.outputs or "null")


# -- jobline.Fail ---------------------------------------------------------------------------


def test_after_attempt__fail_is_final_whatever_attempts_remain():
    policy = RetryPolicy()
    t = after_attempt(Outcome.FAIL, attempt=1, max_attempts=5, policy=policy, rand=0.5)
    assert t.status is JobStatus.FAILED and t.retry_in is None


def test_run_attempt__fail_ends_the_job_with_its_reason():
    async def give_up(inputs: object) -> None:
        raise jobline.Fail("the order was deleted")

    job_type = JobType(
        name="give_up",
        run=give_up,
        is_async=True,
        inputs=Schema.from_type("give_up", None),
        outputs=Schema.from_type("give_up", None),
        call_with_kwargs=False,
        max_attempts=5,
    )
    job = ClaimedJob(
        id=1, type="give_up", queue="default", inputs={}, attempt=1, max_attempts=5, timeout=None
    )
    with ThreadPoolExecutor(1) as threads:
        done = asyncio.run(run_attempt(job, job_type, threads=threads))
    assert (done.status, done.error, done.traceback) == (
        JobStatus.FAILED,
        "the order was deleted",
        "",
    )


# -- resources shared by a worker's jobs ---------------------------------------------------


def test_resources__made_once_for_concurrent_jobs_and_closed_newest_first():
    made: list[str] = []
    closed: list[str] = []

    def maker(name: str):
        async def make() -> str:
            await asyncio.sleep(0.01)
            made.append(name)
            return name

        return make

    async def close(value: str) -> None:
        closed.append(value)

    async def main() -> None:
        shared = resources.Resources()
        got = await asyncio.gather(*(shared.get("a", maker("a"), close) for _ in range(50)))
        assert got == ["a"] * 50
        assert await shared.get("b", maker("b"), close) == "b"
        await shared.aclose()
        with pytest.raises(RuntimeError, match="stopped"):
            await shared.get("c", maker("c"), close)

    asyncio.run(main())
    assert made == ["a", "b"] and closed == ["b", "a"]


def test_resources__a_failed_make_is_tried_again_and_close_errors_are_logged(caplog):
    calls = 0

    async def make() -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("broker down")
        return calls

    async def close(value: int) -> None:
        raise OSError("already gone")

    async def main() -> None:
        shared = resources.Resources()
        with pytest.raises(ConnectionError):
            await shared.get("p", make, close)
        assert await shared.get("p", make, close) == 2
        await shared.aclose()

    asyncio.run(main())
    assert "closing the shared resource p failed" in caplog.text


def test_shared__outside_a_worker_makes_and_closes_one_per_use():
    events: list[str] = []

    async def make() -> str:
        events.append("make")
        return "r"

    async def close(value: str) -> None:
        events.append("close")

    async def main() -> None:
        async with resources.shared("k", make, close) as value:
            assert value == "r" and events == ["make"]

    asyncio.run(main())
    assert events == ["make", "close"]
