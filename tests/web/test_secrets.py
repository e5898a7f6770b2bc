"""Secrets in edit forms (schedules, templates, "run again") and the admin: shown masked,
kept when the mask comes back unchanged, replaced when a new value is typed."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import pytest
from django.test import Client

import jobline
from jobline.models import Job, Schedule
from jobline.models.api import Template
from jobline.redact import HIDDEN, masked_inputs, unmasked
from tests.web.test_pages import embedded, post_json

KEY = "AIzaSyD-example-not-a-real-key-0000WXYZ"
NEW_KEY = "AIzaSyD-another-made-up-key-000009999"
KAFKA = {
    "title": "scan",
    "job_type": "youtube_scraper",
    "configs": {"id": "v1", "google_api_key": KEY},
}
API_KEY = "sk-report-key-made-up-7777"
REPORT = {"title": "Q3 plan", "api_key": API_KEY}


def _schedule(job_type: str, inputs: dict) -> Schedule:
    schedule = Schedule(name=f"{job_type}-nightly", job_type=job_type, inputs=inputs, rule="@daily")
    schedule.full_clean(exclude=["last_job"])
    schedule.save()
    return schedule


def _values(schedule: Schedule, **changes) -> dict:
    """The schedule form's fields as ``form.js`` posts them."""
    values = {
        "name": schedule.name,
        "title": schedule.title,
        "kind": schedule.kind,
        "rule": schedule.rule,
        "timezone": schedule.timezone,
        "start_at": "",
        "end_at": "",
        "max_runs": None,
        "misfire_policy": schedule.misfire_policy,
        "misfire_grace": schedule.misfire_grace,
        "catch_up": schedule.catch_up,
        "reschedule_after_finish": False,
        "is_active": True,
        "queue": "",
        "priority": None,
    }
    return values | changes


def _edit(ui: Client, schedule: Schedule, inputs: dict, **changes):
    body = {"inputs": inputs, "schedule": _values(schedule, **changes)}
    r = post_json(ui, f"/schedules/{schedule.pk}/edit/", body)
    assert r.status_code == 201, r.json()
    schedule.refresh_from_db()
    return schedule


def test_the_rule__an_unchanged_mask_is_the_stored_value_anything_else_replaces_it(db):
    stored = {"configs": {"google_api_key": KEY, "token": "short", "list": [{"password": KEY}]}}
    shown = masked_inputs("kafka", stored)
    assert shown == {
        "configs": {
            "google_api_key": "****WXYZ",
            "token": "****",
            "list": [{"password": "****WXYZ"}],
        }
    }
    assert unmasked("kafka", shown, stored) == stored
    typed = json.loads(json.dumps(shown))
    typed["configs"]["google_api_key"] = NEW_KEY
    typed["configs"]["extra"] = "****WXYZ"  # a mask where nothing was stored stays as typed
    assert unmasked("kafka", typed, stored)["configs"] == {
        **stored["configs"],
        "google_api_key": NEW_KEY,
        "extra": "****WXYZ",
    }
    assert unmasked("report", {"api_key": HIDDEN}, REPORT) == {"api_key": API_KEY}
    assert unmasked("report", {"api_key": "typed"}, REPORT) == {"api_key": "typed"}
    # A template's own inputs schema may mark more fields secret.
    schema = {"type": "object", "properties": {"title": {"type": "string", "writeOnly": True}}}
    assert masked_inputs("kafka", KAFKA, schema)["title"] == HIDDEN
    assert masked_inputs("kafka", KAFKA, schema)["configs"]["google_api_key"] == "****WXYZ"
    assert unmasked("kafka", masked_inputs("kafka", KAFKA, schema), KAFKA, schema) == KAFKA


def test_secret_str_inputs_are_stored_in_full_for_the_job_to_run_with(db):
    job = jobline.enqueue("report", REPORT)
    assert Job.objects.get(pk=job.id).inputs["api_key"] == API_KEY


def test_schedule_form__kafka_configs_key_masked_kept_on_edit_replaced_when_typed(ui):
    schedule = _schedule("kafka", KAFKA)
    page = ui.get(f"/schedules/{schedule.pk}/edit/").content.decode()
    assert KEY not in page
    initial = json.loads(embedded(page, "initial"))
    assert initial["configs"] == {"id": "v1", "google_api_key": "****WXYZ"}

    schedule = _edit(ui, schedule, initial, title="Nightly scan")
    assert schedule.title == "Nightly scan"
    assert schedule.inputs["configs"] == KAFKA["configs"]  # the real key, not its mask

    initial["configs"]["google_api_key"] = NEW_KEY
    schedule = _edit(ui, schedule, initial)
    assert schedule.inputs["configs"]["google_api_key"] == NEW_KEY
    assert NEW_KEY not in ui.get(f"/schedules/{schedule.pk}/").content.decode()
    assert NEW_KEY not in ui.get(f"/schedules/{schedule.pk}/edit/").content.decode()


def test_schedule_form__secret_field_hidden_kept_on_edit_replaced_when_typed(ui):
    schedule = _schedule("report", REPORT)
    page = ui.get(f"/schedules/{schedule.pk}/edit/").content.decode()
    assert API_KEY not in page
    initial = json.loads(embedded(page, "initial"))
    assert initial == {"title": "Q3 plan", "api_key": HIDDEN}

    schedule = _edit(ui, schedule, initial | {"title": "Q4 plan"})
    assert (schedule.inputs["title"], schedule.inputs["api_key"]) == ("Q4 plan", API_KEY)

    schedule = _edit(ui, schedule, initial | {"api_key": "sk-typed-anew-0001"})
    assert schedule.inputs["api_key"] == "sk-typed-anew-0001"


def test_run_again__masked_in_the_form_the_original_secret_when_left_unchanged(ui):
    source = jobline.enqueue("kafka", KAFKA)
    page = ui.get(f"/jobs/new/?type=kafka&from={source.id}").content.decode()
    assert KEY not in page and f'data-from="{source.id}"' in page
    initial = json.loads(embedded(page, "initial"))
    assert initial["configs"]["google_api_key"] == "****WXYZ"

    def run(inputs: dict, **body) -> dict:
        r = post_json(ui, "/jobs/new/", {"type": "kafka", "inputs": inputs, **body})
        assert r.status_code == 201, r.json()
        return Job.objects.get(pk=r.json()["id"]).inputs

    assert run(initial, **{"from": source.id})["configs"] == KAFKA["configs"]
    typed = json.loads(json.dumps(initial))
    typed["configs"]["google_api_key"] = NEW_KEY
    assert run(typed, **{"from": source.id})["configs"]["google_api_key"] == NEW_KEY
    # Without the job it came from, a mask is only what was typed.
    assert run(initial)["configs"]["google_api_key"] == "****WXYZ"
    # Only a job of the same type lends its secrets.
    other = jobline.enqueue("report", REPORT)
    assert run(initial, **{"from": other.id})["configs"]["google_api_key"] == "****WXYZ"


def test_run_again__secret_field(ui):
    source = jobline.enqueue("report", REPORT)
    page = ui.get(f"/jobs/new/?type=report&from={source.id}").content.decode()
    assert API_KEY not in page
    initial = json.loads(embedded(page, "initial"))
    body = {"type": "report", "from": source.id, "inputs": initial | {"title": "Q3 again"}}
    r = post_json(ui, "/jobs/new/", body)
    assert r.status_code == 201, r.json()
    job = Job.objects.get(pk=r.json()["id"])
    assert (job.inputs["title"], job.inputs["api_key"]) == ("Q3 again", API_KEY)


def test_templates__list_and_run_form_masked_an_unchanged_mask_runs_with_the_secret(ui):
    template = Template.objects.create(name="scan", job_type="kafka", inputs=KAFKA)
    listed = ui.get("/templates/").content.decode()
    assert "scan" in listed and KEY not in listed
    page = ui.get(f"/jobs/new/?template={template.pk}").content.decode()
    assert KEY not in page
    initial = json.loads(embedded(page, "initial"))
    assert initial["configs"]["google_api_key"] == "****WXYZ"
    r = post_json(ui, "/jobs/new/", {"template": template.pk, "inputs": initial})
    assert r.status_code == 201, r.json()
    assert Job.objects.get(pk=r.json()["id"]).inputs["configs"] == KAFKA["configs"]
    initial["configs"]["google_api_key"] = NEW_KEY
    r = post_json(ui, "/jobs/new/", {"template": template.pk, "inputs": initial})
    assert Job.objects.get(pk=r.json()["id"]).inputs["configs"]["google_api_key"] == NEW_KEY
    template.refresh_from_db()
    assert template.inputs == KAFKA  # starting a job never changes the template


class _FormFields(HTMLParser):
    """The values a browser would submit for the admin's change form."""

    def __init__(self) -> None:
        super().__init__()
        self.data: dict[str, str] = {}
        self._textarea: str | None = None
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        name = a.get("name")
        if tag == "input" and name and a.get("type") not in ("submit", "button", "file"):
            if a.get("type") in ("checkbox", "radio"):
                if "checked" in a:
                    self.data[name] = a.get("value") or "on"
            else:
                self.data[name] = a.get("value") or ""
        elif tag == "textarea" and name:
            self._textarea = name
            self.data[name] = ""
        elif tag == "select" and name:
            self._select = name
        elif tag == "option" and self._select:
            if "selected" in a or self._select not in self.data:
                self.data[self._select] = a.get("value") or ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "textarea":
            self._textarea = None
        elif tag == "select":
            self._select = None

    def handle_data(self, data: str) -> None:
        if self._textarea:
            self.data[self._textarea] += data


def _admin_form(client: Client, url: str) -> tuple[str, dict[str, str]]:
    page = client.get(url).content.decode()
    parser = _FormFields()
    parser.feed(page)
    parser.data.pop("q", None)  # the admin's search box, outside the form
    return page, parser.data


def _admin_save(client: Client, url: str, data: dict[str, str]) -> None:
    r = client.post(url, {**data, "_save": "Save"})
    assert r.status_code == 302, r.content.decode()[:3000]


@pytest.mark.parametrize(
    ("model", "make"),
    [
        ("schedule", lambda: _schedule("kafka", KAFKA)),
        ("template", lambda: Template.objects.create(name="scan", job_type="kafka", inputs=KAFKA)),
    ],
)
def test_admin__inputs_masked_kept_when_another_field_changes_replaced_when_typed(
    admin_client, model, make
):
    obj = make()
    url = f"/admin/jobline/{model}/{obj.pk}/change/"
    page, data = _admin_form(admin_client, url)
    assert KEY not in page and "****WXYZ" in page
    assert json.loads(data["inputs"])["configs"]["google_api_key"] == "****WXYZ"

    title = "title" if model == "schedule" else "label"
    _admin_save(admin_client, url, data | {title: "Edited in the admin"})
    obj.refresh_from_db()
    assert getattr(obj, title) == "Edited in the admin"
    assert obj.inputs["configs"]["google_api_key"] == KEY

    typed = json.loads(data["inputs"])
    typed["configs"]["google_api_key"] = NEW_KEY
    _admin_save(admin_client, url, data | {"inputs": json.dumps(typed)})
    obj.refresh_from_db()
    assert obj.inputs["configs"] == {"id": "v1", "google_api_key": NEW_KEY}
    assert NEW_KEY not in admin_client.get(url).content.decode()


def test_admin__schedule_secret_field_hidden_and_kept(admin_client):
    schedule = _schedule("report", REPORT)
    url = f"/admin/jobline/schedule/{schedule.pk}/change/"
    page, data = _admin_form(admin_client, url)
    assert API_KEY not in page
    assert json.loads(data["inputs"])["api_key"] == HIDDEN
    _admin_save(admin_client, url, data | {"queue": "reports"})
    schedule.refresh_from_db()
    assert (schedule.queue, schedule.inputs["api_key"]) == ("reports", API_KEY)
