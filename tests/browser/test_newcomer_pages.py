"""New pages in a real browser: templates made and edited without the admin, a pipeline
started from its generated form, its graph drawn cleanly with long names."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

import jobline
from jobline.models import Job, PipelineDefinition, PipelineRun
from jobline.models.api import Template
from tests.browser.conftest import PASSWORD, shot
from tests.conftest import ALL_DATABASES

pytestmark = ALL_DATABASES
SQLITE = pytest.mark.parametrize("site", ["default"], indirect=True)

LONG_TYPE = "tests.example_app.jobs.NormalizeCustomerPostalAddresses"


@SQLITE
def test_make_and_edit_a_template_without_the_admin(page, site):
    page.goto("/templates/")
    page.click("text=New template")
    expect(page).to_have_url(re.compile(r"/templates/new/$"))
    page.select_option("#t-type", "report")  # the form follows the job type chosen
    expect(page.locator("#fields [data-path='title'] input")).to_be_visible()
    page.fill("#t-name", "weekly")
    page.fill("#t-label", "Weekly report")
    page.fill("#fields [data-path='pages'] input", "3")
    shot(page, site, "template-new")
    page.click("button:has-text('Save template')")
    expect(page).to_have_url(re.compile(r"/templates/$"))
    expect(page.locator(".toast").first).to_contain_text("Template Weekly report saved.")
    template = Template.objects.using(site.alias).get(name="weekly")
    assert (template.job_type, template.inputs["pages"]) == ("report", 3)

    page.click("a.btn:has-text('Edit')")
    expect(page.locator("#t-label")).to_have_value("Weekly report")
    page.fill("#t-name", "two words")  # refused by the browser, then named by the server
    page.fill("#t-label", "Weekly summary")
    page.click("button:has-text('Save template')")
    expect(page.locator("[data-path='settings.name'] .field-error")).to_be_visible()
    shot(page, site, "template-edit-error")
    page.fill("#t-name", "weekly")
    page.click("button:has-text('Save template')")
    expect(page).to_have_url(re.compile(r"/templates/$"))
    template.refresh_from_db(using=site.alias)
    assert template.label == "Weekly summary"


@SQLITE
def test_start_a_pipeline_from_its_form_and_its_graph_draws_long_names_cleanly(page, site):
    page.goto("/pipelines/new/")
    page.fill(
        "#p-definition",
        '{"name": "addresses", "steps": ['
        '{"name": "normalize_customer_addresses", "job_type": "' + LONG_TYPE + '",'
        ' "map": {"seconds": "input.seconds"}},'
        '{"name": "count_them", "job_type": "pl_add", "map": {"n": "input.n"},'
        ' "after": ["normalize_customer_addresses"]}]}',
    )
    shot(page, site, "pipeline-define")
    page.click("button:has-text('Save pipeline')")
    expect(page).to_have_url(re.compile(r"/pipelines/start/addresses/$"))
    assert PipelineDefinition.objects.using(site.alias).filter(name="addresses").exists()
    page.click("button:has-text('Start run')")  # n is required: the browser says so
    expect(page.locator("[data-path='n'] .field-error")).to_be_visible()
    page.fill("[data-path='n'] input", "4")
    page.fill("[data-path='seconds'] input", "0.2")
    shot(page, site, "pipeline-start")
    page.click("button:has-text('Start run')")
    expect(page).to_have_url(re.compile(r"/pipelines/\d+/$"))
    run = PipelineRun.objects.using(site.alias).get()
    expect(page.locator('[data-field="run-status"]')).to_have_text("succeeded")
    assert Job.objects.using(site.alias).filter(pipeline_run=run).count() == 2
    for step in ("normalize_customer_addresses", "count_them"):
        _assert_drawn_apart(page, step)
    shot(page, site, "pipeline-long-names")


@SQLITE
def test_on_a_phone_every_section_and_the_queue_actions_are_in_view(browser, site, admin):
    jobline.enqueue("add", {"a": 1}, queue="a-longer-queue-name", delay=3600, using=site.alias)
    context = browser.new_context(base_url=site.url, viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.goto("/login/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", PASSWORD)
    page.click("form.login button[type=submit]")
    page.wait_for_url("**/")
    for link in page.locator("nav.nav a").all():
        box = link.bounding_box()
        assert box and 0 <= box["x"] and box["x"] + box["width"] <= 390, link.inner_text()
    pause = page.locator('tr[data-queue="a-longer-queue-name"] button:has-text("Pause")')
    box = pause.bounding_box()
    assert box and box["x"] + box["width"] <= 390
    shot(page, site, "dashboard-phone-nav")
    context.close()


def _assert_drawn_apart(page, step: str) -> None:
    """The node's texts stay inside its box and none overlaps another."""
    boxes = page.locator(f'[data-step="{step}"]').evaluate(
        """g => [g.querySelector('rect'), ...g.querySelectorAll('text')].map(e => {
             const b = e.getBBox(); return [b.x, b.y, b.x + b.width, b.y + b.height]; })"""
    )
    rect, *texts = boxes
    for x1, y1, x2, y2 in texts:
        assert rect[0] <= x1 and x2 <= rect[2] and rect[1] <= y1 and y2 <= rect[3], (step, boxes)
    for i, a in enumerate(texts):
        for b in texts[i + 1 :]:
            apart = a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]
            assert apart, (step, a, b)
