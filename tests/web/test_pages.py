"""The UI's pages and actions through Django's test client: access, lists, forms, outcomes."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

import jobline
from jobline.models import Job, Queue, Worker
from jobline.models.api import Template
from jobline.web import stats
from tests.web.conftest import make_job

REPORT = {"type": "report", "inputs": {"title": "Q3 plan"}}
PAGES = [
    "/",
    "/jobs/",
    "/jobs/new/",
    "/schedules/",
    "/templates/",
    "/pipelines/",
    "/subscriptions/",
    "/subscriptions/new/",
]


@pytest.fixture(autouse=True)
def _fresh_dashboard():
    stats.clear_cache()


def post_json(client: Client, url: str, body: object):
    return client.post(url, json.dumps(body), content_type="application/json")


def embedded(page: str, name: str) -> str:
    """The JSON a page carries in ``<script id=name type="application/json">``."""
    return page.split(f'<script id="{name}" type="application/json">')[1].split("</script>")[0]


def flashes(response) -> list[str]:
    return [f["message"] for f in json.loads(embedded(response.content.decode(), "flashes"))]


@pytest.mark.parametrize("path", PAGES)
def test_pages__anonymous_visitors_are_sent_to_login(db, client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"] == f"/login/?next={path}"


def test_login__signs_in_and_goes_on_to_next_but_never_off_site(db, client):
    User.objects.create_user("root", password="pw-123", is_staff=True)
    assert "Sign in" in client.get("/login/?next=/jobs/").content.decode()
    wrong = client.post("/login/", {"username": "root", "password": "nope", "next": "/jobs/"})
    assert wrong.status_code == 200 and "Please enter a correct username" in wrong.content.decode()
    ok = client.post("/login/", {"username": "root", "password": "pw-123", "next": "/jobs/"})
    assert ok["Location"] == "/jobs/"
    client.logout()
    evil = client.post(
        "/login/", {"username": "root", "password": "pw-123", "next": "https://evil.test/"}
    )
    assert evil["Location"] == "/"
    assert client.post("/logout/")["Location"] == "/login/"
    assert client.get("/")["Location"].startswith("/login/")


def test_pages__need_staff_or_view_permission_and_change_permission_to_act(db, client, viewer):
    nobody = Client()
    nobody.force_login(User.objects.create_user("nobody", password="pw"))
    assert nobody.get("/jobs/").status_code == 403
    job = make_job("failed")
    assert viewer.get("/jobs/").status_code == 200
    page = viewer.get(f"/jobs/{job.id}/").content.decode()
    assert "Retry</button>" not in page and "New job" not in page
    assert viewer.post(f"/jobs/{job.id}/retry/").status_code == 403
    assert Job.objects.get(pk=job.id).status == "failed"


@pytest.mark.parametrize("path", PAGES)
def test_pages__render_for_staff(ui, path):
    response = ui.get(path)
    assert response.status_code == 200
    assert 'data-events="/api/v1/events"' in response.content.decode()


def test_dashboard__counts_charts_queues_workers_and_failures(ui):
    for status in ("queued", "queued", "running", "succeeded", "succeeded", "succeeded"):
        make_job(status, age=120)
    make_job("failed", age=120, error="ValueError: bad input", queue="mail")
    Queue.objects.create(name="mail", paused=True)
    now = timezone.now()
    Worker.objects.create(
        id="w1",
        hostname="box",
        pid=42,
        queues=["default"],
        concurrency=10,
        running=3,
        started_at=now,
        last_heartbeat_at=now,
        lease_expires_at=now + timedelta(seconds=30),
    )
    page = ui.get("/").content.decode()
    assert 'data-stat="queued">2<' in page and 'data-stat="running">1<' in page
    assert 'data-stat="succeeded">3<' in page and 'data-stat="failed">1<' in page
    assert 'data-stat="failure-rate">25.0%<' in page and 'data-stat="workers">1<' in page
    assert page.count("<svg viewBox") == 3 and 'class="bar-succeeded"' in page
    assert "box:42" in page and "3/10" in page
    assert "ValueError: bad input" in page and "paused" in page
    data = stats.dashboard(stats.WINDOWS["1h"])
    assert sum(data["series"]["succeeded"]) == 3 and sum(data["series"]["failed"]) == 1
    assert data["series"]["depth"][-1] == 2  # waiting now
    assert 'data-stat="succeeded">' in ui.get("/?window=24h&partial=1").content.decode()


def test_jobs_list__filters_by_status_type_queue_and_time(ui):
    old = make_job("succeeded", age=7200, type="sync_add")
    failed = make_job("failed", age=60, queue="mail")
    queued = make_job("queued", age=30)

    def ids(query: str) -> list[int]:
        page = ui.get(f"/jobs/?{query}").content.decode()
        return [int(x.split('"')[0]) for x in page.split('<tr data-job="')[1:]]

    assert ids("") == [queued.id, failed.id, old.id]
    assert ids("status=failed") == [failed.id]
    assert ids("type=sync_add") == [old.id]
    assert ids("queue=mail") == [failed.id]
    assert ids("range=1h") == [queued.id, failed.id]
    local = (timezone.now() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    assert ids(f"from={local}&tz=0") == [queued.id, failed.id]
    assert ids(f"to={local}&tz=0") == [old.id]
    assert ids("status=bogus&range=forever") == [queued.id, failed.id, old.id]


def test_jobs_list__keyset_pages_both_ways(ui):
    made = [make_job().id for _ in range(60)]
    newest = made[::-1]
    first = ui.get("/jobs/?limit=25")
    page = first.content.decode()
    assert f'<tr data-job="{newest[0]}"' in page and f'<tr data-job="{newest[24]}"' in page
    assert f"before={newest[24]}" in page and "after=" not in page
    second = ui.get(f"/jobs/?limit=25&before={newest[24]}").content.decode()
    assert f'<tr data-job="{newest[25]}"' in second and f'<tr data-job="{newest[24]}"' not in second
    assert f"after={newest[25]}" in second and f"before={newest[49]}" in second
    back = ui.get(f"/jobs/?limit=25&after={newest[25]}").content.decode()
    assert back.index(f'data-job="{newest[0]}"') < back.index(f'data-job="{newest[24]}"')
    last = ui.get(f"/jobs/?limit=25&before={newest[49]}").content.decode()
    assert last.count("<tr data-job=") == 10 and "Older" not in last
    rows = ui.get("/jobs/?partial=1&limit=25").content.decode()
    assert rows.lstrip().startswith("<tr") and rows.count("<tr data-job=") == 25


def test_jobs_list__search_opens_a_job_by_id_or_idempotency_key(ui):
    job = jobline.enqueue("add", {"a": 1}, idempotency_key="order-7")
    assert ui.get(f"/jobs/?q=%23{job.id}")["Location"] == f"/jobs/{job.id}/"
    assert ui.get("/jobs/?q=order-7")["Location"] == f"/jobs/{job.id}/"
    missing = ui.get("/jobs/?q=nope")
    assert missing.status_code == 200
    assert flashes(missing) == ["No job with id or idempotency key 'nope'."]


def test_job_detail__inputs_outputs_error_traceback_timeline_with_secrets_hidden(ui):
    job = jobline.enqueue("report", {"title": "Q3 plan", "api_key": "s3cret"})
    Job.objects.filter(pk=job.id).update(
        status="failed",
        attempts=3,
        started_at=timezone.now(),
        finished_at=timezone.now(),
        error="RuntimeError: boom",
        traceback="Traceback (most recent call last):\n  ...",
        outputs={"partial": True},
    )
    page = ui.get(f"/jobs/{job.id}/").content.decode()
    assert "Q3 plan" in page and "s3cret" not in page and "••••••" in page
    assert "RuntimeError: boom" in page and "Traceback (most recent call last)" in page
    assert "&quot;partial&quot;: true" in page
    assert "Started (attempt 3 of 3)" in page and ">Failed<" in page
    assert "Retry</button>" in page and "Run again" in page
    partial = ui.get(f"/jobs/{job.id}/?partial=1").content.decode()
    assert "<html" not in partial and 'data-field="status"' in partial
    assert ui.get("/jobs/999999/").status_code == 404


def test_job_actions__terminate_and_retry_with_their_outcome(ui):
    queued = jobline.enqueue("add", {"a": 1})
    assert ui.get(f"/jobs/{queued.id}/terminate/").status_code == 405
    done = ui.post(f"/jobs/{queued.id}/terminate/", follow=True)
    assert flashes(done) == [f"Job {queued.id} is cancelled."]
    assert Job.objects.get(pk=queued.id).status == "cancelled"
    again = ui.post(f"/jobs/{queued.id}/terminate/", follow=True)
    assert flashes(again) == [f"Job {queued.id} is cancelled: only queued or running jobs stop."]
    retried = ui.post(f"/jobs/{queued.id}/retry/", follow=True)
    assert flashes(retried) == [f"Job {queued.id} is queued again."]
    assert Job.objects.get(pk=queued.id).status == "queued"
    running = make_job("running")
    stopping = ui.post(f"/jobs/{running.id}/terminate/", follow=True)
    assert flashes(stopping) == [f"Job {running.id} is being stopped."]
    assert Job.objects.get(pk=running.id).cancel_requested
    assert ">stopping<" in stopping.content.decode()


def test_jobs_bulk__terminates_or_retries_what_the_filter_matches(ui):
    mail = [make_job("queued", queue="mail").id for _ in range(3)]
    other = make_job("queued").id
    failed = [make_job("failed", queue="mail").id for _ in range(2)]
    count = ui.get("/jobs/count/?queue=mail&action=terminate").json()
    assert count == {"count": 3, "more": False}
    response = ui.post("/jobs/bulk/", {"action": "terminate", "queue": "mail"}, follow=True)
    assert flashes(response) == ["Cancelled 3 jobs (running ones stop within a second)."]
    assert set(Job.objects.filter(id__in=mail).values_list("status", flat=True)) == {"cancelled"}
    assert Job.objects.get(pk=other).status == "queued"
    assert ui.get("/jobs/count/?queue=mail&status=failed&action=retry").json()["count"] == 2
    response = ui.post("/jobs/bulk/", {"action": "retry", "queue": "mail", "status": "failed"})
    assert response["Location"] == "/jobs/?status=failed&queue=mail"
    assert set(Job.objects.filter(id__in=failed).values_list("status", flat=True)) == {"queued"}


def test_queues__pause_and_resume_from_the_dashboard(ui):
    response = ui.post("/queues/mail/pause/", {"next": "/?window=24h"})
    assert response["Location"] == "/?window=24h"
    assert Queue.objects.get(name="mail").paused
    page = ui.get("/").content.decode()
    assert "queues/mail/resume/" in page
    ui.post("/queues/mail/resume/", {"next": "https://evil.test/"})
    assert not Queue.objects.get(name="mail").paused


def test_new_job__offers_user_triggered_types_and_templates_only(ui):
    Template.objects.create(name="weekly", label="Weekly report", job_type="report")
    Template.objects.create(name="off", job_type="report", enabled=False)
    Template.objects.create(name="internal", job_type="report", user_triggered=False)
    page = ui.get("/jobs/new/").content.decode()
    assert "?type=report" in page and "?type=sleep" in page and "?type=add" not in page
    assert "Weekly report" in page and "internal" not in page and ">off<" not in page
    form = ui.get("/jobs/new/?type=report").content.decode()
    schema = json.loads(embedded(form, "schema"))
    assert schema["required"] == ["title"]
    refused = ui.get("/jobs/new/?type=add", follow=True)
    assert flashes(refused) == ["That job type or template cannot be started by hand."]


def test_new_job__run_again_prefills_inputs_but_no_secrets(ui):
    job = jobline.enqueue("report", {"title": "Q3 plan", "api_key": "s3cret"})
    form = ui.get(f"/jobs/new/?type=report&from={job.id}").content.decode()
    initial = json.loads(embedded(form, "initial"))
    assert initial["title"] == "Q3 plan" and initial["api_key"] == "••••••"


def test_create_job__validated_on_the_server_with_errors_by_field(ui):
    bad = post_json(ui, "/jobs/new/", {"type": "report", "inputs": {"title": "untitled"}})
    assert bad.status_code == 422
    errors = bad.json()["errors"]
    assert errors == [{"field": "title", "message": "give the report a real title"}]
    nested = post_json(
        ui, "/jobs/new/", {"type": "report", "inputs": {"title": "ok!", "layout": {"columns": 9}}}
    )
    assert [e["field"] for e in nested.json()["errors"]] == ["layout.columns"]
    options = post_json(
        ui,
        "/jobs/new/",
        {**REPORT, "options": {"priority": 500, "delay": -1}},
    )
    assert [e["field"] for e in options.json()["errors"]] == ["options.priority", "options.delay"]
    assert post_json(ui, "/jobs/new/", {"type": "add", "inputs": {"a": 1}}).status_code == 404
    assert ui.post("/jobs/new/", "{nope", content_type="application/json").status_code == 400
    assert not Job.objects.exists()
    made = post_json(
        ui,
        "/jobs/new/",
        {**REPORT, "options": {"queue": "mail", "delay": 60}},
    )
    assert made.status_code == 201
    job = Job.objects.get(pk=made.json()["id"])
    assert made.json()["url"] == f"/jobs/{job.id}/"
    assert (job.type, job.queue, job.inputs["title"]) == ("report", "mail", "Q3 plan")
    assert job.run_at > job.created_at + timedelta(seconds=59)


def test_create_job__from_a_template_merges_its_inputs(ui):
    template = Template.objects.create(
        name="q", job_type="report", inputs={"title": "Quarterly", "pages": 3}, queue="mail"
    )
    made = post_json(ui, "/jobs/new/", {"template": template.id, "inputs": {"pages": 7}})
    job = Job.objects.get(pk=made.json()["id"])
    assert (job.inputs["title"], job.inputs["pages"], job.queue) == ("Quarterly", 7, "mail")
    form = ui.get(f"/jobs/new/?template={template.id}").content.decode()
    assert '"Quarterly"' in form and 'data-secret-defaults="1"' in form
    template.enabled = False
    template.save()
    gone = post_json(ui, "/jobs/new/", {"template": template.id, "inputs": {}})
    assert gone.status_code == 404


def test_templates__list_with_start_links(ui):
    Template.objects.create(name="weekly", label="Weekly", job_type="report")
    Template.objects.create(name="ghost", job_type="nope", enabled=False)
    page = ui.get("/templates/").content.decode()
    assert "Weekly" in page and "/jobs/new/?template=" in page
    assert "ghost" in page and "unknown" in page


def test_assets__versioned_urls_cached_for_good(ui, client):
    page = ui.get("/").content.decode()
    url = page.split('<link rel="stylesheet" href="')[1].split('"')[0]
    assert url.startswith("/assets/app.css?v=")
    css = client.get(url)
    assert css["Cache-Control"] == "public, max-age=31536000, immutable"
    assert css["Content-Type"].startswith("text/css")
    assert client.get("/assets/app.css")["Cache-Control"] == "no-cache"
    assert client.get("/assets/../base.py").status_code == 404
    assert client.get("/assets/nope.js").status_code == 404


def test_job_detail__shows_the_trace_id_when_traced(ui, spans):
    traced = jobline.enqueue("add", {"a": 1})
    plain = jobline.enqueue("add", {"a": 2})
    Job.objects.filter(pk=plain.id).update(trace_context=None)
    trace_id = Job.objects.get(pk=traced.id).trace_id
    assert trace_id and len(trace_id) == 32
    page = ui.get(f"/jobs/{traced.id}/").content.decode()
    assert f'data-field="trace-id">{trace_id}<' in page
    assert 'data-field="trace-id"' not in ui.get(f"/jobs/{plain.id}/").content.decode()
