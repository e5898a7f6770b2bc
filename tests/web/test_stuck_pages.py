"""The UI marks stuck jobs (badge, filter, dashboard card) and states the retention."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from jobline.models import Worker
from jobline.web import stats
from tests.web.conftest import make_job


@pytest.fixture(autouse=True)
def _fresh_dashboard():
    stats.clear_cache()


@pytest.fixture
def stuck_jobs(db) -> dict[str, int]:
    now = timezone.now()
    Worker.objects.create(
        id="w-live", hostname="h", pid=1, concurrency=4, started_at=now,
        last_heartbeat_at=now, lease_expires_at=now + timedelta(hours=1),
    )  # fmt: skip
    late = make_job("running", worker_id="w-live", timeout=5, started_at=now - timedelta(hours=1))
    lost = make_job("running", worker_id="w-gone", started_at=now)
    fine = make_job("running", worker_id="w-live", timeout=600, started_at=now)
    return {"late": late.id, "lost": lost.id, "fine": fine.id}


def _row_ids(page: str) -> list[int]:
    return [int(part.split('"')[0]) for part in page.split('<tr data-job="')[1:]]


def test_jobs_list_badges_and_filters_stuck_jobs(ui: Client, stuck_jobs):
    page = ui.get("/jobs/").content.decode()
    assert '<span class="badge s-stuck" data-field="stuck"' in page
    assert page.count(">past timeout</span>") == 1 and page.count(">worker lost</span>") == 1
    lost = ui.get("/jobs/?stuck=worker_lost").content.decode()
    assert _row_ids(lost) == [stuck_jobs["lost"]]
    late = ui.get("/jobs/?stuck=past_timeout").content.decode()
    assert _row_ids(late) == [stuck_jobs["late"]]
    detail = ui.get(f"/jobs/{stuck_jobs['lost']}/").content.decode()
    assert '<span class="badge big s-stuck" data-field="stuck">worker lost</span>' in detail
    fine = ui.get(f"/jobs/{stuck_jobs['fine']}/").content.decode()
    assert "s-stuck" not in fine


def test_dashboard_counts_stuck_jobs_and_states_the_retention(ui: Client, stuck_jobs, settings):
    settings.JOBLINE_RETENTION_FAILED = 0
    page = ui.get("/").content.decode()
    assert 'data-stat="stuck">2</span>' in page
    assert "past timeout 1 · worker lost 1" in page
    assert (
        "succeeded jobs and runs 7 days, failed forever, cancelled 30 days, "
        "schedule history 30 days." in page
    )
