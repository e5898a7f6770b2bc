"""A template's default inputs are checked when it is saved, in the API and the admin."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from jobline.models.api import Template


@pytest.mark.parametrize(
    ("inputs", "field"),
    [({"seconds": "x"}, "inputs.seconds"), ({"secnods": 1}, "inputs.secnods")],
)
def test_create__bad_defaults_refused_naming_the_input(api, inputs, field):
    r = api.post("/templates", {"name": "nap", "job_type": "sleep", "inputs": inputs})
    assert r.status_code == 422
    assert [e["field"] for e in r.json()["detail"]] == [field]
    assert not Template.objects.exists()


def test_create__partial_defaults_are_fine_and_own_schema_applies(api):
    ok = api.post("/templates", {"name": "r", "job_type": "report", "inputs": {"pages": 2}})
    assert ok.status_code == 201
    schema = {"type": "object", "properties": {"pages": {"type": "integer", "maximum": 5}}}
    bad = api.post(
        "/templates",
        {"name": "s", "job_type": "report", "inputs": {"pages": 9}, "inputs_schema": schema},
    )
    assert [e["field"] for e in bad.json()["detail"]] == ["inputs.pages"]


def test_patch__bad_defaults_refused_and_nothing_changes(api):
    template = Template.objects.create(name="nap", job_type="sleep", inputs={"seconds": 1})
    r = api.patch(f"/templates/{template.id}", {"inputs": {"seconds": "x"}})
    assert r.status_code == 422
    template.refresh_from_db()
    assert template.inputs == {"seconds": 1}


def test_admin__bad_defaults_shown_on_the_inputs_and_job_type_is_a_choice(db, client):
    client.force_login(User.objects.create_superuser("root", password="pw"))
    form = client.get("/admin/jobline/template/add/").content.decode()
    assert '<select name="job_type"' in form and '<option value="sleep">' in form
    r = client.post(
        "/admin/jobline/template/add/",
        {"name": "nap", "job_type": "sleep", "inputs": '{"seconds": "x"}', "enabled": "on"},
    )
    assert r.status_code == 200  # the form again, with the error
    assert "seconds: Input should be a valid number" in r.content.decode()
    assert not Template.objects.exists()
