"""Progress and logs in the server-rendered pages and the admin (the live parts run in
tests/browser/test_job_logs.py)."""

from __future__ import annotations

from django.contrib.auth.models import User

from jobline.models import JobLog
from tests.web.conftest import make_job


def test_the_job_page_and_the_list_show_a_running_job_s_progress(ui):
    job = make_job("running", progress=0.4, progress_message="page 4 of 10", log_lines=2)
    page = ui.get(f"/jobs/{job.id}/").content.decode()
    assert f'data-progress="{job.id}" max="100" value="40"' in page
    assert "40 % · page 4 of 10" in page
    assert f'data-log-url="/api/v1/jobs/{job.id}/logs"' in page
    listing = ui.get("/jobs/").content.decode()
    assert f'data-progress="{job.id}" max="100" value="40"' in listing


def test_a_job_that_never_reported_shows_no_bar(ui):
    queued, running = make_job("queued"), make_job("running")
    assert "data-progress=" not in ui.get(f"/jobs/{queued.id}/").content.decode()
    page = ui.get(f"/jobs/{running.id}/").content.decode()
    assert 'class="progress hidden"' in page and "not reported" in page


def test_the_admin_lists_log_lines_read_only_and_shows_progress_read_only(client, db):
    admin = User.objects.create_superuser("root", password="pw-root")
    client.force_login(admin)
    job = make_job("running", progress=0.5)
    JobLog.objects.create(
        job=job, attempt=1, seq=1, level="INFO", text="hello", created_at=job.created_at
    )
    assert "hello" in client.get("/admin/jobline/joblog/").content.decode()
    assert client.get("/admin/jobline/joblog/add/").status_code == 403
    change = client.get(f"/admin/jobline/job/{job.id}/change/").content.decode()
    assert 'name="progress"' not in change and "0.5" in change
