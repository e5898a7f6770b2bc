"""Browser tests: headless Chromium (Debian's package, driven by Playwright) against a real
``jobline web`` process and a separate ``jobline worker`` process on the test database.

Without chromium the tests are skipped with a message, except with CI=true, where they fail.
Screenshots go to ``$JOBLINE_TEST_ARTIFACTS`` (default ``test-artifacts/``)/screenshots.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from django.contrib.auth.models import User

from tests.conftest import ROOT, database_url, free_port, jobline_process, stop_process

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ARTIFACTS = Path(os.environ.get("JOBLINE_TEST_ARTIFACTS") or ROOT / "test-artifacts")
PASSWORD = "pw-admin-123"


@dataclass(frozen=True)
class Site:
    """A running ``jobline web`` (with a worker) on the test database of ``alias``."""

    alias: str
    url: str


@pytest.fixture(scope="module")  # not longer: Playwright's loop would break async tests after
def browser():
    path = shutil.which("chromium")
    if path is None:
        why = "chromium not found: apt-get install chromium (scripts/test installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(f"{why}; never skipped with CI=true")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=10_000)  # a loaded CI machine is slower than a laptop

    # Playwright's sync API keeps an event loop marked running in this thread; the ORM calls
    # of the tests (plain synchronous calls in this thread) would be refused without this.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
            yield chromium
            chromium.close()
    finally:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]


@pytest.fixture(scope="module")
def site(
    request: pytest.FixtureRequest,
    django_db_setup,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Site]:
    """``jobline web`` and ``jobline worker`` processes; parametrize with the alias to use."""
    from django.conf import settings

    alias = request.param
    if alias not in settings.DATABASES:
        pytest.skip(f"PostgreSQL unreachable ({settings.POSTGRES_ERROR})")
    data = tmp_path_factory.mktemp("site")
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update(
        DATABASE_URL=database_url(alias),
        JOBLINE_DATA_DIR=str(data),
        JOBLINE_EXTRA_APPS="tests.example_app",
        JOBLINE_TEST_RUNLOG=str(data),
        JOBLINE_LEASE_SECONDS="3",
        JOBLINE_HEARTBEAT_SECONDS="0.5",
        PYTHONPATH=str(ROOT),
        SECRET_KEY="tests-only",
    )
    port = free_port()
    # Output goes to files (kept for a failing test's report): a pipe nobody reads while the
    # tests run would fill up and block a chatty process.
    logs = {name: (data / f"{name}.log").open("w") for name in ("web", "worker")}
    web = jobline_process(env, "web", "--port", str(port), stdout=logs["web"])
    worker = jobline_process(env, "worker", "--concurrency", "20", stdout=logs["worker"])
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90  # a busy 2-core machine starts Django slowly
        while True:
            try:
                httpx.get(f"{url}/api/v1/health", timeout=1)
                break
            except httpx.HTTPError:
                if web.poll() is not None or time.monotonic() > deadline:
                    stop_process(web)
                    pytest.fail(f"jobline web did not start:\n{(data / 'web.log').read_text()}")
                time.sleep(0.1)
        yield Site(alias, url)
    finally:
        stop_process(web)
        stop_process(worker)
        for file in logs.values():
            file.close()


@pytest.fixture
def admin(site: Site) -> User:
    return User.objects.db_manager(site.alias).create_superuser("admin", "", PASSWORD)


@pytest.fixture
def page(browser, site: Site, admin: User):
    """A signed-in page; fails the test if the page logged a JavaScript error."""
    context = browser.new_context(viewport={"width": 1280, "height": 860}, base_url=site.url)
    context.set_default_timeout(15_000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.on("console", lambda m: m.type == "error" and errors.append(m.text))
    sign_in(tab)
    yield tab
    context.close()
    assert not [e for e in errors if "status of 4" not in e], errors  # 4xx are expected


def sign_in(tab) -> None:
    tab.goto("/login/")
    tab.fill("#id_username", "admin")
    tab.fill("#id_password", PASSWORD)
    tab.click("form.login button[type=submit]")
    tab.wait_for_url("**/")


def shot(tab, site: Site, name: str) -> Path:
    """Save a full-page screenshot as a test artifact."""
    folder = ARTIFACTS / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}-{'postgres' if site.alias == 'postgres' else 'sqlite'}.png"
    tab.evaluate("window.scrollTo(0, 0)")  # else the sticky top bar lands mid-page
    tab.screenshot(path=str(path), full_page=True)
    return path
