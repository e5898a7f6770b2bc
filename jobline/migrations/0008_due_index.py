"""An index on queued jobs' ``run_at``: an idle worker's lookup of the next delayed job."""

from __future__ import annotations

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("jobline", "0007_dispatch")]
    operations = [
        migrations.AddIndex(
            model_name="job",
            index=models.Index(
                condition=models.Q(("status", "queued")), fields=["run_at"], name="jobline_job_due"
            ),
        ),
    ]
