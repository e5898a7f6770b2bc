"""/metrics counts what an alert needs without reading every finished job."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

import jobline
from jobline.models import Job


def test_jobs_finished_in_the_last_minutes_are_counted_by_queue_and_status(ui):
    now = timezone.now()
    finished = [
        ("failed", "mail", now - timedelta(seconds=10)),
        ("failed", "mail", now - timedelta(minutes=4)),
        ("succeeded", "mail", now),
        ("failed", "mail", now - timedelta(hours=1)),  # outside the window
        ("failed", "reports", now - timedelta(days=3)),
    ]
    Job.objects.bulk_create(
        Job(
            type="noop",
            status=status,
            queue=queue,
            attempts=1,
            run_at=at,
            created_at=at,
            finished_at=at,
        )
        for status, queue, at in finished
    )
    jobline.enqueue("noop", queue="mail")  # queued: counted by jobline_jobs instead
    text = ui.get("/metrics").content.decode()
    assert 'jobline_jobs_finished_recently{queue="mail",status="failed"} 2.0' in text
    assert 'jobline_jobs_finished_recently{queue="mail",status="succeeded"} 1.0' in text
    assert 'jobline_jobs_finished_recently{queue="reports"' not in text
    assert 'jobline_jobs{queue="mail",status="queued"} 1.0' in text
