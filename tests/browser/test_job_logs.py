"""A job that reports progress and logs 1,200 lines while a browser watches its page: the bar
moves, the log follows live (no reload), the cap holds, secrets stay masked."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

import jobline
from jobline.models import JobLog
from tests.browser.conftest import shot
from tests.conftest import ALL_DATABASES

pytestmark = ALL_DATABASES
BOTH = pytest.mark.parametrize("site", ["default", "postgres"], indirect=True)
SECRET = "s3cr3t-Hunter2-value"


@BOTH
def test_the_job_page_follows_progress_and_the_log_live(page, site, tmp_path):
    inputs = {"lines": 1200, "phases": 4, "gate": str(tmp_path), "secret": SECRET}
    job = jobline.enqueue("chatty", inputs, using=site.alias)
    page.goto(f"/jobs/{job.id}/")
    page.evaluate("window.sameDocument = true")  # gone if anything reloaded the page
    bar = page.locator(f'#job [data-progress="{job.id}"]')
    lines = page.locator("#job-log [data-log-lines] > span")

    expect(bar).to_have_attribute("value", "25")  # waits at the end of phase 1
    expect(lines.last).to_have_text("line 300 of 1200")
    expect(lines).to_have_count(301)
    expect(lines.first).to_contain_text("https://bob:****@db.example/x password=****alue")

    # The jobs list shows the bar of the running job too.
    listing = page.context.new_page()
    listing.goto("/jobs/")
    row_bar = listing.locator(f'tr[data-job="{job.id}"] [data-progress="{job.id}"]')
    expect(row_bar).to_have_attribute("value", "25")

    (tmp_path / "1").touch()
    expect(bar).to_have_attribute("value", "50")
    expect(lines.last).to_have_text("line 600 of 1200")
    expect(row_bar).to_have_attribute("value", "50")  # moved in place in the list
    expect(page.locator(f'[data-progress-text="{job.id}"]')).to_have_text("50 % · line 600 of 1200")
    listing.close()

    (tmp_path / "2").touch()
    expect(lines.last).to_have_text("line 900 of 1200")
    (tmp_path / "3").touch()
    expect(page.locator('#job [data-field="status"]')).to_have_text("succeeded")
    expect(lines.last).to_have_text("done; token=****alue")
    # 1,202 lines logged; the stored log and the page keep the last 1,000.
    expect(lines).to_have_count(1000)
    expect(lines.first).to_have_text("line 202 of 1200")
    expect(page.locator("[data-log-dropped]")).to_contain_text("202 earlier lines dropped")
    expect(page.locator(f'#job [data-progress="{job.id}"]')).to_have_attribute("value", "100")
    assert page.evaluate("window.sameDocument") is True
    assert SECRET not in page.content()
    assert JobLog.objects.using(site.alias).filter(job_id=job.id).count() == 1000
    shot(page, site, "job-log")
