"""Web UI tests: a logged-in browser session (Django's test client) and jobs in every state."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.utils import timezone

from jobline.models import Job


@pytest.fixture
def staff(db) -> User:
    return User.objects.create_user("ops", password="pw-ops", is_staff=True)


@pytest.fixture
def ui(staff: User, client: Client) -> Client:
    """A browser session of a staff user."""
    client.force_login(staff)
    return client


@pytest.fixture
def viewer(db, client: Client) -> Client:
    """A user who may look (``jobline.view_job``) but not change anything."""
    user = User.objects.create_user("viewer", password="pw")
    user.user_permissions.add(Permission.objects.get(codename="view_job"))
    client.force_login(user)
    return client


def make_job(status: str = "queued", *, age: float = 0, took: float = 1, **fields) -> Job:
    """A job row in ``status``, created ``age`` seconds ago (finished ones ran ``took`` s)."""
    now = timezone.now()
    created = now - timedelta(seconds=age)
    values = {
        "type": "add",
        "queue": "default",
        "inputs": {"a": 1},
        "status": status,
        "run_at": created,
        "created_at": created,
        **fields,
    }
    if status != "queued":
        values.setdefault("started_at", created)
        values.setdefault("attempts", 1)
    if status in ("succeeded", "failed", "cancelled"):
        values.setdefault("finished_at", created + timedelta(seconds=took))
    return Job.objects.create(**values)
