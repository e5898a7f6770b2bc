"""API tokens and templates."""

from __future__ import annotations

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("jobline", "0003_schedules")]
    operations = [
        migrations.CreateModel(
            name="ApiToken",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("name", models.CharField(max_length=100, unique=True)),
                (
                    "read_only",
                    models.BooleanField(default=False, help_text="Can only read, never change."),
                ),
                (
                    "prefix",
                    models.CharField(editable=False, help_text="To recognise it.", max_length=12),
                ),
                ("token_hash", models.CharField(editable=False, max_length=64, unique=True)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("last_used_at", models.DateTimeField(blank=True, editable=False, null=True)),
            ],
            options={"verbose_name": "API token"},
        ),
        migrations.CreateModel(
            name="Template",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "name",
                    models.SlugField(
                        help_text="Letters, digits, - and _.", max_length=100, unique=True
                    ),
                ),
                (
                    "label",
                    models.CharField(blank=True, help_text="Shown to people.", max_length=200),
                ),
                ("description", models.TextField(blank=True)),
                ("job_type", models.CharField(max_length=200)),
                ("inputs", models.JSONField(blank=True, default=dict, help_text="Default inputs.")),
                (
                    "inputs_schema",
                    models.JSONField(
                        blank=True,
                        help_text="Optional JSON Schema the merged inputs must also fit (and the form shows).",
                        null=True,
                    ),
                ),
                (
                    "user_triggered",
                    models.BooleanField(default=True, help_text="People may start it."),
                ),
                ("enabled", models.BooleanField(default=True)),
                (
                    "queue",
                    models.CharField(
                        blank=True, help_text="Empty: the type's queue.", max_length=100
                    ),
                ),
                (
                    "priority",
                    models.SmallIntegerField(blank=True, help_text="Empty: the type's.", null=True),
                ),
                (
                    "delay",
                    models.FloatField(
                        blank=True,
                        help_text="Seconds a job started from it waits before it runs.",
                        null=True,
                    ),
                ),
                (
                    "schedule",
                    models.OneToOneField(
                        blank=True,
                        help_text="The schedule that starts its jobs on a clock, if any.",
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="template",
                        to="jobline.schedule",
                    ),
                ),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
            ],
            options={"ordering": ("name",)},
        ),
    ]
