"""Schedule arithmetic: when a schedule's occurrences fall and what to fire when it is due.

Pure: no I/O, no Django, and every "now" is a parameter. Datetimes are timezone-aware and
returned in UTC. Cron rules are evaluated with cronsim in the schedule's time zone. Across
DST changes a rule that names its hours follows the wall clock:

* a time the spring change skips (``30 2 * * *`` or ``*/15 2 * * *`` in Europe/Berlin) fires
  once, when the clocks jump (03:00): it neither vanishes nor fires once per skipped time;
* a time the autumn change repeats fires once, in its first pass.

Rules for every hour (``*`` in the hour field) keep their real-time rhythm: an hourly rule
runs 23 or 25 times on those days.
"""

from __future__ import annotations

import contextlib
import enum
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import ClassVar, Protocol, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from jobline.core import input_rules

E = TypeVar("E", bound=enum.Enum)

TICK = timedelta(microseconds=1)  #: datetime resolution: "at or after t" is "after t - TICK"
MIN_INTERVAL = timedelta(seconds=1)
COUNT_CAP = 10_000  #: missed occurrences counted at most, so a long outage costs bounded time
CRON_ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


class Kind(enum.StrEnum):
    IN = "in"  #: a timer: fires once, a duration (``1h30m``) after ``start_at``
    AT = "at"  #: fires once, at a datetime (ISO 8601; naive ones are in the schedule's zone)
    INTERVAL = "interval"  #: every duration, at ``start_at + k * every`` (no drift)
    CRON = "cron"  #: a five-field cron expression in the schedule's time zone


class Misfire(enum.StrEnum):
    """What to do with occurrences missed by more than the grace window (scheduler down)."""

    SKIP = "skip"  #: drop them
    RUN_ONCE = "run_once"  #: run once in their stead, unless an on-time occurrence runs now
    CATCH_UP = "catch_up"  #: run each of them, up to ``catch_up`` (the most recent ones)


class ScheduleError(ValueError):
    """A schedule's rule or options are wrong; ``field`` names the culprit."""

    def __init__(self, field: str, message: str):
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


# -- parsing rules ---------------------------------------------------------------------------

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([dhms])")
_DURATION = re.compile(r"\s*(?:\d+(?:\.\d+)?\s*[dhms]\s*)+")
_UNIT_SECONDS = {"d": 86_400, "h": 3600, "m": 60, "s": 1}


def parse_duration(text: str) -> timedelta:
    """``"90"`` (seconds), ``"1h30m"``, ``"2d 4h"``, ``"1.5s"``: a duration >= 0."""
    raw = text.strip().lower()
    try:
        seconds = float(raw)
    except ValueError:
        if not _DURATION.fullmatch(raw):
            raise ScheduleError(
                "rule", f"{text!r} is not a duration; write seconds (90) or 1h30m, 2d, 45s"
            ) from None
        seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(raw))
    if not math.isfinite(seconds) or seconds < 0 or seconds > 100 * 365 * 86_400:
        raise ScheduleError("rule", f"{text!r} is not a duration between 0 and 100 years")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta | float) -> str:
    """The short form ``parse_duration`` reads: ``1h30m``, ``45s``, ``1.5s``, ``0s``."""
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    whole, fraction = divmod(seconds, 1)
    parts = []
    for unit in "dhm":
        count, whole = divmod(whole, _UNIT_SECONDS[unit])
        if count:
            parts.append(f"{int(count)}{unit}")
    if whole or fraction or not parts:
        parts.append(f"{(whole + fraction):g}s")
    return "".join(parts)


def zone(name: str) -> ZoneInfo:
    """An IANA time zone (``Europe/Berlin``), or a ScheduleError on ``timezone``."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(
            "timezone", f"unknown time zone {name!r}; use an IANA name like Europe/Berlin"
        ) from None


def local_datetime(text: str, tz: ZoneInfo) -> datetime:
    """An ISO 8601 datetime; naive ones are wall time in ``tz`` and must exist there."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ScheduleError(
            "rule", f"{text!r} is not an ISO 8601 datetime like 2030-01-31T09:00"
        ) from None
    if value.tzinfo is None:
        naive, value = value, value.replace(tzinfo=tz)
        with contextlib.suppress(OverflowError):  # past the calendar's edge: reported below
            if value.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != naive:
                raise ScheduleError(
                    "rule", f"{text} does not exist in {tz.key}: the clocks skip it"
                )
    if problem := input_rules.datetime_problem(value):
        raise ScheduleError("rule", problem)
    return value.astimezone(UTC)


def cron_expression(text: str) -> str:
    """A five-field cron expression (or an alias like ``@daily``), checked."""
    expr = CRON_ALIASES.get(text.strip().lower(), " ".join(text.split()))
    if len(expr.split()) != 5:
        raise ScheduleError(
            "rule", f"{text!r} is not a cron rule: five fields (minute hour day month weekday)"
        )
    try:
        CronSim(expr, datetime(2000, 1, 1, tzinfo=UTC))
    except CronSimError as exc:
        raise ScheduleError("rule", f"{text!r} is not a valid cron rule: {exc}") from None
    return expr


def _choice(enum_type: type[E], value: str, name: str) -> E:
    try:
        return enum_type(value)
    except ValueError:
        choices = ", ".join(m.value for m in enum_type)  # type: ignore[attr-defined]
        raise ScheduleError(name, f"{value!r} is not one of {choices}") from None


def _aware(name: str, value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise ScheduleError(name, "must be timezone-aware")
    if problem := input_rules.datetime_problem(value):
        raise ScheduleError(name, problem)
    return value.astimezone(UTC)


# -- occurrences -----------------------------------------------------------------------------


class Occurrences(Protocol):
    """The instants a rule fires at, in order."""

    repeats: ClassVar[bool]

    def next_after(self, t: datetime | None) -> datetime | None:
        """The first occurrence after ``t`` (``None``: the very first)."""

    def prev_before(self, t: datetime) -> datetime | None:
        """The last occurrence before ``t``."""

    def following(self, t: datetime) -> datetime | None:
        """The next run when runs are spaced from ``t`` (a job that finished at ``t``)."""


@dataclass(frozen=True, slots=True)
class Once:
    at: datetime
    repeats: ClassVar[bool] = False

    def next_after(self, t: datetime | None) -> datetime | None:
        return self.at if t is None or self.at > t else None

    def prev_before(self, t: datetime) -> datetime | None:
        return self.at if self.at < t else None

    def following(self, t: datetime) -> datetime | None:
        return None


@dataclass(frozen=True, slots=True)
class Every:
    """``start + k * step`` for k >= 0: computed from the anchor, so runs never drift."""

    start: datetime
    step: timedelta
    repeats: ClassVar[bool] = True

    def next_after(self, t: datetime | None) -> datetime | None:
        if t is None or t < self.start:
            return self.start
        return _or_none(lambda: self.start + ((t - self.start) // self.step + 1) * self.step)

    def prev_before(self, t: datetime) -> datetime | None:
        if t <= self.start:
            return None
        steps, rest = divmod(t - self.start, self.step)
        return self.start + (steps if rest else steps - 1) * self.step

    def following(self, t: datetime) -> datetime | None:
        return _or_none(lambda: t + self.step)


def _or_none(later: Callable[[], datetime]) -> datetime | None:
    """An occurrence, or None (no more) when it falls past what the calendar can hold."""
    try:
        found = later()
    except OverflowError:
        return None
    return None if input_rules.datetime_problem(found) else found


def wall_clock(expr: str) -> str:
    """``expr`` rewritten so that cronsim handles DST by wall-clock time unless the hour is ``*``.

    cronsim runs rules whose minute or hour field starts with ``*`` in real time, so
    ``*/15 2 * * *`` would vanish on the spring change and run twice on the autumn one. A
    rule that names its hours means wall-clock hours: ``0-59/15`` matches what ``*/15``
    does, and makes cronsim fire once at the jump and once in a repeated hour. Rules for
    every hour (``*``) keep their real-time rhythm.
    """
    minute, hour, *rest = expr.split()
    if hour == "*":
        return expr
    if minute.startswith("*"):
        minute = "0-59" + minute[1:]
    if hour.startswith("*"):
        hour = "0-23" + hour[1:]
    return " ".join([minute, hour, *rest])


@dataclass(frozen=True, slots=True)
class Cron:
    """A cron expression's times in ``tz``, from ``start`` on (see the module docstring)."""

    expr: str
    tz: ZoneInfo
    start: datetime
    repeats: ClassVar[bool] = True

    def _step(self, t: datetime, *, reverse: bool) -> datetime | None:
        local = t.astimezone(self.tz)
        try:
            return next(CronSim(wall_clock(self.expr), local, reverse=reverse)).astimezone(UTC)
        except StopIteration:  # e.g. "0 0 29 2 1" beyond the years cronsim searches
            return None

    def _after(self, t: datetime) -> datetime | None:
        found = self._step(t, reverse=False)
        # Wall-clock rules see only the wall time of t: from the second pass of a repeated
        # hour they find times of its first pass, which are earlier. Step past them.
        while found is not None and found <= t:
            found = self._step(found, reverse=False)
        return found

    def next_after(self, t: datetime | None) -> datetime | None:
        return self._after(self.start - TICK if t is None or t < self.start else t)

    def prev_before(self, t: datetime) -> datetime | None:
        found = self._step(t, reverse=True)
        # Reverse steps share that blind spot; the forward steps are exact, so walk up to t.
        while found is not None and (later := self._after(found)) is not None and later < t:
            found = later
        return found if found is not None and found >= self.start else None

    def following(self, t: datetime) -> datetime | None:
        return self.next_after(t)


@dataclass(frozen=True, slots=True)
class Until:
    """Occurrences of ``inner`` up to ``end`` (inclusive)."""

    inner: Occurrences
    end: datetime

    @property
    def repeats(self) -> bool:  # type: ignore[override]
        return self.inner.repeats

    def _cap(self, t: datetime | None) -> datetime | None:
        return t if t is not None and t <= self.end else None

    def next_after(self, t: datetime | None) -> datetime | None:
        return self._cap(self.inner.next_after(t))

    def prev_before(self, t: datetime) -> datetime | None:
        return self.inner.prev_before(min(t, self.end + TICK))

    def following(self, t: datetime) -> datetime | None:
        return self._cap(self.inner.following(t))


# -- a schedule's timing ---------------------------------------------------------------------


def default_start_at(kind: Kind | str, rule: str, now: datetime) -> datetime:
    """``start_at`` when none is given: now, or one interval from now for ``interval``."""
    if Kind(kind) is Kind.INTERVAL:
        return now + parse_duration(rule)
    return now


@dataclass(frozen=True, slots=True, kw_only=True)
class Firing:
    """What a due schedule does now."""

    fire: tuple[datetime, ...]  #: occurrences to enqueue a job for, oldest first
    skipped: int = 0  #: missed occurrences dropped by the misfire policy (at most COUNT_CAP)
    next_run_at: datetime | None  #: the pending occurrence after these; None: see ``waiting``
    waiting: bool = False  #: re-armed when the job ends (``reschedule_after_finish``)


@dataclass(frozen=True, slots=True, kw_only=True)
class Timing:
    """Everything that decides when a schedule fires; invalid values raise ScheduleError."""

    kind: Kind
    rule: str
    tz: str = "UTC"
    start_at: datetime
    end_at: datetime | None = None
    max_runs: int | None = None
    misfire: Misfire = Misfire.RUN_ONCE
    grace: float = 60.0  #: seconds an occurrence may be late and still count as on time
    catch_up: int = 10  #: most missed occurrences run by ``Misfire.CATCH_UP``
    reschedule_after_finish: bool = False
    occurrences: Occurrences = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        kind = _choice(Kind, self.kind, "kind")
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "misfire", _choice(Misfire, self.misfire, "misfire_policy"))
        start = _aware("start_at", self.start_at)
        end = _aware("end_at", self.end_at)
        assert start is not None
        if self.max_runs is not None and self.max_runs < 1:
            raise ScheduleError("max_runs", "must be at least 1 (or empty: no limit)")
        if not math.isfinite(self.grace) or self.grace < 0:
            raise ScheduleError("misfire_grace", "must be >= 0 seconds")
        if self.catch_up < 1:
            raise ScheduleError("catch_up", "must be at least 1")
        occurrences = self._occurrences(kind, zone(self.tz), start)
        if end is not None:
            if occurrences.repeats and end < start:
                raise ScheduleError("end_at", "is before the schedule starts")
            occurrences = Until(occurrences, end)
        object.__setattr__(self, "occurrences", occurrences)

    def _occurrences(self, kind: Kind, tz: ZoneInfo, start: datetime) -> Occurrences:
        if kind is Kind.CRON:
            return Cron(cron_expression(self.rule), tz, start)
        if kind is Kind.AT:
            return Once(local_datetime(self.rule, tz))
        step = parse_duration(self.rule)
        if kind is Kind.IN:
            if problem := input_rules.datetime_problem_after(start, step):
                raise ScheduleError("rule", problem)
            return Once(start + step)
        if step < MIN_INTERVAL:
            raise ScheduleError("rule", "an interval is at least one second")
        return Every(start, step)

    def describe(self) -> str:
        """A short human description: ``every 5m``, ``At 09:00 on Monday``, ``once at ...``."""
        occ = self.occurrences.inner if isinstance(self.occurrences, Until) else self.occurrences
        if isinstance(occ, Cron):
            try:
                return f"{CronSim(occ.expr, occ.start.astimezone(occ.tz)).explain()} ({self.tz})"
            except Exception:  # explain() does not cover every expression cronsim runs
                return f"cron {occ.expr} ({self.tz})"
        if isinstance(occ, Every):
            return f"every {format_duration(occ.step)}"
        assert isinstance(occ, Once)
        return f"once at {occ.at.astimezone(zone(self.tz)).isoformat(' ', 'seconds')}"

    def _runs_left(self, run_count: int) -> float:
        return math.inf if self.max_runs is None else self.max_runs - run_count

    def first_run(
        self, now: datetime, *, last_run_at: datetime | None = None, run_count: int = 0
    ) -> datetime | None:
        """The pending occurrence of a new, edited or re-enabled schedule.

        Repeating rules resume from ``now`` (an edit does not replay the past); one-off rules
        keep their time, even a past one, unless they fired after it.
        """
        if self._runs_left(run_count) <= 0:
            return None
        after = last_run_at
        if self.occurrences.repeats:
            after = now - TICK if after is None else max(after, now - TICK)
        return self.occurrences.next_after(after)

    def after_finish(self, finished_at: datetime, *, run_count: int) -> datetime | None:
        """The next run of a ``reschedule_after_finish`` schedule whose job ended then."""
        if self._runs_left(run_count) <= 0:
            return None
        return self.occurrences.following(finished_at)

    def due(
        self, next_run_at: datetime, now: datetime, *, run_count: int = 0, limit: int = 100
    ) -> Firing:
        """What to fire at ``now`` for the pending occurrence ``next_run_at``.

        Occurrences late by at most ``grace`` seconds all fire; older ones are missed and
        the misfire policy decides. At most ``limit`` fire per call: the rest stay due.
        """
        if next_run_at > now:
            return Firing(fire=(), next_run_at=next_run_at)
        cutoff = now - timedelta(seconds=self.grace)
        if self.reschedule_after_finish:
            return self._due_one(next_run_at, now, cutoff, run_count)
        keep = {Misfire.SKIP: 0, Misfire.RUN_ONCE: 1, Misfire.CATCH_UP: self.catch_up}
        missed, kept = (0, [])
        if next_run_at < cutoff:
            missed, kept = self._missed(next_run_at, cutoff, keep[self.misfire])
        on_time = self._between(max(next_run_at, cutoff), now, limit + 1)
        if self.misfire is Misfire.RUN_ONCE and on_time:
            kept = []  # the on-time run stands for the missed ones
        fire = kept + on_time
        skipped = missed - len(kept)
        runs_left = self._runs_left(run_count)
        if len(fire) >= runs_left:
            return Firing(fire=tuple(fire[: int(runs_left)]), skipped=skipped, next_run_at=None)
        resume = now
        if len(fire) > limit:  # the next call goes on from here
            fire = fire[:limit]
            resume = fire[-1]
        next_run_at = self.occurrences.next_after(resume)
        return Firing(fire=tuple(fire), skipped=skipped, next_run_at=next_run_at)

    def _due_one(
        self, next_run_at: datetime, now: datetime, cutoff: datetime, run_count: int
    ) -> Firing:
        """A ``reschedule_after_finish`` schedule has one pending run; fire it and wait."""
        if next_run_at < cutoff and self.misfire is Misfire.SKIP:
            return Firing(
                fire=(), skipped=1, next_run_at=self.after_finish(now, run_count=run_count)
            )
        return Firing(fire=(next_run_at,), next_run_at=None, waiting=True)

    def _between(self, start: datetime, end: datetime, limit: int) -> list[datetime]:
        """Occurrences in ``[start, end]``, at most ``limit``."""
        found: list[datetime] = []
        t = self.occurrences.next_after(start - TICK)
        while t is not None and t <= end and len(found) < limit:
            found.append(t)
            t = self.occurrences.next_after(t)
        return found

    def _missed(self, start: datetime, cutoff: datetime, keep: int) -> tuple[int, list[datetime]]:
        """How many occurrences fall in ``[start, cutoff)``, and the last ``keep`` of them."""
        kept: list[datetime] = []
        t: datetime | None = cutoff
        while len(kept) < keep:
            t = self.occurrences.prev_before(t)
            if t is None or t < start:
                return len(kept), kept
            kept.insert(0, t)
        return len(self._between(start, cutoff - TICK, COUNT_CAP)), kept
