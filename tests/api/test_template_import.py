"""``jobline import-templates``: RestJobScheduler's job_templates.json into templates."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from jobline.api.template_import import TemplateFileError, convert
from jobline.cli.main import main
from jobline.models import Schedule
from jobline.models.api import Template

# The shape of RestJobScheduler's job-scheduler-server/job_templates.json, plus two templates
# for job types defined here (add, from tests/example_app; sleep, built in).
SAMPLE = {
    "birthday_notification_job": {
        "type": "birthday_notification_job",
        "startInSeconds": 10,
        "userTriggered": False,
        "rescheduleAfterTermination": True,
        "payload_schema": {"profiles": {"type": "uint", "range": [0, 1000]}},
        "payload": {"profiles": 1000},
    },
    "profile_archive_generator_job": {
        "type": "profile_archive_generator_job",
        "startInSeconds": 3,
        "userTriggered": True,
        "rescheduleAfterTermination": False,
        "payload_schema": {
            "user_id": {
                "type": "uint",
                "minValue": 0,
                "maxValue": None,
                "required": True,
                "label": "User Id",
            },
            "filter": {
                "type": "options",
                "options": ["location_history", "likes"],
                "required": True,
                "label": "Filters",
            },
            "job_type": None,
        },
        "payload": {"user_id": 0, "filter": ["location_history", "activity"], "job_type": ""},
    },
    "otp_send_job": {
        "type": "otp_send_job",
        "startInSeconds": 1,
        "userTriggered": True,
        "rescheduleAfterTermination": False,
        "payload_schema": {
            "user_id": {"type": "uint", "minValue": 0, "maxValue": None, "required": True},
            "job_type": None,
        },
        "payload": {"user_id": 0, "job_type": ""},
    },
    "add": {
        "type": "add",
        "startInSeconds": 0,
        "userTriggered": True,
        "rescheduleAfterTermination": False,
        "payload_schema": {
            "a": {"type": "uint", "minValue": 1, "maxValue": 10, "required": True},
            "b": {"type": "uint", "range": [0, None]},
        },
        "payload": {"a": 2, "b": 3},
    },
    "nap": {
        "type": "sleep",
        "startInSeconds": 5,
        "userTriggered": True,
        "rescheduleAfterTermination": True,
        "payload_schema": {"seconds": {"type": "options", "options": [0, 1, 2]}},
        "payload": {"seconds": 0},
    },
}


def _valid(schema: dict, payload: dict) -> bool:
    return jsonschema.Draft202012Validator(schema).is_valid(payload)


def test_convert__schemas_accept_the_sample_payloads_and_reject_out_of_range():
    templates, _ = convert(SAMPLE)
    by_name = {t["name"]: t for t in templates}
    for name, raw in SAMPLE.items():  # every template accepts its own payload
        assert _valid(by_name[name]["inputs_schema"], raw["payload"])
    birthday = by_name["birthday_notification_job"]["inputs_schema"]
    assert _valid(birthday, {"profiles": 0}) and _valid(birthday, {"profiles": 1000})
    assert not _valid(birthday, {"profiles": 1001}) and not _valid(birthday, {"profiles": -1})
    assert not _valid(birthday, {"profiles": "many"})
    archive = by_name["profile_archive_generator_job"]["inputs_schema"]
    assert _valid(archive, {"user_id": 7, "filter": ["likes"], "job_type": "x"})
    assert not _valid(archive, {"user_id": -1, "filter": ["likes"]})
    assert not _valid(archive, {"user_id": 1, "filter": ["passwords"]})
    assert not _valid(archive, {"filter": ["likes"]})  # user_id is required
    assert not _valid(archive, {"user_id": 1, "filter": ["likes"], "surprise": 1})
    assert archive["properties"]["user_id"]["title"] == "User Id"
    nap = by_name["nap"]["inputs_schema"]
    assert _valid(nap, {"seconds": 2}) and not _valid(nap, {"seconds": 3})


def test_convert__fields_and_warnings():
    templates, warnings = convert(SAMPLE)
    by_name = {t["name"]: t for t in templates}
    otp = by_name["otp_send_job"]
    assert (otp["job_type"], otp["delay"], otp["user_triggered"]) == ("otp_send_job", 1.0, True)
    assert otp["inputs"] == {"user_id": 0, "job_type": ""} and otp["label"] == "Otp send job"
    assert not otp["enabled"] and by_name["add"]["enabled"] and by_name["nap"]["enabled"]
    assert by_name["nap"]["job_type"] == "sleep"
    text = "\n".join(warnings)
    for missing in ("birthday_notification_job", "profile_archive_generator_job", "otp_send_job"):
        assert f"job type {missing!r} has no handler here; imported disabled" in text
    assert "'activity'" in text and "added to them" in text
    assert "rescheduleAfterTermination" in text


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ([1], "each template is an object"),
        ("templates", "an object of templates"),
        ({"a": {"type": "add", "payload_schema": {"x": {"type": "color"}}}}, "unknown field"),
        (
            {"a": {"type": "add", "payload_schema": {"x": {"type": "uint", "range": [5, 1]}}}},
            "below",
        ),
        ({"a": {"type": "add", "payload_schema": {"x": {"type": "options"}}}}, "non-empty list"),
        ({"a": {"type": "add", "payload_schema": {"x": 3}}}, "object or null"),
        ({"a": {"type": "add", "startInSeconds": "soon"}}, "startInSeconds"),
        ({"a": {"type": "add", "payload": [1]}}, "must be objects"),
        ({"a": {"type": ""}}, "type must be"),
        ({"A": {"type": "add"}, "a": {"type": "add"}}, "two templates are named a"),
    ],
)
def test_convert__errors_name_the_template_and_problem(data, problem):
    with pytest.raises(TemplateFileError, match=problem):
        convert(data)


def test_import_command__creates_then_updates(db, tmp_path: Path, capsys):
    path = tmp_path / "job_templates.json"
    path.write_text(json.dumps(SAMPLE))
    assert main(["import-templates", str(path)], django_ready=True) == 0
    out = capsys.readouterr()
    assert "Imported 5 new and 0 updated templates" in out.out
    assert "warning: template 'otp_send_job': job type 'otp_send_job' has no handler" in out.err
    assert Template.objects.count() == 5
    assert set(Template.objects.filter(enabled=True).values_list("name", flat=True)) == {
        "add",
        "nap",
    }
    nap = Template.objects.get(name="nap")  # rescheduleAfterTermination: a schedule
    assert (nap.schedule.name, nap.schedule.kind, nap.schedule.job_type) == (
        "template:nap",
        "interval",
        "sleep",
    )
    assert nap.schedule.reschedule_after_finish and nap.schedule.inputs == {"seconds": 0}
    assert Template.objects.filter(schedule__isnull=False).count() == 1
    changed = {"add": {**SAMPLE["add"], "payload": {"a": 9, "b": 0}}}
    path.write_text(json.dumps(changed))
    assert main(["import-templates", str(path)], django_ready=True) == 0
    assert "0 new and 1 updated" in capsys.readouterr().out
    assert Template.objects.get(name="add").inputs == {"a": 9, "b": 0}
    path.write_text(json.dumps(SAMPLE))
    assert main(["import-templates", str(path)], django_ready=True) == 0
    assert Schedule.objects.count() == 1  # the same schedule, updated in place


def test_import_command__a_bad_file_imports_nothing(db, tmp_path: Path, capsys):
    path = tmp_path / "job_templates.json"
    broken = {**SAMPLE, "zzz": {"type": "add", "payload_schema": {"x": {"type": "color"}}}}
    for content in (json.dumps(broken), "{not json", ""):
        path.write_text(content)
        assert main(["import-templates", str(path)], django_ready=True) == 2
        assert capsys.readouterr().err.startswith("jobline import-templates: ")
    assert main(["import-templates", str(tmp_path / "missing.json")], django_ready=True) == 2
    assert "cannot read" in capsys.readouterr().err
    assert not Template.objects.exists()


def test_imported_template_runs_through_the_api(api, tmp_path: Path):
    path = tmp_path / "job_templates.json"
    path.write_text(json.dumps(SAMPLE))
    main(["import-templates", str(path)], django_ready=True)
    add = Template.objects.get(name="add")
    r = api.post(f"/templates/{add.id}/run", {"inputs": {"a": 4}})
    assert r.status_code == 201 and r.json()["inputs"] == {"a": 4, "b": 3}
    r = api.post(f"/templates/{add.id}/run", {"inputs": {"a": 11}})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "inputs.a"
    otp = Template.objects.get(name="otp_send_job")
    assert api.post(f"/templates/{otp.id}/run", {}).status_code == 409  # disabled
