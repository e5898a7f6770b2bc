"""New and edit template pages: the job type a choice, defaults checked as on the API."""

from __future__ import annotations

import json

import pytest

from jobline.models.api import Template
from tests.web.test_pages import embedded, flashes, post_json

SETTINGS = {"name": "weekly", "label": "Weekly report", "user_triggered": True, "enabled": True}


def test_new_template__pick_a_type_then_a_form_from_its_schema(ui):
    page = ui.get("/templates/new/").content.decode()
    assert '<option value="report"' in page and 'id="job-form"' not in page
    form = ui.get("/templates/new/?type=report").content.decode()
    schema = json.loads(embedded(form, "schema"))
    assert "title" in schema["properties"] and "required" not in schema  # defaults are partial
    assert 'data-type="report"' in form
    assert ui.get("/templates/new/?type=nope").content.decode().count('id="job-form"') == 0


def test_new_template__saved_with_partial_defaults(ui):
    made = post_json(
        ui,
        "/templates/new/",
        {"type": "report", "inputs": {"pages": 3}, "settings": {**SETTINGS, "priority": 5}},
    )
    assert made.status_code == 201, made.content
    template = Template.objects.get()
    assert (template.job_type, template.inputs, template.priority) == ("report", {"pages": 3}, 5)
    listing = ui.get(made.json()["url"])
    assert flashes(listing) == ["Template Weekly report saved."]
    assert f"/templates/{template.id}/edit/" in listing.content.decode()


@pytest.mark.parametrize(
    ("inputs", "field"),
    [
        ({"pages": "x"}, "pages"),
        ({"paegs": 3}, "paegs"),
        ({"layout": {"columns": 9}}, "layout.columns"),
    ],
)
def test_new_template__bad_defaults_refused_by_their_field(ui, inputs, field):
    bad = post_json(
        ui, "/templates/new/", {"type": "report", "inputs": inputs, "settings": SETTINGS}
    )
    assert bad.status_code == 422
    assert [e["field"] for e in bad.json()["errors"]] == [field]
    assert not Template.objects.exists()


def test_new_template__options_and_type_errors(ui):
    taken = Template.objects.create(name="weekly", job_type="report")
    again = post_json(ui, "/templates/new/", {"type": "report", "inputs": {}, "settings": SETTINGS})
    assert [e["field"] for e in again.json()["errors"]] == ["settings.name"]
    bad = {**SETTINGS, "name": "two words", "priority": 500}
    fields = post_json(ui, "/templates/new/", {"type": "report", "inputs": {}, "settings": bad})
    assert sorted(e["field"] for e in fields.json()["errors"]) == [
        "settings.name",
        "settings.priority",
    ]
    unknown = post_json(ui, "/templates/new/", {"type": "nope", "inputs": {}, "settings": SETTINGS})
    assert unknown.status_code == 422 and "report" in unknown.json()["errors"][0]["message"]
    assert list(Template.objects.all()) == [taken]


def test_edit_template__shows_secrets_masked_and_keeps_them(ui):
    template = Template.objects.create(
        name="keyed", job_type="report", inputs={"title": "Keyed", "api_key": "s3cret"}
    )
    form = ui.get(f"/templates/{template.id}/edit/").content.decode()
    initial = json.loads(embedded(form, "initial"))
    assert initial == {"title": "Keyed", "api_key": "••••••"} and "s3cret" not in form
    saved = post_json(
        ui,
        f"/templates/{template.id}/edit/",
        {"type": "report", "inputs": {**initial, "pages": 4}, "settings": {"name": "keyed"}},
    )
    assert saved.status_code == 201, saved.content
    template.refresh_from_db()
    assert template.inputs == {"title": "Keyed", "api_key": "s3cret", "pages": 4}
    assert (template.enabled, template.user_triggered) == (False, False)  # unchecked boxes


def test_template_pages__need_write_permission_to_save(viewer):
    assert viewer.get("/templates/").content.decode().count("/templates/new/") == 0
    refused = post_json(viewer, "/templates/new/", {"type": "report", "settings": SETTINGS})
    assert refused.status_code == 403


def test_templates_list__a_template_with_bad_defaults_is_not_ready(ui):
    Template.objects.create(name="stale", job_type="report", inputs={"pages": "many"})
    page = ui.get("/templates/").content.decode()
    assert "bad defaults" in page and "pages: Input should be a valid integer" in page
    assert "/jobs/new/?template=" not in page  # no start button until it is fixed
