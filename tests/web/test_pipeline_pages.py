"""Pipelines from the UI: a definition's page with a run form from its inputs schema, and a
page that stores a definition."""

from __future__ import annotations

import json

import pytest

from jobline.models import Job, PipelineDefinition, PipelineRun
from jobline.pipelines import define
from jobline.web import graph
from tests.web.test_pages import embedded, flashes, post_json

LONG_TYPE = "tests.example_app.jobs.NormalizeCustomerPostalAddresses"
DEFINITION = {
    "name": "addresses",
    "steps": [
        {"name": "normalize", "job_type": LONG_TYPE, "map": {"seconds": "input.seconds"}},
        {"name": "count", "job_type": "pl_add", "map": {"n": "input.n"}, "after": ["normalize"]},
    ],
}


@pytest.fixture
def stored(db) -> PipelineDefinition:
    return define(DEFINITION)


def test_start_page__graph_and_form_from_the_inputs_schema(ui, stored):
    page = ui.get("/pipelines/start/addresses/").content.decode()
    schema = json.loads(embedded(page, "schema"))
    assert set(schema["properties"]) == {"seconds", "n"} and schema["required"] == ["n"]
    assert 'data-step="normalize"' in page and "…tomerPostalAddresses" in page
    assert "/pipelines/start/addresses/" in ui.get("/pipelines/").content.decode()


def test_start_run__201_to_the_run_page_and_bad_inputs_by_field(ui, stored):
    bad = post_json(ui, "/pipelines/start/addresses/", {"type": "addresses", "inputs": {}})
    assert bad.status_code == 422 and [e["field"] for e in bad.json()["errors"]] == ["n"]
    assert not PipelineRun.objects.exists()
    made = post_json(ui, "/pipelines/start/addresses/", {"inputs": {"n": 2, "seconds": 0}})
    assert made.status_code == 201
    run = PipelineRun.objects.get()
    assert made.json()["url"] == f"/pipelines/{run.id}/"
    assert Job.objects.get(pipeline_run=run).type == LONG_TYPE
    assert flashes(ui.get(made.json()["url"])) == [f"Run {run.id} of addresses started."]


def test_define_page__stores_a_definition_or_lists_its_problems(ui, db):
    assert "my-pipeline" in ui.get("/pipelines/new/").content.decode()  # an example to edit
    bad = {**DEFINITION, "steps": [{"name": "x", "job_type": "no_such_type"}]}
    refused = ui.post("/pipelines/new/", {"definition": json.dumps(bad)})
    assert refused.status_code == 422 and "no_such_type" in refused.content.decode()
    assert ui.post("/pipelines/new/", {"definition": "{nope"}).status_code == 422
    assert not PipelineDefinition.objects.exists()
    saved = ui.post("/pipelines/new/", {"definition": json.dumps(DEFINITION)})
    assert saved.status_code == 302 and saved.url == "/pipelines/start/addresses/"
    assert PipelineDefinition.objects.get().name == "addresses"


def test_pipeline_pages__readers_cannot_start_or_define(viewer, stored):
    assert 'id="job-form"' not in viewer.get("/pipelines/start/addresses/").content.decode()
    assert post_json(viewer, "/pipelines/start/addresses/", {"inputs": {"n": 1}}).status_code == 403
    assert viewer.post("/pipelines/new/", {"definition": "{}"}).status_code == 403


def test_graph__long_names_are_cut_to_fit_keeping_the_end_of_a_type():
    drawn = graph.layout(
        ["a_step_with_a_rather_long_name"],
        {},
        {"a_step_with_a_rather_long_name": {"job_type": LONG_TYPE, "status": "running"}},
    )
    [node] = drawn.nodes
    assert node["name_label"] == "a_step_with_a_rat…" and len(node["name_label"]) == 18
    assert node["type_label"] == "…tomerPostalAddresses" and len(node["type_label"]) == 21
