"""Dispatched jobs (kafka): their dispatch state and the outputs their executor reported.

``db_default`` lets the store's raw inserts leave the column out; on PostgreSQL adding a
column with a constant default rewrites nothing, however many jobs there are.
"""

from __future__ import annotations

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("jobline", "0006_events")]
    operations = [
        migrations.AddField(
            model_name="job",
            name="dispatch",
            field=models.CharField(
                blank=True,
                choices=[
                    ("delivered", "Delivered"),
                    ("running", "Running"),
                    ("succeeded", "Succeeded"),
                    ("failed", "Failed"),
                ],
                db_default="",
                default="",
                max_length=12,
            ),
        ),
        migrations.AddField(
            model_name="job",
            name="dispatch_outputs",
            field=models.JSONField(
                blank=True, help_text="The outputs its executor reported.", null=True
            ),
        ),
    ]
