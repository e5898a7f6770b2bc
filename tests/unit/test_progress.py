"""Progress and captured logs: the throttle, the capped tail, masking, and the worker loop on
the in-memory store (no database)."""

from __future__ import annotations

import logging

import pytest

import jobline
from jobline.core.jobtypes import JobContext
from jobline.core.progress import LogTail, ProgressState, checked_fraction
from jobline.redact import masked_log_text
from jobline.testing import drain, memory_store
from jobline.worker.reports import JobReports, ReportLimits


@pytest.mark.parametrize("bad", [-0.01, 1.5, float("nan"), "0.5", None, True])
def test_a_fraction_outside_0_to_1_or_not_a_number_is_refused(bad):
    with pytest.raises(ValueError, match="progress fraction must be"):
        checked_fraction(bad)


def test_progress_outside_a_job_is_checked_and_goes_nowhere():
    context = JobContext(id=1, type="t", attempt=1, max_attempts=1, queue="q")
    context.progress(1, "done")  # no worker: nothing to report to, and no error
    with pytest.raises(ValueError, match="from 0 to 1"):
        context.progress(2)


def test_the_throttle_writes_once_per_interval_and_always_the_latest_value():
    state = ProgressState(interval=0.5)
    assert state.report(0.1, "a", now=10.0) == 0.0  # the first report is written at once
    assert state.report(0.2, "b", now=10.0) is None  # a write is on its way: it takes this
    assert state.take(now=10.0) == (0.2, "b")
    assert state.take(now=10.1) is None  # nothing new
    assert state.report(0.3, "c", now=10.1) == pytest.approx(0.4)  # due at 10.5, not before
    for n in range(1000):
        assert state.report(0.3 + n / 10_000, "d", now=10.2) is None
    assert state.take(now=10.5) == (0.3999, "d")  # the latest, never a stale one
    assert state.report(1.0, "e", now=11.5) == 0.0  # a quiet job's next report goes at once


def test_the_log_keeps_the_tail_within_its_line_cap_and_says_what_to_drop():
    tail = LogTail(max_lines=3, max_bytes=10_000)
    assert tail.add("INFO", "one", 0.0) is True  # first line waiting: ask for a write
    assert tail.add("INFO", "two", 0.0) is False
    lines, trim = tail.take()
    assert ([x.seq for x in lines], trim) == ([1, 2], None)
    for n in range(3, 9):
        tail.add("INFO", f"line {n}", 0.0)
    lines, trim = tail.take()
    # Lines 6-8 are the tail; 3-5 were dropped before ever being written, 1-2 from the store.
    assert ([x.seq for x in lines], trim) == ([6, 7, 8], 6)
    assert tail.first_kept - 1 == 5  # lines dropped


def test_the_log_keeps_the_tail_within_its_byte_cap_and_cuts_a_huge_line():
    tail = LogTail(max_lines=1000, max_bytes=10)
    tail.add("INFO", "12345", 0.0)
    tail.add("INFO", "6789", 0.0)
    tail.add("INFO", "abc", 0.0)  # 12 bytes: the first line goes
    lines, _ = tail.take()
    assert [x.text for x in lines] == ["6789", "abc"]
    tail.add("INFO", "é" * 20, 0.0)  # 40 bytes: cut to 10 (whole characters)
    lines, trim = tail.take()
    assert [x.text for x in lines] == ["é" * 5]
    assert trim == 4


def test_log_lines_are_masked_like_the_rest_of_jobline():
    assert masked_log_text("to https://bob:hunter2@db/x") == "to https://bob:****@db/x"
    assert masked_log_text("api_key=abcdef1234567890 ok") == "api_key=****7890 ok"
    assert masked_log_text('{"password": "pw"}') == '{"password": "****"}'
    assert masked_log_text("Authorization: Bearer abcdefghijklmnop") == (
        "Authorization: Bearer ****mnop"
    )
    assert masked_log_text("line 5 of 10") == "line 5 of 10"


def test_reports_are_taken_masked_and_forgotten_once_the_attempt_ended():
    reports = JobReports(ReportLimits(interval=0.5, max_lines=2, max_bytes=1000))
    job = JobContext(id=7, type="t", attempt=2, max_attempts=3, queue="q", reporter=reports)
    job.progress(0.5, "half")
    for n in range(3):
        reports.log(job, "INFO", f"line {n} password=hunter22", 1.0)
    reports.ended(job.id)
    taken = reports.take()
    assert [(p.job_id, p.fraction, p.message) for p in taken.progress] == [(7, 0.5, "half")]
    assert [(x.attempt, x.seq, x.text) for x in taken.lines] == [
        (2, 2, "line 1 password=****"),
        (2, 3, "line 2 password=****"),
    ]
    assert not reports.take()  # the attempt is over: nothing is kept for it


def test_a_job_s_progress_and_logs_reach_the_memory_store():
    with memory_store() as store:
        job = jobline.enqueue("chatty", {"lines": 30, "secret": "hunter2-secret-value"})
        sync = jobline.enqueue("chatty_sync", {"lines": 5})
        assert drain(2, timeout=30) == 2
        done = store.job(job.id)
        # The final value is written at completion whatever the throttle held back.
        assert (done.progress, done.progress_message) == (1.0, "line 30 of 30")
        lines = store.logs(job.id)
        assert len(lines) == done.log_lines == 32
        assert lines[1].text == "line 1 of 30" and lines[1].level == "INFO"
        assert all("hunter2-secret-value" not in x.text for x in lines)
        assert "https://bob:****@db.example/x password=****alue" in lines[0].text
        assert [x.text for x in store.logs(sync.id)][-1] == "line 5 of 5"  # from its thread


def test_the_worker_s_own_logs_and_logs_outside_jobs_are_not_captured(caplog):
    with memory_store() as store:
        logging.getLogger("tests.example_app.chatty").warning("not inside a job")
        job = jobline.enqueue("flaky", {"fail_times": 5})  # fails: the worker logs it
        drain(timeout=30)
        assert store.job(job.id).status == "failed"
        assert store.logs(job.id) == []
