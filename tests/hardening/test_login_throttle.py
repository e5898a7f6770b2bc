"""A burst of wrong passwords on /login/ and /admin/login/ is stopped, per user name and per
address, with a clear message; API tokens never are."""

from __future__ import annotations

import pytest
from django.test import Client, override_settings

MESSAGE = "Too many failed sign-ins"


@pytest.fixture(autouse=True)
def _fast_hashes(settings):
    """Dozens of sign-ins per test: a fast hasher keeps them cheap (throttling is the same)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _login(client: Client, path: str, username: str, password: str, addr: str = "10.0.0.1"):
    data = {"username": username, "password": password}
    if path == "/admin/login/":
        data["next"] = "/admin/"
    return client.post(path, data, REMOTE_ADDR=addr)


@pytest.mark.parametrize("path", ["/login/", "/admin/login/"])
def test_a_burst_of_wrong_passwords_is_throttled(staff, path):
    client = Client()
    answers = [_login(client, path, "ops", f"wrong-{n}") for n in range(20)]
    assert all(MESSAGE not in a.content.decode() for a in answers[:5])
    for answer in answers[5:]:
        assert MESSAGE in answer.content.decode()
        assert answer.status_code == (429 if path == "/login/" else 200)
    # Even the right password is not checked now, so guessing gains nothing.
    right = _login(client, path, "ops", "pw-ops-123")
    assert MESSAGE in right.content.decode() and "_auth_user_id" not in client.session


def test_per_address_and_per_user_name(staff):
    client = Client()
    for n in range(5):  # five different user names from one address
        _login(client, "/login/", f"user{n}", "x", addr="10.0.0.9")
    assert (
        MESSAGE in _login(client, "/login/", "ops", "pw-ops-123", addr="10.0.0.9").content.decode()
    )
    # Another address may still sign in as ops.
    ok = _login(Client(), "/login/", "ops", "pw-ops-123", addr="10.0.0.10")
    assert ok.status_code == 302
    for n in range(5):  # one user name from five addresses
        _login(client, "/login/", "ops", "x", addr=f"10.1.0.{n}")
    late = _login(Client(), "/login/", "ops", "pw-ops-123", addr="10.2.0.1")
    assert MESSAGE in late.content.decode()


def test_success_clears_the_user_name_count(staff):
    client = Client()
    for n in range(4):
        _login(client, "/login/", "ops", "x", addr=f"10.3.0.{n}")
    assert _login(Client(), "/login/", "ops", "pw-ops-123", addr="10.3.1.1").status_code == 302
    for n in range(4):
        _login(client, "/login/", "ops", "x", addr=f"10.4.0.{n}")
    assert _login(Client(), "/login/", "ops", "pw-ops-123", addr="10.4.1.1").status_code == 302


def test_api_tokens_are_not_affected(staff, api):
    for n in range(20):
        _login(Client(), "/login/", "ops", f"wrong-{n}", addr="127.0.0.1")
    assert api.get("/jobs").status_code == 200  # the api client's address is 127.0.0.1 too


@override_settings(JOBLINE_LOGIN_FAILURE_LIMIT=0)
def test_limit_0_turns_it_off(staff):
    for n in range(10):
        _login(Client(), "/login/", "ops", f"wrong-{n}")
    assert _login(Client(), "/login/", "ops", "pw-ops-123").status_code == 302
