"""Pipelines: stored definitions, runs, and the step a job is of (``Job.pipeline_*``)."""

from __future__ import annotations

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("jobline", "0004_api")]
    operations = [
        migrations.CreateModel(
            name="PipelineDefinition",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("name", models.CharField(max_length=200, unique=True)),
                ("description", models.TextField(blank=True, default="")),
                (
                    "definition",
                    models.JSONField(help_text="Steps, their job types, wiring and options."),
                ),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
            ],
            options={"ordering": ("name",)},
        ),
        migrations.CreateModel(
            name="PipelineRun",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("pipeline", models.CharField(help_text="The pipeline's name.", max_length=200)),
                (
                    "definition",
                    models.JSONField(
                        help_text="The pipeline as it was when the run started, with step options filled in."
                    ),
                ),
                ("inputs", models.JSONField(blank=True, default=dict)),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("running", "Running"),
                            ("succeeded", "Succeeded"),
                            ("failed", "Failed"),
                            ("cancelled", "Cancelled"),
                        ],
                        default="running",
                        max_length=12,
                    ),
                ),
                (
                    "outputs",
                    models.JSONField(
                        blank=True,
                        help_text="Once succeeded: each last step's outputs, by step.",
                        null=True,
                    ),
                ),
                ("error", models.TextField(blank=True, default="")),
                (
                    "step_states",
                    models.JSONField(
                        blank=True,
                        default=dict,
                        help_text="Steps without jobs: cancelled, skipped, empty fan-outs, unbuildable inputs.",
                    ),
                ),
                ("created_at", models.DateTimeField()),
                (
                    "started_at",
                    models.DateTimeField(help_text="When it was enqueued, or last resumed."),
                ),
                ("finished_at", models.DateTimeField(blank=True, null=True)),
            ],
            options={
                "indexes": [
                    models.Index(fields=["status", "-id"], name="jobline_run_status"),
                    models.Index(fields=["pipeline", "-id"], name="jobline_run_pipeline"),
                ],
            },
        ),
        migrations.AddField(
            model_name="job",
            name="pipeline_run",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="jobs",
                to="jobline.pipelinerun",
            ),
        ),
        migrations.AddField(
            model_name="job",
            name="pipeline_step",
            field=models.CharField(blank=True, max_length=100, null=True),
        ),
        migrations.AddField(
            model_name="job",
            name="pipeline_index",
            field=models.IntegerField(blank=True, help_text="Fan-out item.", null=True),
        ),
        migrations.AddConstraint(
            model_name="job",
            constraint=models.UniqueConstraint(
                condition=models.Q(("pipeline_run__isnull", False)),
                fields=("pipeline_run", "pipeline_step", "pipeline_index"),
                name="jobline_job_pipeline_step",
            ),
        ),
    ]
