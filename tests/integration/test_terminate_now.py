"""Terminate means now: a running job stops long before the worker's next heartbeat, on
SQLite (which has no NOTIFY) as on PostgreSQL."""

from __future__ import annotations

import time

import jobline
from jobline.models import Job
from jobline.services import actions
from jobline.testing import running_worker
from tests.conftest import ALL_DATABASES, wait_until

pytestmark = ALL_DATABASES

#: A heartbeat this slow would leave the job running for a minute: anything quicker is the
#: terminate request itself reaching the worker.
SLOW_HEARTBEAT = {"heartbeat": 60.0, "lease": 120.0}


def _status(alias: str, job_id: int) -> str:
    return Job.objects.using(alias).get(pk=job_id).status


def test_terminate__running_async_job_stops_without_waiting_for_a_heartbeat(alias):
    job = jobline.enqueue("slow", {"seconds": 300}, using=alias)
    with running_worker(alias, **SLOW_HEARTBEAT) as worker:
        wait_until(lambda: _status(alias, job.id) == "running")
        asked = time.monotonic()
        assert actions.cancel_jobs([job.id], using=alias) == 1
        wait_until(lambda: _status(alias, job.id) == "cancelled", timeout=45)
        took = time.monotonic() - asked
        wait_until(lambda: worker.processed == 1, timeout=45)
    print(f"terminated after {took:.3f} s on {alias}")
    row = Job.objects.using(alias).get(pk=job.id)
    assert (row.error, row.cancel_requested) == ("terminated on request", True)
