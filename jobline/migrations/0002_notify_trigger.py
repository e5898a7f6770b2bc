"""PostgreSQL only: inserting jobs notifies idle workers, and the queue is vacuumed early.

One notification per insert statement, delivered at commit, so a bulk insert costs one
NOTIFY and a rolled-back enqueue wakes nobody. Every job is updated twice (claim,
completion), so dead row versions pile up fast: vacuum after 2 % of the table changed
instead of the default 20 %, which keeps claim scans short.
"""

from __future__ import annotations

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION jobline_notify_jobs() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('jobline_jobs', '');
    RETURN NULL;
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER jobline_job_inserted AFTER INSERT ON jobline_job
    FOR EACH STATEMENT EXECUTE FUNCTION jobline_notify_jobs();
ALTER TABLE jobline_job SET (autovacuum_vacuum_scale_factor = 0.02,
    autovacuum_analyze_scale_factor = 0.02);
"""

DROP = """
DROP TRIGGER IF EXISTS jobline_job_inserted ON jobline_job;
DROP FUNCTION IF EXISTS jobline_notify_jobs();
ALTER TABLE jobline_job RESET (autovacuum_vacuum_scale_factor, autovacuum_analyze_scale_factor);
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("jobline", "0001_initial")]
    operations = [migrations.RunPython(forwards, backwards)]
