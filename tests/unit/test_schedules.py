"""Schedule arithmetic: kinds, DST, misfire policies, limits. Pure: every "now" is given."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

import jobline
from jobline.core.schedules import (
    COUNT_CAP,
    Kind,
    Misfire,
    ScheduleError,
    Timing,
    format_duration,
    parse_duration,
)

EPOCH = datetime(2020, 1, 1, tzinfo=UTC)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def local(text: str, tz: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(tz))


def cron(rule: str, tz: str = "UTC", **options) -> Timing:
    return Timing(kind=Kind.CRON, rule=rule, tz=tz, start_at=EPOCH, **options)


def walk(timing: Timing, after: datetime, n: int) -> list[str]:
    """The next ``n`` occurrences after ``after``, as wall time in the schedule's zone."""
    out, t = [], after
    for _ in range(n):
        t = timing.occurrences.next_after(t)
        out.append(t.astimezone(ZoneInfo(timing.tz)).isoformat(timespec="minutes"))
    return out


# -- rules -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90), ("1.5", 1.5), ("45s", 45), ("5m", 300), ("1h30m", 5400), ("2d 4h", 187_200)],
)
def test_parse_duration__accepts_seconds_and_units(text, seconds):
    assert parse_duration(text) == timedelta(seconds=seconds)
    assert parse_duration(format_duration(parse_duration(text))) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "soon", "-5", "5x", "1h 2", "inf", "nan"])
def test_parse_duration__refuses_nonsense(text):
    with pytest.raises(ScheduleError, match="rule"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("kind", "rule", "tz", "field", "message"),
    [
        ("cron", "* * * *", "UTC", "rule", "five fields"),
        ("cron", "0 0 * * * *", "UTC", "rule", "five fields"),
        ("cron", "61 * * * *", "UTC", "rule", "Bad minute"),
        ("cron", "0 0 30 2 *", "UTC", "rule", "Bad day-of-month"),
        ("cron", "0 9 * * *", "Mars/Olympus", "timezone", "unknown time zone"),
        ("interval", "0.5", "UTC", "rule", "at least one second"),
        ("interval", "often", "UTC", "rule", "not a duration"),
        ("at", "next tuesday", "UTC", "rule", "ISO 8601"),
        ("at", "2026-03-29T02:30", "Europe/Berlin", "rule", "does not exist"),
        ("weekly", "x", "UTC", "kind", "not one of"),
    ],
)
def test_Timing__bad_rules_name_their_field(kind, rule, tz, field, message):
    with pytest.raises(ScheduleError, match=message) as info:
        Timing(kind=kind, rule=rule, tz=tz, start_at=EPOCH)
    assert info.value.field == field


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"max_runs": 0}, "max_runs"),
        ({"grace": -1}, "misfire_grace"),
        ({"catch_up": 0}, "catch_up"),
        ({"misfire": "never"}, "misfire_policy"),
        ({"end_at": EPOCH - timedelta(days=1)}, "end_at"),
        ({"start_at": datetime(2020, 1, 1)}, "start_at"),
    ],
)
def test_Timing__bad_options_name_their_field(options, field):
    values = {"kind": Kind.CRON, "rule": "@daily", "start_at": EPOCH, **options}
    with pytest.raises(ScheduleError) as info:
        Timing(**values)
    assert info.value.field == field


def test_Timing__cron_aliases_and_description():
    assert walk(cron("@hourly"), utc("2026-05-01T09:10"), 2) == [
        "2026-05-01T10:00+00:00",
        "2026-05-01T11:00+00:00",
    ]
    assert cron("0 9 * * 1-5", "Europe/Paris").describe() == (
        "At 09:00 on Monday through Friday (Europe/Paris)"
    )


# -- kinds -----------------------------------------------------------------------------------


def test_in__fires_once_a_duration_after_start():
    timing = Timing(kind=Kind.IN, rule="1h30m", start_at=utc("2026-05-01T10:00"))
    now = utc("2026-05-01T10:00:01")
    assert timing.first_run(now) == utc("2026-05-01T11:30")
    firing = timing.due(utc("2026-05-01T11:30"), utc("2026-05-01T11:30:00.004"))
    assert firing.fire == (utc("2026-05-01T11:30"),) and firing.next_run_at is None


def test_at__naive_times_are_wall_time_in_the_zone():
    timing = Timing(kind=Kind.AT, rule="2026-07-01 09:00", tz="Europe/Berlin", start_at=EPOCH)
    assert timing.first_run(EPOCH) == utc("2026-07-01T07:00")
    with_offset = Timing(kind=Kind.AT, rule="2026-07-01T09:00-04:00", start_at=EPOCH)
    assert with_offset.first_run(EPOCH) == utc("2026-07-01T13:00")


def test_at__a_repeated_wall_time_is_its_first_pass():
    timing = Timing(kind=Kind.AT, rule="2026-10-25T02:30", tz="Europe/Berlin", start_at=EPOCH)
    assert timing.first_run(EPOCH) == utc("2026-10-25T00:30")


def test_one_off__keeps_a_past_time_until_it_has_fired():
    timing = Timing(kind=Kind.AT, rule="2026-01-01T00:00+00:00", start_at=EPOCH)
    now = utc("2026-06-01T00:00")
    assert timing.first_run(now) == utc("2026-01-01T00:00")  # due: the misfire policy decides
    assert timing.first_run(now, last_run_at=utc("2026-01-01T00:00:01")) is None


def test_interval__is_anchored_and_does_not_drift():
    timing = Timing(kind=Kind.INTERVAL, rule="90s", start_at=utc("2026-05-01T10:00"))
    assert timing.first_run(utc("2026-05-01T09:00")) == utc("2026-05-01T10:00")
    late = utc("2026-05-01T10:01:31.700")  # the 10:01:30 run, fired 1.7 s late
    firing = timing.due(utc("2026-05-01T10:01:30"), late)
    assert firing.fire == (utc("2026-05-01T10:01:30"),)
    assert firing.next_run_at == utc("2026-05-01T10:03:00")


def test_repeating_rules_resume_from_now_after_an_edit():
    timing = Timing(kind=Kind.INTERVAL, rule="10m", start_at=utc("2026-05-01T00:00"))
    assert timing.first_run(utc("2026-05-01T10:05")) == utc("2026-05-01T10:10")
    assert timing.first_run(utc("2026-05-01T10:10")) == utc("2026-05-01T10:10")


# -- cron across DST changes -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("tz", "rule", "after", "expected"),
    [
        # Europe/Berlin, spring: 02:00 CET jumps to 03:00 CEST on 2026-03-29.
        pytest.param(
            "Europe/Berlin",
            "30 2 * * *",
            "2026-03-28T12:00",
            ["2026-03-29T03:00+02:00", "2026-03-30T02:30+02:00"],
            id="berlin-spring-skipped-time-fires-at-the-jump",
        ),
        pytest.param(
            "Europe/Berlin",
            "0,30 2 * * *",
            "2026-03-28T12:00",
            ["2026-03-29T03:00+02:00", "2026-03-30T02:00+02:00"],
            id="berlin-spring-two-skipped-times-fire-once",
        ),
        pytest.param(
            "Europe/Berlin",
            "*/15 2 * * *",
            "2026-03-28T12:00",
            ["2026-03-29T03:00+02:00", "2026-03-30T02:00+02:00"],
            id="berlin-spring-skipped-hour-does-not-vanish",
        ),
        pytest.param(
            "Europe/Berlin",
            "0 */2 * * *",
            "2026-03-28T23:00",
            ["2026-03-29T00:00+01:00", "2026-03-29T03:00+02:00", "2026-03-29T04:00+02:00"],
            id="berlin-spring-every-two-hours",
        ),
        pytest.param(
            "Europe/Berlin",
            "*/30 * * * *",
            "2026-03-29T01:00",
            ["2026-03-29T01:30+01:00", "2026-03-29T03:00+02:00", "2026-03-29T03:30+02:00"],
            id="berlin-spring-every-30-minutes-in-real-time",
        ),
        # Europe/Berlin, autumn: 03:00 CEST falls back to 02:00 CET on 2026-10-25.
        pytest.param(
            "Europe/Berlin",
            "30 2 * * *",
            "2026-10-24T12:00",
            ["2026-10-25T02:30+02:00", "2026-10-26T02:30+01:00"],
            id="berlin-autumn-repeated-time-fires-once",
        ),
        pytest.param(
            "Europe/Berlin",
            "*/30 2 * * *",
            "2026-10-24T12:00",
            ["2026-10-25T02:00+02:00", "2026-10-25T02:30+02:00", "2026-10-26T02:00+01:00"],
            id="berlin-autumn-repeated-hour-fires-once",
        ),
        pytest.param(
            "Europe/Berlin",
            "0 * * * *",
            "2026-10-25T00:30",
            [
                "2026-10-25T01:00+02:00",
                "2026-10-25T02:00+02:00",
                "2026-10-25T02:00+01:00",
                "2026-10-25T03:00+01:00",
            ],
            id="berlin-autumn-hourly-keeps-real-time",
        ),
        # America/New_York, spring: 02:00 EST jumps to 03:00 EDT on 2026-03-08.
        pytest.param(
            "America/New_York",
            "30 2 * * *",
            "2026-03-07T12:00",
            ["2026-03-08T03:00-04:00", "2026-03-09T02:30-04:00"],
            id="new-york-spring-skipped-time-fires-at-the-jump",
        ),
        pytest.param(
            "America/New_York",
            "0 2 * * 0",
            "2026-03-01T12:00",
            ["2026-03-08T03:00-04:00", "2026-03-15T02:00-04:00"],
            id="new-york-spring-weekly",
        ),
        # America/New_York, autumn: 02:00 EDT falls back to 01:00 EST on 2026-11-01.
        pytest.param(
            "America/New_York",
            "30 1 * * *",
            "2026-10-31T12:00",
            ["2026-11-01T01:30-04:00", "2026-11-02T01:30-05:00"],
            id="new-york-autumn-repeated-time-fires-once",
        ),
        pytest.param(
            "America/New_York",
            "*/30 1 * * *",
            "2026-10-31T12:00",
            ["2026-11-01T01:00-04:00", "2026-11-01T01:30-04:00", "2026-11-02T01:00-05:00"],
            id="new-york-autumn-repeated-hour-fires-once",
        ),
        pytest.param(
            "America/New_York",
            "0 * * * *",
            "2026-11-01T00:30",
            ["2026-11-01T01:00-04:00", "2026-11-01T01:00-05:00", "2026-11-01T02:00-05:00"],
            id="new-york-autumn-hourly-keeps-real-time",
        ),
    ],
)
def test_cron__across_dst_changes(tz, rule, after, expected):
    assert walk(cron(rule, tz), local(after, tz), len(expected)) == expected


@pytest.mark.parametrize("tz", ["Europe/Berlin", "America/New_York"])
@pytest.mark.parametrize("rule", ["*/15 2 * * *", "30 1 * * *", "0 * * * *", "*/20 * * * *"])
@pytest.mark.parametrize("day", ["2026-03-07", "2026-03-28", "2026-10-24", "2026-10-31"])
def test_cron__steps_forward_and_back_agree_across_dst(tz, rule, day):
    timing = cron(rule, tz)
    occ = timing.occurrences
    t = local(f"{day}T20:00", tz)
    seen = [occ.next_after(t)]
    while seen[-1] < t + timedelta(days=2):
        seen.append(occ.next_after(seen[-1]))
    assert seen == sorted(set(seen))  # strictly increasing: nothing twice
    for before, after in itertools.pairwise(seen):
        assert occ.prev_before(after) == before
        assert occ.next_after(before + (after - before) / 2) == after


def test_cron__from_the_second_pass_of_a_repeated_hour_looks_forward():
    timing = cron("*/15 2 * * *", "Europe/Berlin")
    second_pass = utc("2026-10-25T01:10")  # 02:10 CET, after 02:00-02:45 CEST have run
    assert timing.occurrences.next_after(second_pass) == local("2026-10-26T02:00", "Europe/Berlin")
    assert timing.occurrences.prev_before(second_pass) == utc("2026-10-25T00:45")


# -- due: late runs and misfire policies ------------------------------------------------------

DOWN_FROM, BACK_AT = utc("2026-05-01T09:55"), utc("2026-05-01T10:55:30")  # down for an hour


@pytest.mark.parametrize(
    ("misfire", "catch_up", "fired", "skipped"),
    [
        (Misfire.SKIP, 10, [], 6),
        (Misfire.RUN_ONCE, 10, ["10:50"], 5),
        (Misfire.CATCH_UP, 3, ["10:30", "10:40", "10:50"], 3),
        (Misfire.CATCH_UP, 10, ["10:00", "10:10", "10:20", "10:30", "10:40", "10:50"], 0),
    ],
)
def test_due__after_an_hour_down(misfire, catch_up, fired, skipped):
    timing = cron("*/10 * * * *", misfire=misfire, catch_up=catch_up, grace=20)
    pending = timing.first_run(DOWN_FROM)
    firing = timing.due(pending, BACK_AT)
    assert [t.strftime("%H:%M") for t in firing.fire] == fired
    assert firing.skipped == skipped
    assert firing.next_run_at == utc("2026-05-01T11:00")


@pytest.mark.parametrize("misfire", list(Misfire))
def test_due__runs_late_by_less_than_grace_all_fire(misfire):
    timing = Timing(kind=Kind.INTERVAL, rule="1s", start_at=EPOCH, misfire=misfire, grace=10)
    firing = timing.due(EPOCH + timedelta(seconds=100), EPOCH + timedelta(seconds=103.5))
    assert len(firing.fire) == 4 and firing.skipped == 0
    assert firing.next_run_at == EPOCH + timedelta(seconds=104)


def test_due__run_once_is_covered_by_an_on_time_run():
    timing = cron("*/10 * * * *", misfire=Misfire.RUN_ONCE, grace=60)
    firing = timing.due(utc("2026-05-01T10:00"), utc("2026-05-01T11:00:20"))
    assert firing.fire == (utc("2026-05-01T11:00"),) and firing.skipped == 6


@pytest.mark.parametrize(
    ("misfire", "fired"),
    [
        (Misfire.SKIP, []),
        (Misfire.RUN_ONCE, ["2026-03-29T03:45+02:00"]),
        (
            Misfire.CATCH_UP,
            [
                "2026-03-29T03:00+02:00",
                "2026-03-29T03:15+02:00",
                "2026-03-29T03:30+02:00",
                "2026-03-29T03:45+02:00",
            ],
        ),
    ],
)
def test_due__an_hour_down_across_the_spring_change(misfire, fired):
    tz = "Europe/Berlin"
    timing = cron("*/15 * * * *", tz, misfire=misfire, grace=60)
    pending = timing.first_run(local("2026-03-29T01:50", tz))  # then down for one real hour
    firing = timing.due(pending, local("2026-03-29T03:50", tz))
    assert [t.astimezone(ZoneInfo(tz)).isoformat(timespec="minutes") for t in firing.fire] == fired
    assert firing.skipped == 4 - len(fired)


@pytest.mark.parametrize("misfire", [Misfire.RUN_ONCE, Misfire.CATCH_UP])
def test_due__a_repeated_time_missed_across_the_autumn_change_runs_once(misfire):
    tz = "Europe/Berlin"
    timing = cron("30 2 * * *", tz, misfire=misfire)
    pending = timing.first_run(local("2026-10-25T02:20", tz))  # CEST; back 80 min later (CET)
    firing = timing.due(pending, utc("2026-10-25T01:40"))
    assert firing.fire == (utc("2026-10-25T00:30"),) and firing.skipped == 0
    assert firing.next_run_at == local("2026-10-26T02:30", tz)


def test_due__at_most_limit_per_call_the_rest_stays_due():
    timing = Timing(
        kind=Kind.INTERVAL, rule="1s", start_at=EPOCH, misfire=Misfire.CATCH_UP, catch_up=1000
    )
    now = EPOCH + timedelta(seconds=249.5)
    firing = timing.due(EPOCH, now, limit=100)
    assert len(firing.fire) == 100 and firing.next_run_at == EPOCH + timedelta(seconds=100)
    rest = timing.due(firing.next_run_at, now, limit=1000)
    assert len(firing.fire) + len(rest.fire) == 250 and rest.skipped == 0


def test_due__long_outages_are_counted_up_to_a_cap():
    timing = cron("* * * * *", misfire=Misfire.SKIP)
    firing = timing.due(utc("2020-01-01T00:00"), utc("2026-01-01T00:00:30"))
    assert firing.fire == (utc("2026-01-01T00:00"),)
    assert firing.skipped == COUNT_CAP


def test_due__max_runs_and_end_at_end_the_schedule():
    timing = cron("0 * * * *", max_runs=3, misfire=Misfire.CATCH_UP)
    firing = timing.due(utc("2026-05-01T10:00"), utc("2026-05-01T15:00"), run_count=1)
    assert len(firing.fire) == 2 and firing.next_run_at is None
    assert timing.first_run(utc("2026-05-01T00:00"), run_count=3) is None
    ending = cron("0 * * * *", end_at=utc("2026-05-01T11:00"))
    assert ending.due(utc("2026-05-01T11:00"), utc("2026-05-01T11:00")).next_run_at is None


def test_due__not_yet():
    timing = cron("0 * * * *")
    assert timing.due(utc("2026-05-01T11:00"), utc("2026-05-01T10:59:59.999")).fire == ()


# -- reschedule_after_finish ------------------------------------------------------------------


def test_reschedule_after_finish__fires_one_run_then_waits_for_the_job():
    timing = Timing(
        kind=Kind.INTERVAL, rule="1m", start_at=EPOCH, reschedule_after_finish=True, grace=1
    )
    firing = timing.due(EPOCH, EPOCH + timedelta(minutes=5))  # late: one run, never a burst
    assert firing.fire == (EPOCH,) and firing.waiting and firing.next_run_at is None
    finished = EPOCH + timedelta(minutes=7, seconds=3)
    assert timing.after_finish(finished, run_count=1) == finished + timedelta(minutes=1)


def test_reschedule_after_finish__cron_counts_from_the_end_and_skip_drops_a_late_run():
    timing = cron("0 * * * *", reschedule_after_finish=True, misfire=Misfire.SKIP)
    assert timing.after_finish(utc("2026-05-01T10:59"), run_count=1) == utc("2026-05-01T11:00")
    late = timing.due(utc("2026-05-01T11:00"), utc("2026-05-01T12:30"))
    assert late.fire == () and late.skipped == 1 and late.next_run_at == utc("2026-05-01T13:00")
    once = Timing(kind=Kind.IN, rule="5s", start_at=EPOCH, reschedule_after_finish=True)
    assert once.after_finish(EPOCH, run_count=1) is None


def test_periodic_needs_a_job_type_and_a_valid_rule():
    with pytest.raises(jobline.JoblineError, match="above @jobline"):
        jobline.periodic(every=60)(lambda: None)
    with pytest.raises(jobline.ScheduleError, match="cron rule"):
        jobline.periodic(cron="every minute")
