"""`manage.py jobline ...` in a plain Django project that set up nothing for jobline: its
logs show, the admin's static files are served, and the help reads as help."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from jobline.dispatch.broker import free_port
from tests.conftest import wait_until

SETTINGS = """
import jobline
from pathlib import Path

SECRET_KEY = "library-mode-test"
DEBUG = True
ALLOWED_HOSTS = ["*"]
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.admin", "django.contrib.auth", "django.contrib.contenttypes",
    "django.contrib.sessions", "django.contrib.messages", "django.contrib.staticfiles",
    "jobline",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
ROOT_URLCONF = "libproject.urls"
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True,
    "OPTIONS": {"context_processors": [
        "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages",
    ]},
}]
DATABASES = {"default": jobline.database(f"sqlite:///{Path(__file__).parent / 'db.sqlite3'}")}
STATIC_URL = "/static/"
"""

URLS = """
from django.contrib import admin
from django.urls import include, path

urlpatterns = [path("admin/", admin.site.urls), path("", include("jobline.urls"))]
"""


@pytest.fixture
def project(tmp_path: Path):
    package = tmp_path / "libproject"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "settings.py").write_text(SETTINGS)
    (package / "urls.py").write_text(URLS)
    env = {k: v for k, v in os.environ.items() if k not in ("LOG_LEVEL", "JOBLINE_DATA_DIR")}
    env.update(DJANGO_SETTINGS_MODULE="libproject.settings", PYTHONPATH=str(tmp_path))

    def run(*args: str, **kwargs) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "django", *args],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            **kwargs,
        )

    assert run("migrate", "-v", "0").wait(120) == 0
    return run


def _lines_until(proc: subprocess.Popen[str], text: str) -> list[str]:
    seen: list[str] = []
    for line in proc.stdout:
        seen.append(line)
        if text in line:
            return seen
    raise AssertionError(f"{text!r} never came; output:\n{''.join(seen)}")


def test_worker__logs_start_failures_and_sigterm(project):
    assert project("jobline", "enqueue", "no_such_type_here").wait(60) == 2  # a clear refusal
    failing = project("jobline", "enqueue", "http", "--inputs", '{"url": "http://127.0.0.1:9/"}')
    assert failing.wait(60) == 0
    worker = project("jobline", "worker")
    try:
        _lines_until(worker, "worker started")
        _lines_until(worker, "job failed")  # the guard refuses loopback: fails at once
        worker.terminate()
        rest = worker.communicate(timeout=60)[0]
    finally:
        worker.kill()
    assert "SIGTERM: taking no new jobs" in rest and "worker stopped" in rest


def test_web__serves_the_admin_css_with_debug_on(project):
    port = free_port()
    web = project("jobline", "web", "--port", str(port))
    base = f"http://127.0.0.1:{port}"
    try:

        def get(path: str) -> int:
            try:
                return urllib.request.urlopen(base + path, timeout=5).status
            except OSError:
                return 0

        wait_until(lambda: get("/api/v1/health") == 200, timeout=60, what="jobline web")
        assert get("/static/admin/css/base.css") == 200
    finally:
        web.terminate()
        web.communicate(timeout=60)


def test_help__reads_as_help(project):
    out = project("jobline", "--help").communicate(timeout=60)[0]
    assert out.startswith("usage: python -m django jobline")
    assert "parse arguments, set up Django" not in out
    assert "changepassword" in out and "runs everything in one process" in out
    help_out = project("help", "jobline").communicate(timeout=60)[0]
    assert "usage: python -m django jobline" in help_out and "worker" in help_out
