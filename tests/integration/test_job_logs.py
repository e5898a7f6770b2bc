"""Progress and captured logs through a real worker on SQLite and PostgreSQL: 1,000+ lines,
capped as documented (the tail of each attempt), secrets masked, progress live and final."""

from __future__ import annotations

from django.test import override_settings

import jobline
from jobline.models import Job, JobLog
from jobline.services.job_logs import job_log
from jobline.testing import drain, running_worker
from tests.conftest import ALL_DATABASES, wait_until

pytestmark = ALL_DATABASES

SECRET = "s3cr3t-Hunter2-value"


def _lines(alias: str, job_id: int) -> list[tuple[int, str, str]]:
    rows = JobLog.objects.using(alias).filter(job_id=job_id).order_by("attempt", "seq")
    return list(rows.values_list("seq", "level", "text"))


def test_a_job_logging_1200_lines_keeps_the_last_1000_masked_and_its_final_progress(alias):
    job = jobline.enqueue("chatty", {"lines": 1200, "secret": SECRET}, using=alias)
    assert drain(1, using=alias, timeout=60) == 1
    row = Job.objects.using(alias).get(pk=job.id)
    assert (row.status, row.progress, row.progress_message) == (
        "succeeded",
        1.0,
        "line 1200 of 1200",
    )
    lines = _lines(alias, job.id)
    # 1,202 lines logged (a secret line first and last): the last 1,000 are kept.
    assert row.log_lines == 1202 and len(lines) == 1000
    assert [seq for seq, _, _ in lines] == list(range(203, 1203))
    assert lines[0][1:] == ("INFO", "line 202 of 1200")
    assert lines[-1][1:] == ("WARNING", "done; token=****alue")
    assert not [text for _, _, text in lines if SECRET in text]
    shown = job_log(row, using=alias)
    assert (shown["dropped"], shown["truncated"], len(shown["lines"])) == (202, True, 1000)


@override_settings(JOBLINE_JOB_LOG_MAX_BYTES=4000, JOBLINE_CAPTURE_PRINTS=True)
def test_the_byte_cap_keeps_the_tail_and_prints_are_captured_from_sync_jobs(alias):
    job = jobline.enqueue("chatty_sync", {"lines": 1000, "secret": SECRET}, using=alias)
    assert drain(1, using=alias, timeout=60) == 1
    lines = _lines(alias, job.id)
    assert sum(len(text.encode()) for _, _, text in lines) <= 4000
    assert lines[-1][2] == "done; token=****alue"
    assert [seq for seq, _, _ in lines] == list(range(lines[0][0], 1004))  # an unbroken tail
    other = jobline.enqueue("chatty_sync", {"lines": 3}, using=alias)
    drain(1, using=alias, timeout=60)
    assert _lines(alias, other.id)[0] == (1, "PRINT", "printing from a sync job: 3 lines")


def test_progress_and_lines_show_while_the_job_runs(alias, tmp_path):
    job = jobline.enqueue("chatty", {"lines": 40, "phases": 2, "gate": str(tmp_path)}, using=alias)
    with running_worker(alias, heartbeat=0.5, lease=5):

        def halfway():
            row = Job.objects.using(alias).get(pk=job.id)
            return row.progress == 0.5 and row.log_lines == 20 and row

        row = wait_until(halfway, what="progress 0.5 and 20 lines written while running")
        assert row.status == "running" and row.progress_message == "line 20 of 40"
        assert len(_lines(alias, job.id)) == 20
        (tmp_path / "1").touch()  # the second half may run
        wait_until(
            lambda: Job.objects.using(alias).get(pk=job.id).status == "succeeded",
            what="the job finished",
        )
    assert len(_lines(alias, job.id)) == Job.objects.using(alias).get(pk=job.id).log_lines == 40
