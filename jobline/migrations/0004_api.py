"""Placeholder in the migration chain; filled in by the api work."""

from __future__ import annotations

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("jobline", "0003_schedules")]
    operations = []
