"""Schedules and templates through the API: secrets masked in what it answers, and a PATCH
that sends the masks back unchanged keeps the stored secrets; a new value replaces them."""

from __future__ import annotations

import pytest

from jobline.models import Job, Schedule, Template
from jobline.redact import HIDDEN
from tests.web.test_secrets import API_KEY, KAFKA, KEY, NEW_KEY

RESOURCES = [
    ("/schedules", Schedule, {"name": "scan", "rule": "@daily"}, "title"),
    ("/templates", Template, {"name": "scan"}, "label"),
]


@pytest.mark.parametrize(("path", "model", "fields", "other"), RESOURCES)
def test_kafka_configs_key__masked_kept_on_patch_of_another_field_replaced_when_sent(
    api, path, model, fields, other
):
    made = api.post(path, {**fields, "job_type": "kafka", "inputs": KAFKA})
    assert made.status_code == 201, made.json()
    assert KEY not in made.content.decode()
    url = f"{path}/{made.json()['id']}"
    assert KEY not in api.get(url).content.decode() and KEY not in api.get(path).content.decode()
    shown = api.get(url).json()["inputs"]
    assert shown["configs"] == {"id": "v1", "google_api_key": "****WXYZ"}

    # A client reads, changes another field and sends the whole thing back.
    r = api.patch(url, {other: "edited", "inputs": shown})
    assert r.status_code == 200, r.json()
    assert KEY not in r.content.decode()
    stored = model.objects.get(pk=made.json()["id"])
    assert getattr(stored, other) == "edited" and stored.inputs == KAFKA

    typed = {**shown, "configs": {**shown["configs"], "google_api_key": NEW_KEY}}
    r = api.patch(url, {"inputs": typed})
    assert r.status_code == 200, r.json()
    assert r.json()["inputs"]["configs"]["google_api_key"] == "****9999"
    stored.refresh_from_db()
    assert stored.inputs["configs"]["google_api_key"] == NEW_KEY


@pytest.mark.parametrize(("path", "model", "fields", "other"), RESOURCES)
def test_secret_field__hidden_and_kept_on_patch(api, path, model, fields, other):
    inputs = {"title": "Q3 plan", "api_key": API_KEY}
    made = api.post(path, {**fields, "job_type": "report", "inputs": inputs})
    assert made.status_code == 201, made.json()
    url = f"{path}/{made.json()['id']}"
    shown = api.get(url).json()["inputs"]
    assert shown == {"title": "Q3 plan", "api_key": HIDDEN}
    r = api.patch(url, {"inputs": shown | {"title": "Q4 plan"}})
    assert r.status_code == 200, r.json()
    assert API_KEY not in r.content.decode()
    stored = model.objects.get(pk=made.json()["id"])
    assert stored.inputs == {"title": "Q4 plan", "api_key": API_KEY}
    api.patch(url, {"inputs": shown | {"api_key": "sk-typed-anew-0001"}})
    stored.refresh_from_db()
    assert stored.inputs["api_key"] == "sk-typed-anew-0001"


def test_template_run__a_mask_sent_back_runs_with_the_templates_secret(api):
    made = api.post("/templates", {"name": "scan", "job_type": "kafka", "inputs": KAFKA}).json()
    shown = api.get(f"/templates/{made['id']}").json()["inputs"]
    job = api.post(f"/templates/{made['id']}/run", {"inputs": shown})
    assert job.status_code == 201, job.json()
    assert KEY not in job.content.decode()
    assert Job.objects.get(pk=job.json()["id"]).inputs["configs"] == KAFKA["configs"]
