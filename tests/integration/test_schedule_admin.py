"""Schedules in the Django admin (default database): validation, actions, live edits."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

import jobline
from jobline.models import Job, Schedule
from jobline.services.firing import tick
from tests.conftest import wait_until
from tests.integration.scheduler_helpers import running_scheduler


def form(**fields: Any) -> dict[str, Any]:
    """The add/change form as a browser posts it."""
    data = {
        "name": "report",
        "title": "",
        "job_type": "add",
        "inputs": '{"a": 1}',
        "queue": "",
        "priority": "",
        "is_active": "on",
        "kind": "cron",
        "rule": "*/5 * * * *",
        "timezone": "UTC",
        "start_at_0": "",
        "start_at_1": "",
        "end_at_0": "",
        "end_at_1": "",
        "max_runs": "",
        "misfire_policy": "run_once",
        "misfire_grace": "60",
        "catch_up": "10",
        "runs-TOTAL_FORMS": "0",
        "runs-INITIAL_FORMS": "0",
        "runs-MIN_NUM_FORMS": "0",
        "runs-MAX_NUM_FORMS": "1000",
    }
    return {**data, **fields}


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"kind": "cron", "rule": "every day"}, "rule"),
        ({"kind": "cron", "rule": "0 9 * * *", "timezone": "Moon/Base"}, "timezone"),
        ({"kind": "interval", "rule": "0"}, "rule"),
        ({"kind": "at", "rule": "2026-03-08T02:30", "timezone": "America/New_York"}, "rule"),
        ({"kind": "cron", "rule": "@daily", "job_type": "nope"}, "job_type"),
        ({"kind": "cron", "rule": "@daily", "inputs": {"a": "x"}}, "inputs"),
        ({"kind": "cron", "rule": "@daily", "priority": 101}, "priority"),
    ],
)
@pytest.mark.django_db
def test_clean_names_the_bad_field(fields, field):
    values = {"name": "bad", "job_type": "add", "inputs": {"a": 1}, **fields}
    with pytest.raises(ValidationError) as info:
        Schedule(**values).full_clean(validate_unique=False)
    assert field in info.value.message_dict


def test_admin_refuses_a_bad_rule_and_saves_a_good_one(admin_client):
    url = reverse("admin:jobline_schedule_add")
    page = admin_client.post(url, form(rule="61 * * * *"))
    assert page.status_code == 200 and "Bad minute" in page.content.decode()
    assert not Schedule.objects.exists()
    assert admin_client.post(url, form()).status_code == 302
    saved = Schedule.objects.get(name="report")
    assert saved.next_run_at is not None and saved.next_run_at.minute % 5 == 0


def test_admin_lists_schedules_and_shows_the_history(admin_client):
    s = jobline.schedule("report", "add", {"a": 1}, every="1m", title="Minutely report")
    (fired,) = tick(now=s.next_run_at).fired
    listing = admin_client.get(reverse("admin:jobline_schedule_changelist")).content.decode()
    assert "Minutely report" in listing and "every 1m" in listing
    detail = admin_client.get(reverse("admin:jobline_schedule_change", args=[s.pk]))
    page = detail.content.decode()
    assert detail.status_code == 200 and "history" in page
    assert reverse("admin:jobline_job_change", args=[fired.job_id]) in page


def test_admin_actions_run_now_disable_enable(admin_client):
    s = jobline.schedule("report", "add", {"a": 1}, cron="0 0 1 1 *")
    url = reverse("admin:jobline_schedule_changelist")
    admin_client.post(url, {"action": "run_now", "_selected_action": [s.pk]})
    assert Job.objects.filter(schedule=s).count() == 1
    admin_client.post(url, {"action": "disable", "_selected_action": [s.pk]})
    assert not Schedule.objects.get(pk=s.pk).is_active
    admin_client.post(url, {"action": "enable", "_selected_action": [s.pk]})
    enabled = Schedule.objects.get(pk=s.pk)
    assert enabled.is_active and enabled.next_run_at == s.next_run_at


@pytest.mark.django_db(transaction=True)
def test_an_edit_in_the_admin_takes_effect_without_a_restart(admin_client):
    s = jobline.schedule("report", "add", {"a": 1}, cron="0 0 1 1 *")
    with running_scheduler("default"):
        soon = (timezone.now() + timedelta(seconds=0.3)).isoformat()
        url = reverse("admin:jobline_schedule_change", args=[s.pk])
        assert admin_client.post(url, form(kind="at", rule=soon)).status_code == 302
        wait_until(lambda: Job.objects.filter(schedule=s).exists(), 5)
