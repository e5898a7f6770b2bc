"""Schedules and their run history: the ORM face of the scheduler (admin, API, UI).

The scheduler owns ``next_run_at``, ``last_run_at``, ``last_job`` and ``run_count``: saving a
schedule never writes them back from a stale copy, and re-arms ``next_run_at`` (under a row
lock) only when the timing, or ``is_active``, changed. Firing lives in ``firing.py``.
"""

from __future__ import annotations

from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import models, router, transaction
from django.db.models import Q
from django.utils import timezone as dj_timezone  # "timezone" is a field here

from jobline.core.jobtypes import registry
from jobline.core.schedules import Kind, Misfire, ScheduleError, Timing, default_start_at
from jobline.core.states import FINISHED
from jobline.exceptions import InputsError, UnknownJobType
from jobline.input_guard import field_errors
from jobline.models.jobs import Job

#: Written only by the scheduler (and ``run_now``); a save keeps the stored values.
SCHEDULER_FIELDS = ("next_run_at", "last_run_at", "last_job_id", "run_count")
#: A change to one of these re-arms the schedule.
TIMING_FIELDS = (
    "kind",
    "rule",
    "timezone",
    "start_at",
    "end_at",
    "max_runs",
    "reschedule_after_finish",
)
KIND_CHOICES = [
    (Kind.IN.value, "in: once, a duration after start"),
    (Kind.AT.value, "at: once, at a datetime"),
    (Kind.INTERVAL.value, "interval: every duration"),
    (Kind.CRON.value, "cron expression"),
]
MISFIRE_CHOICES = [
    (Misfire.SKIP.value, "skip missed runs"),
    (Misfire.RUN_ONCE.value, "run once for missed runs"),
    (Misfire.CATCH_UP.value, "catch up missed runs (up to catch_up)"),
]


class Schedule(models.Model):
    """Enqueues a job of ``job_type`` with ``inputs`` at each occurrence of its rule."""

    name = models.CharField(max_length=200, unique=True, help_text="Stable key: nightly-report.")
    title = models.CharField(max_length=200, blank=True, default="")
    job_type = models.CharField(max_length=200)
    inputs = models.JSONField(default=dict, blank=True, help_text="The job's inputs (configs).")
    queue = models.CharField(
        max_length=100, blank=True, default="", help_text="Empty: the job type's queue."
    )
    priority = models.SmallIntegerField(
        null=True, blank=True, help_text="-100 to 100; empty: the job type's priority."
    )
    is_active = models.BooleanField(default=True)
    kind = models.CharField(max_length=10, choices=KIND_CHOICES, default=Kind.CRON.value)
    rule = models.CharField(
        max_length=200,
        help_text="cron: */5 * * * * or @daily; interval and in: 90 (seconds), 5m, 1h30m, 2d; "
        "at: 2030-01-31T09:00 (in the time zone unless it has an offset).",
    )
    timezone = models.CharField(
        max_length=64, default="UTC", help_text="IANA zone of cron rules and at times."
    )
    start_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="interval: first run, then every interval from it; cron: not before; "
        "in: counted from. Empty: now (interval: one interval from now).",
    )
    end_at = models.DateTimeField(null=True, blank=True, help_text="No runs after this.")
    max_runs = models.PositiveIntegerField(null=True, blank=True, help_text="Empty: no limit.")
    misfire_policy = models.CharField(
        max_length=10, choices=MISFIRE_CHOICES, default=Misfire.RUN_ONCE.value
    )
    misfire_grace = models.FloatField(
        default=60.0, help_text="Seconds a run may be late before it counts as missed."
    )
    catch_up = models.PositiveIntegerField(
        default=10, help_text="Most missed runs the catch_up policy runs."
    )
    reschedule_after_finish = models.BooleanField(
        default=False,
        help_text="Count the next run from when the last job ends, never overlapping it.",
    )
    next_run_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_run_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_job = models.ForeignKey(
        "jobline.Job",
        null=True,
        blank=True,
        editable=False,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    run_count = models.PositiveIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(default=dj_timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        indexes = [
            # The scheduler's only hot query: the earliest pending run of active schedules.
            models.Index(
                fields=["next_run_at"], name="jobline_schedule_due", condition=Q(is_active=True)
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=[k.value for k in Kind]), name="jobline_schedule_kind"
            ),
            models.CheckConstraint(
                condition=Q(misfire_policy__in=[m.value for m in Misfire]),
                name="jobline_schedule_misfire_policy",
            ),
        ]

    def __str__(self) -> str:
        return self.title or self.name

    def timing(self) -> Timing:
        """The schedule's rule as pure values; raises ScheduleError if something is wrong."""
        start_at = self.start_at
        if start_at is None:
            start_at = default_start_at(self.kind, self.rule, self.created_at or dj_timezone.now())
        return Timing(
            kind=self.kind,
            rule=self.rule,
            tz=self.timezone,
            start_at=start_at,
            end_at=self.end_at,
            max_runs=self.max_runs,
            misfire=self.misfire_policy,
            grace=self.misfire_grace,
            catch_up=self.catch_up,
            reschedule_after_finish=self.reschedule_after_finish,
        )

    def describe(self) -> str:
        """The rule in words, or what is wrong with it."""
        try:
            return self.timing().describe()
        except ScheduleError as exc:
            return f"invalid: {exc}"

    def time_left(self, now: datetime | None = None) -> float:
        """Seconds until the next run; 0 when due, done or inactive."""
        if not self.is_active or self.next_run_at is None:
            return 0.0
        return max(0.0, (self.next_run_at - (now or dj_timezone.now())).total_seconds())

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}
        try:
            self.timing()
        except ScheduleError as exc:
            errors.setdefault(exc.field, []).append(exc.message)
        if self.priority is not None and not -100 <= self.priority <= 100:
            errors.setdefault("priority", []).append("must be between -100 and 100")
        try:
            schema = registry.get(self.job_type).inputs
            schema.validate(self.inputs)
        except UnknownJobType as exc:
            errors.setdefault("job_type", []).append(str(exc))
        except InputsError as exc:
            errors.setdefault("inputs", []).append(str(exc))
        for field, problems in field_errors(self).items():
            errors.setdefault(field, []).extend(problems)
        if errors:
            raise ValidationError(errors)

    def save(self, *args, **kwargs) -> None:
        """Save; re-arm ``next_run_at`` if the timing changed. A bad rule raises ScheduleError."""
        using = kwargs.get("using") or router.db_for_write(type(self), instance=self)
        now = dj_timezone.now()
        if self.start_at is None:
            self.start_at = default_start_at(self.kind, self.rule, self.created_at or now)
        timing = self.timing()
        with transaction.atomic(using=using):
            stored = None
            if self.pk is not None:
                stored = (
                    type(self)
                    .objects.using(using)
                    .select_for_update()
                    .filter(pk=self.pk)
                    .values("is_active", *SCHEDULER_FIELDS, *TIMING_FIELDS)
                    .first()
                )
            if stored is None:
                rearm = self.is_active
            else:
                for name in SCHEDULER_FIELDS:  # never write back what the scheduler changed since
                    setattr(self, name, stored[name])
                rearm = self.is_active and (
                    not stored["is_active"]
                    or any(stored[f] != getattr(self, f) for f in TIMING_FIELDS)
                )
            if rearm:
                self._rearm(timing, now, using)
                if kwargs.get("update_fields") is not None:
                    kwargs["update_fields"] = {*kwargs["update_fields"], "next_run_at", "is_active"}
            super().save(*args, **kwargs)

    def _rearm(self, timing: Timing, now: datetime, using: str) -> None:
        """Set the pending run; a schedule with nothing left to run is switched off."""
        if self.reschedule_after_finish and self.last_job_id is not None:
            running = Job.objects.using(using).filter(pk=self.last_job_id)
            if running.exclude(status__in=[s.value for s in FINISHED]).exists():
                self.next_run_at = None  # still waiting for its job, which re-arms it
                return
        self.next_run_at = timing.first_run(
            now, last_run_at=self.last_run_at, run_count=self.run_count
        )
        self.is_active = self.next_run_at is not None


class ScheduleRun(models.Model):
    """One entry of a schedule's history: a job it fired, or missed runs it skipped."""

    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="runs")
    scheduled_for = models.DateTimeField(help_text="The occurrence this run stands for.")
    fired_at = models.DateTimeField()
    job = models.ForeignKey(
        "jobline.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    skipped = models.PositiveIntegerField(
        default=0, help_text="Missed runs the misfire policy dropped just before this one."
    )
    manual = models.BooleanField(default=False, help_text="Started by hand (run now).")
    error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-scheduled_for"]
        constraints = [
            # Each occurrence fires at most once, whatever happens above this line.
            models.UniqueConstraint(
                fields=["schedule", "scheduled_for"], name="jobline_schedulerun_once"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.schedule_id} @ {self.scheduled_for.isoformat()}"
