"""Test settings: an SQLite file database ("default") and PostgreSQL ("postgres").

PostgreSQL comes from JOBLINE_TEST_POSTGRES_URL (default: the local server).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from jobline.service.database import database, sqlite_url

TMP = Path(os.environ.get("JOBLINE_TEST_TMP") or tempfile.mkdtemp(prefix="jobline-tests-"))
PG_URL = os.environ.get("JOBLINE_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")

SECRET_KEY = "tests-only"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True


def _postgres_error() -> str | None:
    import psycopg

    try:
        psycopg.connect(PG_URL, connect_timeout=3).close()
    except psycopg.Error as exc:
        return str(exc).strip()
    return None


# Without PostgreSQL the "postgres" tests are skipped, except in CI, where they must run.
POSTGRES_ERROR = _postgres_error()
DATABASES = {"default": database(sqlite_url(TMP / "jobline.sqlite3"))}
DATABASES["default"]["TEST"] = {"NAME": str(TMP / "test-jobline.sqlite3")}
if POSTGRES_ERROR is None or os.environ.get("CI") == "true":
    DATABASES["postgres"] = database(PG_URL)
    DATABASES["postgres"]["TEST"] = {"NAME": f"test_jobline_{os.getpid()}"}
    DATABASES["postgres"]["CONN_MAX_AGE"] = 0
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "jobline",
    "tests.example_app",
]
MIDDLEWARE = [
    "jobline.input_guard.InputGuardMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
ROOT_URLCONF = "jobline.service.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
STATIC_URL = "/static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Long enough that a busy 2-core host never lapses a lease by accident (a lapsed lease
# rightly counts an attempt); tests of a lost worker expire its lease themselves.
JOBLINE_LEASE_SECONDS = 15.0
JOBLINE_HEARTBEAT_SECONDS = 0.5
JOBLINE_POLL_SECONDS = 0.2
JOBLINE_SHUTDOWN_GRACE_SECONDS = 5.0
# django.tasks (the django-tasks backport on Django 5.2) runs on jobline.
TASKS = {"default": {"BACKEND": "jobline.tasks.Backend", "QUEUES": ["default", "mail"]}}
