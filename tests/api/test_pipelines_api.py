"""``/api/v1/pipelines``: define stored pipelines, list and read them, start runs."""

from __future__ import annotations

from jobline.models import Job, PipelineDefinition, PipelineRun

CHAIN = {
    "name": "api-chain",
    "description": "add one, then one more",
    "steps": [
        {"name": "first", "job_type": "pl_add", "map": {"n": "input.n"}},
        {"name": "second", "job_type": "pl_add", "map": {"n": "first.n"}},
    ],
}


def test_define__201_with_its_inputs_schema_then_listed_and_read(api):
    r = api.post("/pipelines", CHAIN)
    assert r.status_code == 201, r.json()
    body = r.json()
    assert (body["name"], body["source"], body["problems"]) == ("api-chain", "stored", [])
    assert body["inputs_schema"]["required"] == ["n"]
    assert [s["name"] for s in body["definition"]["steps"]] == ["first", "second"]
    assert "api-chain" in [p["name"] for p in api.get("/pipelines").json()]
    assert api.get("/pipelines/api-chain").json()["definition"] == body["definition"]
    assert api.get("/pipelines/nope").status_code == 404


def test_define__every_problem_named_and_nothing_stored(api):
    bad = {
        "name": "broken",
        "steps": [
            {"name": "a", "job_type": "pl_add", "map": {"n": "input.n", "nope": "input.x"}},
            {"name": "b", "job_type": "no_such_type", "after": ["a"]},
        ],
    }
    r = api.post("/pipelines", bad)
    assert r.status_code == 422
    messages = [e["message"] for e in r.json()["detail"]]
    assert {e["field"] for e in r.json()["detail"]} == {"definition"}
    assert any("'nope'" in m for m in messages) and any("no_such_type" in m for m in messages)
    assert not PipelineDefinition.objects.exists()


def test_start_run__201_then_readable_and_bad_inputs_422(api):
    api.post("/pipelines", CHAIN)
    bad = api.post("/pipelines/api-chain/runs", {"inputs": {"n": "five"}})
    assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "inputs.n"
    assert not PipelineRun.objects.exists()
    r = api.post("/pipelines/api-chain/runs", {"inputs": {"n": 5}})
    assert r.status_code == 201, r.json()
    run = r.json()
    assert (run["pipeline"], run["status"], run["inputs"]) == ("api-chain", "running", {"n": 5})
    assert [s["name"] for s in run["steps"]] == ["first", "second"]
    assert Job.objects.get(pipeline_run_id=run["id"]).inputs == {"n": 5, "plus": 1}
    assert api.get(f"/pipeline-runs/{run['id']}").json()["id"] == run["id"]
    assert api.post("/pipelines/nope/runs", {"inputs": {}}).status_code == 404


def test_read_only_token_cannot_define(reader):
    assert reader.post("/pipelines", CHAIN).status_code == 403
