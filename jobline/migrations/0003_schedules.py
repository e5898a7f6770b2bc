"""Schedules, their run history, and the schedule that fired a job.

On PostgreSQL, a change to a schedule notifies sleeping schedulers (LISTEN jobline_schedules),
at commit, so an edit takes effect at once. The notification is per row but PostgreSQL folds
identical ones, so one transaction sends one. The scheduler's own writes (firing, re-arming)
set ``jobline.firing`` and wake nobody: they only move runs later, or concern itself.
"""

from __future__ import annotations

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

CREATE = """
CREATE OR REPLACE FUNCTION jobline_notify_schedules() RETURNS trigger AS $$
BEGIN
    IF current_setting('jobline.firing', true) IS DISTINCT FROM 'on' THEN
        PERFORM pg_notify('jobline_schedules', '');
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER jobline_schedule_changed AFTER INSERT OR UPDATE ON jobline_schedule
    FOR EACH ROW EXECUTE FUNCTION jobline_notify_schedules();
"""

DROP = """
DROP TRIGGER IF EXISTS jobline_schedule_changed ON jobline_schedule;
DROP FUNCTION IF EXISTS jobline_notify_schedules();
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("jobline", "0002_notify_trigger")]
    operations = [
        migrations.CreateModel(
            name="Schedule",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "name",
                    models.CharField(
                        help_text="Stable key: nightly-report.", max_length=200, unique=True
                    ),
                ),
                ("title", models.CharField(blank=True, default="", max_length=200)),
                ("job_type", models.CharField(max_length=200)),
                (
                    "inputs",
                    models.JSONField(
                        blank=True, default=dict, help_text="The job's inputs (configs)."
                    ),
                ),
                (
                    "queue",
                    models.CharField(
                        blank=True,
                        default="",
                        help_text="Empty: the job type's queue.",
                        max_length=100,
                    ),
                ),
                (
                    "priority",
                    models.SmallIntegerField(
                        blank=True,
                        help_text="-100 to 100; empty: the job type's priority.",
                        null=True,
                    ),
                ),
                ("is_active", models.BooleanField(default=True)),
                (
                    "kind",
                    models.CharField(
                        choices=[
                            ("in", "in: once, a duration after start"),
                            ("at", "at: once, at a datetime"),
                            ("interval", "interval: every duration"),
                            ("cron", "cron expression"),
                        ],
                        default="cron",
                        max_length=10,
                    ),
                ),
                (
                    "rule",
                    models.CharField(
                        help_text="cron: */5 * * * * or @daily; interval and in: 90 (seconds), 5m, 1h30m, 2d; at: 2030-01-31T09:00 (in the time zone unless it has an offset).",
                        max_length=200,
                    ),
                ),
                (
                    "timezone",
                    models.CharField(
                        default="UTC",
                        help_text="IANA zone of cron rules and at times.",
                        max_length=64,
                    ),
                ),
                (
                    "start_at",
                    models.DateTimeField(
                        blank=True,
                        help_text="interval: first run, then every interval from it; cron: not before; in: counted from. Empty: now (interval: one interval from now).",
                        null=True,
                    ),
                ),
                (
                    "end_at",
                    models.DateTimeField(blank=True, help_text="No runs after this.", null=True),
                ),
                (
                    "max_runs",
                    models.PositiveIntegerField(
                        blank=True, help_text="Empty: no limit.", null=True
                    ),
                ),
                (
                    "misfire_policy",
                    models.CharField(
                        choices=[
                            ("skip", "skip missed runs"),
                            ("run_once", "run once for missed runs"),
                            ("catch_up", "catch up missed runs (up to catch_up)"),
                        ],
                        default="run_once",
                        max_length=10,
                    ),
                ),
                (
                    "misfire_grace",
                    models.FloatField(
                        default=60.0,
                        help_text="Seconds a run may be late before it counts as missed.",
                    ),
                ),
                (
                    "catch_up",
                    models.PositiveIntegerField(
                        default=10, help_text="Most missed runs the catch_up policy runs."
                    ),
                ),
                (
                    "reschedule_after_finish",
                    models.BooleanField(
                        default=False,
                        help_text="Count the next run from when the last job ends, never overlapping it.",
                    ),
                ),
                ("next_run_at", models.DateTimeField(blank=True, editable=False, null=True)),
                ("last_run_at", models.DateTimeField(blank=True, editable=False, null=True)),
                ("run_count", models.PositiveIntegerField(default=0, editable=False)),
                (
                    "created_at",
                    models.DateTimeField(default=django.utils.timezone.now, editable=False),
                ),
                ("updated_at", models.DateTimeField(auto_now=True)),
                (
                    "last_job",
                    models.ForeignKey(
                        blank=True,
                        editable=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="jobline.job",
                    ),
                ),
            ],
            options={
                "ordering": ["name"],
                "indexes": [
                    models.Index(
                        condition=models.Q(("is_active", True)),
                        fields=["next_run_at"],
                        name="jobline_schedule_due",
                    )
                ],
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("kind__in", ["in", "at", "interval", "cron"])),
                        name="jobline_schedule_kind",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(
                            ("misfire_policy__in", ["skip", "run_once", "catch_up"])
                        ),
                        name="jobline_schedule_misfire_policy",
                    ),
                ],
            },
        ),
        migrations.CreateModel(
            name="ScheduleRun",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "scheduled_for",
                    models.DateTimeField(help_text="The occurrence this run stands for."),
                ),
                ("fired_at", models.DateTimeField()),
                (
                    "skipped",
                    models.PositiveIntegerField(
                        default=0,
                        help_text="Missed runs the misfire policy dropped just before this one.",
                    ),
                ),
                (
                    "manual",
                    models.BooleanField(default=False, help_text="Started by hand (run now)."),
                ),
                ("error", models.TextField(blank=True, default="")),
                (
                    "job",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="jobline.job",
                    ),
                ),
                (
                    "schedule",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="runs",
                        to="jobline.schedule",
                    ),
                ),
            ],
            options={
                "ordering": ["-scheduled_for"],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("schedule", "scheduled_for"), name="jobline_schedulerun_once"
                    )
                ],
            },
        ),
        migrations.AddField(
            model_name="job",
            name="schedule",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="jobs",
                to="jobline.schedule",
            ),
        ),
        migrations.AddIndex(
            model_name="job",
            index=models.Index(
                condition=models.Q(("schedule__isnull", False)),
                fields=["schedule", "-id"],
                name="jobline_job_schedule",
            ),
        ),
        migrations.RunPython(forwards, backwards),
    ]
