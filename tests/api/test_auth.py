"""Who may call the API: tokens (read-write, read-only), sessions with CSRF, public reads."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client, override_settings

from jobline.cli.main import main
from jobline.models import Job
from jobline.models.api import ApiToken, hash_token
from tests.api.conftest import Api

READS = ["/jobs", "/jobs/1", "/job-types", "/queues", "/workers", "/templates", "/timer/1"]
WRITES = [
    ("POST", "/jobs"),
    ("POST", "/jobs/1/cancel"),
    ("POST", "/jobs/cancel"),
    ("POST", "/jobs/1/report"),
    ("POST", "/queues/default/pause"),
    ("POST", "/templates"),
    ("PATCH", "/templates/1"),
    ("DELETE", "/templates/1"),
    ("POST", "/templates/1/run"),
    ("POST", "/timer"),
]


@pytest.mark.parametrize("path", READS)
def test_no_credentials_is_401_on_reads(anonymous, path):
    r = anonymous.get(path)
    assert r.status_code == 401
    assert r.json() == {"detail": "authentication required"}
    assert r.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(("method", "path"), WRITES)
def test_no_credentials_is_401_on_writes(anonymous, method, path):
    assert anonymous.send(method, path, {"type": "noop"}).status_code == 401
    assert not Job.objects.exists()


def test_health_and_docs_are_public(anonymous):
    assert anonymous.get("/health").status_code == 200
    assert anonymous.client.get("/api/v1/openapi.json").status_code == 200
    assert anonymous.client.get("/api/v1/docs").status_code == 200


def test_wrong_token_is_401(db, client):
    for token in ("jl_wrong", "not-even-ours", ""):
        r = Api(client, token).get("/jobs")
        assert r.status_code == 401, token
    r = Api(client, "jl_wrong").get("/jobs")
    assert r.json() == {"detail": "invalid or revoked API token"}


@pytest.mark.parametrize(("method", "path"), WRITES)
def test_read_only_token_reads_but_cannot_write(reader, method, path):
    assert reader.get("/jobs").status_code == 200
    r = reader.send(method, path, {"type": "noop"})
    assert r.status_code == 403
    assert r.json() == {"detail": "token:reader may only read"}
    assert not Job.objects.exists()


def test_token_is_stored_hashed_and_its_use_recorded(api):
    token = ApiToken.objects.get(name="tests")
    secret = api.headers["Authorization"].removeprefix("Bearer ")
    assert token.token_hash == hash_token(secret) and secret not in token.token_hash
    assert secret.startswith(token.prefix)
    assert token.last_used_at is None
    assert api.get("/jobs").status_code == 200
    token.refresh_from_db()
    assert token.last_used_at is not None


def test_revoked_token_is_401(api):
    assert main(["token", "revoke", "tests"], django_ready=True) == 0
    assert api.get("/jobs").status_code == 401


def test_token_create_command_prints_the_token_alone_on_the_last_line(db, client, capsys):
    assert main(["token", "create", "ci"], django_ready=True) == 0
    secret = capsys.readouterr().out.splitlines()[-1]
    assert Api(client, secret).post("/jobs", {"type": "noop"}).status_code == 201
    assert main(["token", "create", "viewer", "--read-only"], django_ready=True) == 0
    viewer = capsys.readouterr().out.splitlines()[-1]
    assert Api(client, viewer).post("/jobs", {"type": "noop"}).status_code == 403
    assert main(["token", "create", "ci"], django_ready=True) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["token", "revoke", "nobody"], django_ready=True) == 2


def test_admin_creates_a_token_and_shows_it_once(admin_client):
    r = admin_client.post(
        "/admin/jobline/apitoken/add/", {"name": "from-admin", "read_only": "on"}, follow=True
    )
    assert r.status_code == 200
    token = ApiToken.objects.get(name="from-admin")
    (message,) = [str(m) for m in r.context["messages"] if "copy it now" in str(m)]
    secret = message.split(": ")[1].split(" ")[0]
    assert hash_token(secret) == token.token_hash and token.read_only
    page = admin_client.get(f"/admin/jobline/apitoken/{token.pk}/change/")
    assert secret not in page.content.decode()


def _user(username: str, *, staff: bool = False, perms: tuple[str, ...] = ()) -> User:
    user = User.objects.create_user(username, password="pw", is_staff=staff)
    user.user_permissions.add(*Permission.objects.filter(codename__in=perms))
    return user


def test_session_staff_reads_and_writes_with_csrf(db):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(_user("ops", staff=True))
    api = Api(browser)
    assert api.get("/jobs").status_code == 200
    r = api.post("/jobs", {"type": "noop"})
    assert r.status_code == 403 and "CSRF" in r.json()["detail"]
    browser.get("/api/v1/docs")  # the docs page hands a logged-in browser its CSRF cookie
    csrf = browser.cookies["csrftoken"].value
    assert api.send("POST", "/jobs", {"type": "noop"}, X_CSRFToken=csrf).status_code == 201


def test_session_users_need_permissions(db, client):
    api = Api(client)
    client.force_login(_user("nobody"))
    assert api.get("/jobs").status_code == 403
    client.force_login(_user("viewer", perms=("view_job",)))
    assert api.get("/jobs").status_code == 200
    assert api.post("/jobs", {"type": "noop"}).status_code == 403
    client.force_login(_user("operator", perms=("view_job", "change_job")))
    assert api.post("/jobs", {"type": "noop"}).status_code == 201


def test_public_read_setting_opens_reads_only(anonymous):
    with override_settings(JOBLINE_API_PUBLIC_READ=True):
        assert anonymous.get("/jobs").status_code == 200
        assert anonymous.get("/queues").status_code == 200
        assert anonymous.post("/jobs", {"type": "noop"}).status_code == 401
    assert not Job.objects.exists()
