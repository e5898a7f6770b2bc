"""Schedules on real SQLite and PostgreSQL, fired with a clock the tests control."""

from __future__ import annotations

import threading
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.db import connections
from django.test import override_settings
from django.utils import timezone

import jobline
from jobline.models import Job, Schedule, ScheduleRun
from jobline.scheduler import periodic
from jobline.scheduler.api import sync_periodic
from jobline.services import firing
from jobline.services.firing import run_now, tick
from jobline.testing import drain
from tests.conftest import ALL_DATABASES

pytestmark = ALL_DATABASES
MS = timedelta(milliseconds=1)


def _get(alias: str, name: str) -> Schedule:
    return Schedule.objects.using(alias).get(name=name)


def _jobs(alias: str, name: str) -> list[Job]:
    return list(Job.objects.using(alias).filter(schedule__name=name).order_by("id"))


def _names(fired: list[firing.Fired]) -> set[str]:
    return {f.schedule for f in fired if f.job_id}


def test_each_kind_fires_once_at_its_time(alias):
    now = timezone.now()
    made = [
        jobline.schedule("timer", "add", {"a": 1}, in_="90s", using=alias),
        jobline.schedule("at", "add", {"a": 2}, at=now + timedelta(hours=1), using=alias),
        jobline.schedule("every", "add", {"a": 3}, every="10m", queue="mail", using=alias),
        jobline.schedule(
            "nightly",
            "add",
            {"a": 4},
            cron="0 3 * * *",
            tz="Europe/Berlin",
            priority=7,
            using=alias,
        ),
    ]
    assert made[0].next_run_at == made[0].start_at + timedelta(seconds=90)
    assert made[2].next_run_at == made[2].start_at == made[2].created_at + timedelta(minutes=10)
    for s in sorted(made, key=lambda s: s.next_run_at):
        assert s.name not in _names(tick(alias, now=s.next_run_at - MS).fired)
        assert s.name in _names(tick(alias, now=s.next_run_at).fired)

    (timer_job,) = _jobs(alias, "timer")
    assert (timer_job.inputs, timer_job.status) == ({"a": 1, "b": 1}, "queued")
    assert _jobs(alias, "every")[0].queue == "mail"
    assert _jobs(alias, "nightly")[0].priority == 7
    timer, at, every, nightly = (_get(alias, s.name) for s in made)
    assert not timer.is_active and timer.next_run_at is None and timer.run_count == 1
    assert not at.is_active and at.last_job_id == _jobs(alias, "at")[0].id
    assert every.is_active and every.next_run_at > made[2].next_run_at
    assert (every.next_run_at - made[2].next_run_at) % timedelta(minutes=10) == timedelta(0)
    berlin = nightly.next_run_at.astimezone(ZoneInfo("Europe/Berlin"))
    assert (berlin.hour, berlin.minute, berlin.date()) == (
        3,
        0,
        made[3].next_run_at.astimezone(ZoneInfo("Europe/Berlin")).date() + timedelta(days=1),
    )
    run = ScheduleRun.objects.using(alias).get(schedule=timer)
    assert (run.scheduled_for, run.job_id, run.skipped) == (made[0].next_run_at, timer_job.id, 0)


def test_concurrent_schedulers_fire_each_occurrence_once(alias):
    """Four schedulers with their own connections tick at the same instants."""
    start = timezone.now().replace(microsecond=0) + timedelta(seconds=5)
    at = start + timedelta(seconds=1)
    for i in range(60):
        jobline.schedule(f"timer-{i}", "add", {"a": i}, at=at, using=alias)
    jobline.schedule("tick-tock", "add", {"a": 0}, every=1, start_at=start, using=alias)
    steps = [start + timedelta(seconds=k / 2) for k in range(12)]  # 5.5 s of a fake clock
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def scheduler() -> None:
        try:
            for now in steps:
                barrier.wait(timeout=30)
                tick(alias, now=now)
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()
        finally:
            connections[alias].close()

    threads = [threading.Thread(target=scheduler) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    for i in range(60):
        assert len(_jobs(alias, f"timer-{i}")) == 1
    runs = ScheduleRun.objects.using(alias).filter(schedule__name="tick-tock")
    assert sorted(runs.values_list("scheduled_for", flat=True)) == [
        start + timedelta(seconds=k) for k in range(6)
    ]
    assert len(_jobs(alias, "tick-tock")) == 6 == _get(alias, "tick-tock").run_count


@pytest.mark.parametrize(
    ("misfire", "jobs", "skipped"),
    [("skip", 0, 7), ("run_once", 1, 6), ("catch_up", 3, 4)],
)
def test_misfire_policy_after_an_hour_down(alias, misfire, jobs, skipped):
    s = jobline.schedule(
        "ten", "add", {"a": 1}, cron="*/10 * * * *", misfire=misfire, catch_up=3, using=alias
    )
    back = s.next_run_at + timedelta(minutes=65)  # 7 runs missed, the last by 5 minutes
    fired = tick(alias, now=back).fired
    assert len(_jobs(alias, "ten")) == jobs
    assert sum(f.skipped for f in fired) == skipped
    after = _get(alias, "ten")
    assert after.next_run_at == s.next_run_at + timedelta(minutes=70)
    assert after.run_count == jobs
    if jobs:
        assert fired[-1].scheduled_for == s.next_run_at + timedelta(minutes=60)


def test_reschedule_after_finish_rearms_only_once_the_job_has_ended(alias):
    s = jobline.schedule(
        "after", "add", {"a": 1}, every="1m", reschedule_after_finish=True, using=alias
    )
    assert _names(tick(alias, now=s.next_run_at).fired) == {"after"}
    assert _get(alias, "after").next_run_at is None
    later = s.next_run_at + timedelta(minutes=5)
    assert tick(alias, now=later).fired == [] and tick(alias, now=later).waiting
    assert len(_jobs(alias, "after")) == 1
    assert drain(1, using=alias) == 1
    (job,) = _jobs(alias, "after")
    rearm_at = job.finished_at + timedelta(minutes=1)
    assert tick(alias, now=rearm_at - MS).fired == []
    assert _get(alias, "after").next_run_at == rearm_at
    assert _names(tick(alias, now=rearm_at).fired) == {"after"}
    assert len(_jobs(alias, "after")) == 2


def test_run_now_enqueues_without_moving_the_schedule(alias):
    s = jobline.schedule("manual", "add", {"a": 5}, cron="0 0 1 1 *", using=alias)
    (fired,) = run_now([s.id], using=alias)
    assert fired.job_id == _jobs(alias, "manual")[0].id
    after = _get(alias, "manual")
    assert (after.next_run_at, after.run_count) == (s.next_run_at, 1)
    assert after.last_job_id == fired.job_id
    assert ScheduleRun.objects.using(alias).get(schedule=s).manual


def test_a_job_that_cannot_be_enqueued_is_recorded_and_the_schedule_moves_on(alias):
    s = jobline.schedule("broken", "add", {"a": 1}, every="1m", using=alias)
    Schedule.objects.using(alias).filter(pk=s.pk).update(inputs={"a": "not a number"})
    (fired,) = tick(alias, now=s.next_run_at).fired
    assert fired.job_id is None and "invalid inputs" in fired.error
    assert _get(alias, "broken").next_run_at == s.next_run_at + timedelta(minutes=1)
    assert _jobs(alias, "broken") == []


def test_saving_a_bad_rule_raises_and_python_api_names_the_field(alias):
    with pytest.raises(jobline.ScheduleError, match="five fields"):
        Schedule(name="bad", job_type="add", kind="cron", rule="* *").save(using=alias)
    with pytest.raises(ValidationError) as info:
        jobline.schedule("bad", "add", {"a": 1}, cron="61 * * * *", using=alias)
    assert "Bad minute" in info.value.message_dict["rule"][0]
    with pytest.raises(ValidationError) as info:
        jobline.schedule("bad", "nope", cron="@daily", using=alias)
    assert "unknown job type 'nope'" in info.value.message_dict["job_type"][0]
    with pytest.raises(ValueError, match="exactly one of cron, every"):
        jobline.schedule("bad", "add", {"a": 1}, cron="@daily", every=60, using=alias)
    assert not Schedule.objects.using(alias).exists()


def test_schedule_api_is_idempotent_and_updates_by_name(alias):
    first = jobline.schedule("report", "add", {"a": 1}, in_="1h", using=alias)
    again = jobline.schedule("report", "add", {"a": 1}, in_="1h", using=alias)
    assert again.pk == first.pk
    assert (again.updated_at, again.next_run_at) == (first.updated_at, first.next_run_at)
    longer = jobline.schedule("report", "add", {"a": 2}, in_="2h", using=alias)
    assert longer.pk == first.pk and longer.inputs == {"a": 2}
    assert longer.next_run_at == first.start_at + timedelta(hours=2)  # counted from creation
    assert Schedule.objects.using(alias).count() == 1


def test_schedule_switched_off_stays_off_when_code_declares_it_again(alias):
    jobline.schedule("report", "add", {"a": 1}, every=60, using=alias)
    Schedule.objects.using(alias).filter(name="report").update(is_active=False)
    assert not jobline.schedule("report", "add", {"a": 1}, every=60, using=alias).is_active


def test_saving_a_stale_copy_never_rewinds_the_schedule(alias):
    s = jobline.schedule("stale", "add", {"a": 1}, every="1m", using=alias)
    stale = _get(alias, "stale")
    tick(alias, now=s.next_run_at)
    stale.title = "edited elsewhere"
    stale.save(using=alias)
    fresh = _get(alias, "stale")
    assert fresh.title == "edited elsewhere"
    assert (fresh.next_run_at, fresh.run_count) == (s.next_run_at + timedelta(minutes=1), 1)


def test_editing_the_rule_rearms_from_now(alias):
    s = jobline.schedule("edit", "add", {"a": 1}, cron="0 0 1 1 *", using=alias)
    s.rule = "*/5 * * * *"
    s.save(using=alias)
    now = timezone.now()
    assert now < s.next_run_at <= now + timedelta(minutes=5)
    assert s.next_run_at.minute % 5 == 0 and s.next_run_at.second == 0


def test_periodic_schedules_declared_in_code_are_created_at_start(alias, monkeypatch):
    monkeypatch.setattr(periodic, "declared", {})
    add = jobline.registry.get("add")
    jobline.periodic(cron="*/5 * * * *", tz="Europe/Paris", inputs={"a": 1})(add)
    jobline.periodic(every="90s", name="add-often", inputs={"a": 2}, queue="mail")(add)
    assert sync_periodic(alias) == 2
    assert sync_periodic(alias) == 2  # again at the next start: nothing changes
    paris, often = _get(alias, "add"), _get(alias, "add-often")
    assert (paris.kind, paris.rule, paris.timezone) == ("cron", "*/5 * * * *", "Europe/Paris")
    assert (often.kind, often.rule, often.queue) == ("interval", "1m30s", "mail")


@override_settings(JOBLINE_SCHEDULE_HISTORY=5)
def test_history_is_pruned_to_the_newest_runs(alias):
    s = jobline.schedule("busy", "noop", every=1, misfire="catch_up", catch_up=1000, using=alias)
    tick(alias, now=s.next_run_at + timedelta(seconds=249))
    assert _get(alias, "busy").run_count == 250
    assert ScheduleRun.objects.using(alias).filter(schedule=s).count() <= 5 + firing.PRUNE_EVERY


def test_deleting_a_schedule_keeps_its_jobs(alias):
    s = jobline.schedule("gone", "add", {"a": 1}, every=60, using=alias)
    tick(alias, now=s.next_run_at)
    Schedule.objects.using(alias).filter(pk=s.pk).delete()
    (job,) = Job.objects.using(alias).filter(type="add")
    assert job.schedule_id is None


def test_time_left_counts_down_to_zero(alias):
    s = jobline.schedule("countdown", "add", {"a": 1}, in_="1h", using=alias)
    assert s.time_left(s.start_at) == 3600
    tick(alias, now=s.next_run_at)
    assert _get(alias, "countdown").time_left() == 0
