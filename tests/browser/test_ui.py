"""The web UI in a real browser: sign in, forms, live updates, actions, graphs, screenshots."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

import jobline
from jobline.models import Job, Schedule
from jobline.models.api import Template
from jobline.pipelines import define, get_pipeline
from jobline.services import actions
from tests.browser.conftest import PASSWORD, shot
from tests.conftest import ALL_DATABASES

pytestmark = ALL_DATABASES
BOTH = pytest.mark.parametrize("site", ["default", "postgres"], indirect=True)
SQLITE = pytest.mark.parametrize("site", ["default"], indirect=True)


def badge(page):
    return page.locator('#job [data-field="status"]')


def confirm(page, text: str) -> None:
    """Accept the confirmation dialog after checking what it says."""
    dialog = page.locator("dialog#confirm")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text(text)
    dialog.locator("#confirm-ok").click()


@BOTH
def test_sign_in_and_the_dashboard(browser, site, admin):
    context = browser.new_context(base_url=site.url, viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.goto("/jobs/")
    assert "/login/?next=/jobs/" in page.url
    shot(page, site, "login")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "wrong")
    page.click("form.login button[type=submit]")
    expect(page.locator(".form-error")).to_contain_text("correct username and password")
    page.fill("#id_password", PASSWORD)
    page.click("form.login button[type=submit]")
    page.wait_for_url("**/jobs/")
    page.goto("/")
    expect(page.locator("#live")).to_have_class(re.compile(r"\bon\b"))
    expect(page.locator('[data-stat="workers"]')).to_have_text("1", timeout=10_000)
    assert page.locator(".chart svg").count() == 3
    jobline.enqueue_many("add", [{"a": i} for i in range(5)], using=site.alias)
    # The totals follow without a reload: the events refresh the dashboard.
    expect(page.locator('[data-stat="succeeded"]')).to_have_text("5", timeout=10_000)
    shot(page, site, "dashboard")
    context.close()
    looks = [("dark", 1280, 860, "dashboard-dark"), ("light", 390, 844, "dashboard-phone")]
    for scheme, width, height, name in looks:
        context = browser.new_context(
            base_url=site.url, color_scheme=scheme, viewport={"width": width, "height": height}
        )
        page = context.new_page()
        page.goto("/login/")
        page.fill("#id_username", "admin")
        page.fill("#id_password", PASSWORD)
        page.click("form.login button[type=submit]")
        page.wait_for_url("**/")
        expect(page.locator(".chart svg").first).to_be_visible()
        shot(page, site, name)
        context.close()


@BOTH
def test_create_a_job_from_its_generated_form_and_watch_it_run(page, site):
    page.goto("/jobs/new/")
    shot(page, site, "new-job")
    page.fill("#pick-filter", "repo")
    page.click("a.pick:has-text('report')")
    form = page.locator("#job-form")
    expect(form.locator('[data-path="title"] .req')).to_be_visible()
    assert form.locator('[data-path="format"] select option').all_inner_texts() == [
        "pdf",
        "html",
        "csv",
    ]
    expect(form.locator('[data-path="api_key"] input')).to_have_attribute("type", "password")
    # Checked in the browser first: a required title, and pages within their limits.
    form.locator('[data-path="pages"] input').fill("0")
    form.locator("button[type=submit]").click()
    expect(form.locator('[data-path="title"] .field-error')).to_have_text("This field is required.")
    expect(form.locator('[data-path="pages"] .field-error')).to_have_text("Must be at least 1.")
    # The server's own rules: "untitled" passes the schema but not the job's validator.
    form.locator('[data-path="title"] input').fill("untitled")
    form.locator('[data-path="pages"] input').fill("12")
    form.locator("button[type=submit]").click()
    error = form.locator('[data-path="title"] .field-error')
    expect(error).to_contain_text("give the report a real title")
    shot(page, site, "new-job-error")
    form.locator('[data-path="title"] input').fill("Quarterly numbers")
    expect(error).to_have_count(0)  # cleared as the field changes
    form.locator('[data-path="format"] select').select_option("html")
    form.locator('[data-path="recipients"] button:has-text("Add")').click()
    form.locator('[data-path="recipients.0"] input').fill("ops@example.com")
    form.locator('[data-path="layout.columns"] input').fill("2")
    form.locator('[data-path="api_key"] input').fill("s3cret")
    form.locator('[data-path="seconds"] input').fill("1.5")
    form.locator("button[type=submit]").click()
    page.wait_for_url(re.compile(r"/jobs/\d+/$"))
    job = Job.objects.using(site.alias).get(pk=int(page.url.rstrip("/").rsplit("/", 1)[1]))
    assert job.inputs["title"] == "Quarterly numbers" and job.inputs["layout"]["columns"] == 2
    assert job.inputs["recipients"] == ["ops@example.com"] and job.inputs["format"] == "html"
    page.evaluate("window.notReloaded = true")
    expect(badge(page)).to_have_text("running", timeout=10_000)
    expect(badge(page)).to_have_text("succeeded", timeout=10_000)
    expect(page.locator("#job")).to_contain_text('"format": "html"')  # the outputs
    expect(page.locator(".toast").last).to_contain_text(f"Job {job.id} succeeded")
    assert page.evaluate("window.notReloaded")
    assert "s3cret" not in page.content()
    shot(page, site, "job")


@BOTH
def test_terminate_a_running_job(page, site):
    job = jobline.enqueue("slow", {"seconds": 60}, using=site.alias)
    page.goto(f"/jobs/{job.id}/")
    expect(badge(page)).to_have_text("running", timeout=10_000)
    page.click("button:has-text('Terminate')")
    confirm(page, f"Terminate job {job.id} (slow)?")
    expect(page.locator(".toast").first).to_contain_text(f"Job {job.id} is being stopped")
    expect(badge(page)).to_have_text("cancelled", timeout=10_000)
    expect(page.locator(".timeline")).to_contain_text("Cancelled")


@SQLITE
def test_retry_a_failed_job(page, site):
    now = timezone.now()
    job = Job.objects.using(site.alias).create(
        type="add",
        inputs={"a": 41},
        status="failed",
        attempts=3,
        error="RuntimeError: the database was down",
        run_at=now,
        created_at=now,
        started_at=now,
        finished_at=now,
    )
    page.goto(f"/jobs/{job.id}/")
    expect(page.locator(".error-card")).to_contain_text("the database was down")
    page.click("button:has-text('Retry')")
    expect(page.locator(".toast").first).to_contain_text(f"Job {job.id} is queued again")
    expect(badge(page)).to_have_text("succeeded", timeout=10_000)
    expect(page.locator("#job")).to_contain_text("42")
    expect(page.locator(".error-card")).to_have_count(0)


@SQLITE
def test_jobs_list_filters_pages_and_live_rows(page, site):
    now = timezone.now()
    rows = [
        Job(
            type="sync_add" if i % 4 == 0 else "add",
            inputs={"a": i},
            status="failed" if i % 10 == 0 else "succeeded",
            attempts=1,
            error="ValueError: nope" if i % 10 == 0 else "",
            run_at=now - timedelta(minutes=i),
            created_at=now - timedelta(minutes=i),
            started_at=now - timedelta(minutes=i),
            finished_at=now - timedelta(minutes=i),
        )
        for i in range(60)
    ]
    Job.objects.using(site.alias).bulk_create(rows)
    page.goto("/jobs/")
    jobs = page.locator("#jobs tbody tr[data-job]")
    expect(jobs).to_have_count(50)
    page.click(".tabs label:has-text('Failed')")  # applies at once
    page.wait_for_url("**/jobs/?status=failed*")
    expect(jobs).to_have_count(6)
    expect(jobs.first).to_contain_text("ValueError: nope")
    page.select_option("select[name=type]", "sync_add")
    page.wait_for_url(re.compile(r"status=failed.*type=sync_add|type=sync_add.*status=failed"))
    expect(jobs).to_have_count(3)  # i = 0, 20, 40
    page.goto("/jobs/?limit=25")
    first_id = jobs.first.get_attribute("data-job")
    page.click(".list-head a:has-text('Older')")
    expect(jobs).to_have_count(25)
    page.click(".list-head a:has-text('Older')")
    expect(jobs).to_have_count(10)
    page.click(".list-head a:has-text('Newer')")
    page.click(".list-head a:has-text('Newer')")
    expect(jobs.first).to_have_attribute("data-job", first_id)
    page.click(".list-head a:has-text('Newest')")
    page.wait_for_url("**/jobs/?limit=25")
    shot(page, site, "jobs")
    # A new job shows up on the first page by itself, and its row follows its state.
    # It runs until terminated, so a busy host cannot make the page miss "running".
    fresh = jobline.enqueue("slow", {"seconds": 25}, using=site.alias)
    row = page.locator(f'#jobs tr[data-job="{fresh.id}"]')
    expect(row.locator('[data-field="status"]')).to_have_text("running", timeout=20_000)
    actions.cancel_jobs([fresh.id], using=site.alias)
    expect(row.locator('[data-field="status"]')).to_have_text("cancelled", timeout=20_000)
    page.fill("#q", str(fresh.id))
    page.press("#q", "Enter")
    page.wait_for_url(f"**/jobs/{fresh.id}/")


@BOTH
def test_bulk_terminate_what_the_filter_matches_and_pause_a_queue(page, site):
    later = jobline.enqueue_many(
        "add", [{"a": i} for i in range(4)], queue="later", delay=3600, using=site.alias
    )
    page.goto("/jobs/?queue=later")
    page.click("button:has-text('Terminate matching')")
    confirm(page, "Terminate 4 queued or running jobs matching this filter?")
    expect(page.locator(".toast").first).to_contain_text("Cancelled 4 jobs")
    statuses = page.locator("#jobs [data-field=status]")
    expect(statuses).to_have_text(["cancelled"] * 4)
    assert {j.id for j in later} == set(
        Job.objects.using(site.alias).filter(status="cancelled").values_list("id", flat=True)
    )
    page.goto("/")
    page.click("tr[data-queue=default] button:has-text('Pause')")
    confirm(page, "Pause queue default?")
    expect(page.locator("tr[data-queue=default] .badge")).to_have_text("paused")
    held = jobline.enqueue("add", {"a": 1}, using=site.alias)
    page.wait_for_timeout(1500)
    assert Job.objects.using(site.alias).get(pk=held.id).status == "queued"
    page.click("tr[data-queue=default] button:has-text('Resume')")
    expect(page.locator(".toast").first).to_contain_text("Queue default is running again")
    page.goto(f"/jobs/{held.id}/")
    expect(badge(page)).to_have_text("succeeded", timeout=10_000)


@SQLITE
def test_a_cron_schedule_with_its_next_runs_run_now_and_disabled(page, site):
    page.goto("/schedules/new/")
    page.click("a.pick:has-text('sleep')")
    page.fill("#s-name", "nightly-sleep")
    page.fill("#s-rule", "61 * * * *")
    preview = page.locator("#preview")
    expect(preview.locator(".field-error")).to_contain_text("not a valid cron rule")
    page.fill("#s-rule", "")
    page.type("#s-rule", "*/15 * * * *")
    expect(preview.locator(".runs li")).to_have_count(5)
    expect(preview.locator(".describe")).to_contain_text("(UTC)")
    page.fill("#s-tz", "Europe/Berlin")
    expect(preview.locator(".describe")).to_contain_text("Europe/Berlin")
    page.fill('[data-path="seconds"] input', "0.1")
    shot(page, site, "schedule-form")
    page.click("button:has-text('Save schedule')")
    page.wait_for_url(re.compile(r"/schedules/\d+/$"))
    expect(page.locator(".toast").first).to_contain_text("Schedule nightly-sleep saved")
    expect(page.locator(".runs li")).to_have_count(5)
    page.click("button:has-text('Run now')")
    expect(page.locator(".toast").first).to_contain_text("Started job")
    history = page.locator("table tr[data-job]")
    expect(history).to_have_count(1)
    expect(history.locator('[data-field="status"]')).to_have_text("succeeded", timeout=10_000)
    shot(page, site, "schedule")
    page.click("button:has-text('Disable')")
    confirm(page, "It fires no more until it is enabled again")
    expect(page.locator(".page-head .badge")).to_have_text("disabled")
    page.goto("/schedules/")
    expect(page.locator("table")).to_contain_text("nightly-sleep")
    shot(page, site, "schedules")


@SQLITE
def test_start_a_job_from_a_template(page, site):
    Template.objects.using(site.alias).create(
        name="weekly",
        label="Weekly report",
        job_type="report",
        inputs={"title": "Weekly numbers", "pages": 4},
    )
    page.goto("/templates/")
    shot(page, site, "templates")
    page.click("a:has-text('Start…')")
    expect(page.locator('[data-path="title"] input')).to_have_value("Weekly numbers")
    page.locator('[data-path="pages"] input').fill("6")
    page.click("#job-form button[type=submit]")
    page.wait_for_url(re.compile(r"/jobs/\d+/$"))
    expect(badge(page)).to_have_text("succeeded", timeout=10_000)
    job = Job.objects.using(site.alias).latest("id")
    assert (job.type, job.inputs["title"], job.inputs["pages"]) == ("report", "Weekly numbers", 6)


@SQLITE
def test_secrets_stay_masked_in_forms_and_are_kept_unless_typed_anew(page, site):
    api_key, google_key = "sk-browser-made-up-4242", "AIzaSyD-browser-made-up-key-0000WXYZ"
    schedule = Schedule.objects.using(site.alias).create(
        name="secret-report",
        job_type="report",
        inputs={"title": "Q3 plan", "api_key": api_key},
        rule="@daily",
        is_active=False,
    )
    page.goto(f"/schedules/{schedule.pk}/edit/")
    secret = page.locator('[data-path="api_key"] input')
    expect(secret).to_have_value("••••••")
    assert api_key not in page.content()
    page.fill("#s-title", "Quarterly")
    page.click("button:has-text('Save schedule')")
    page.wait_for_url(re.compile(r"/schedules/\d+/$"))
    schedule.refresh_from_db()
    assert (schedule.title, schedule.inputs["api_key"]) == ("Quarterly", api_key)
    page.goto(f"/schedules/{schedule.pk}/edit/")
    secret.fill("sk-typed-in-the-browser")
    page.click("button:has-text('Save schedule')")
    page.wait_for_url(re.compile(r"/schedules/\d+/$"))
    schedule.refresh_from_db()
    assert schedule.inputs["api_key"] == "sk-typed-in-the-browser"

    configs = {"id": "v1", "google_api_key": google_key}
    job = jobline.enqueue(
        "kafka", {"title": "scan", "job_type": "scraper", "configs": configs}, using=site.alias
    )
    page.goto(f"/jobs/new/?type=kafka&from={job.id}")
    shown = page.locator('[data-path="configs"] textarea')
    expect(shown).to_have_value(re.compile(r'"google_api_key": "\*\*\*\*WXYZ"'))
    assert google_key not in page.content()
    page.click("#job-form button[type=submit]")
    page.wait_for_url(re.compile(r"/jobs/\d+/$"))
    again = Job.objects.using(site.alias).latest("id")
    assert again.id != job.id and again.inputs["configs"] == configs
    assert google_key not in page.content()


@BOTH
def test_a_pipeline_run_graph_changes_colour_live_and_a_run_cancels(page, site):
    define(
        {
            "name": "ingest",
            "steps": [
                {"name": "fetch", "job_type": "sleep", "map": {"seconds": "input.seconds"}},
                {"name": "parse", "job_type": "sleep", "map": {"seconds": "fetch.slept"}},
                {"name": "thumbs", "job_type": "sleep", "map": {"seconds": "fetch.slept"}},
                {"name": "store", "job_type": "noop", "after": ["parse", "thumbs"]},
            ],
        },
        using=site.alias,
    )
    run = get_pipeline("ingest", using=site.alias).enqueue({"seconds": 1}, using=site.alias)
    page.goto(f"/pipelines/{run.id}/")
    node = page.locator
    expect(node('[data-step="store"]')).to_have_class(re.compile(r"\bn-waiting\b"))
    expect(node('[data-step="fetch"]')).to_have_class(re.compile(r"\bn-running\b"))
    page.evaluate("window.notReloaded = true")
    expect(node('[data-step="parse"]')).to_have_class(re.compile(r"\bn-running\b"))
    expect(node('[data-step="fetch"]')).to_have_class(re.compile(r"\bn-succeeded\b"))
    shot(page, site, "pipeline-running")
    expect(node('[data-step="store"]')).to_have_class(re.compile(r"\bn-succeeded\b"))
    expect(page.locator('[data-field="run-status"]')).to_have_text("succeeded")
    assert page.evaluate("window.notReloaded")
    shot(page, site, "pipeline")

    slow = get_pipeline("ingest", using=site.alias).enqueue({"seconds": 30}, using=site.alias)
    page.goto(f"/pipelines/{slow.id}/")
    expect(node('[data-step="fetch"]')).to_have_class(re.compile(r"\bn-running\b"))
    # One click event: live events still re-render the run's header, and a mouse press and
    # release that straddle a re-render land on two different buttons (no click at all).
    page.locator("button:has-text('Cancel run')").dispatch_event("click")
    confirm(page, f"Cancel run {slow.id} of ingest?")
    expect(page.locator('[data-field="run-status"]')).to_have_text("cancelled")
    expect(node('[data-step="fetch"]')).to_have_class(re.compile(r"\bn-cancelled\b"))
    expect(node('[data-step="store"]')).to_have_class(re.compile(r"\bn-cancelled\b"))
    page.goto("/pipelines/")
    expect(page.locator("tbody tr[data-run]")).to_have_count(2)
    shot(page, site, "pipelines")
