"""``Session.write_reports``: running jobs' progress and log lines, on every driver, with the
harness of ``test_store``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from jobline.core.states import JobStatus
from jobline.core.values import Completion, LogLine, LogTrim, ProgressReport, Reports
from jobline.models import Job, JobLog
from jobline.store.memory import MemoryStore
from tests.contract.test_store import ALL, LEASE, Harness, harness, row, worker

__all__ = ["harness"]  # the fixture, shared with test_store

AT = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)


def line(job_id: int, seq: int, text: str = "", attempt: int = 1) -> LogLine:
    return LogLine(
        job_id=job_id, attempt=attempt, seq=seq, level="INFO", text=text or f"l{seq}", created=AT
    )


def stored(h: Harness, job_id: int) -> dict[str, Any]:
    """The job's progress and line count, and its lines as ``(attempt, seq, level, text)``."""
    if isinstance(h.store, MemoryStore):
        job = h.store.job(job_id)
        row_ = {"progress": job.progress, "message": job.progress_message, "lines": job.log_lines}
        logs = [(x.attempt, x.seq, x.level, x.text) for x in h.store.logs(job_id)]
        return row_ | {"log": logs}
    alias = "postgres" if h.store.name == "postgresql" else "default"
    job = Job.objects.using(alias).get(pk=job_id)
    return {
        "progress": job.progress,
        "message": job.progress_message,
        "lines": job.log_lines,
        "log": list(
            JobLog.objects.using(alias)
            .filter(job_id=job_id)
            .order_by("attempt", "seq")
            .values_list("attempt", "seq", "level", "text")
        ),
    }


def run_session(h: Harness, steps) -> None:
    """Register worker ``w1``, claim what is queued, then ``steps(session)``."""

    async def go(session):
        await session.register_worker(worker("w1"), LEASE)
        await session.claim("w1", 10, ALL)
        await steps(session)

    h.session(go)


def test_progress_and_lines_land_on_the_running_job(harness):
    (job_id,) = harness.insert(row())

    async def steps(session):
        await session.write_reports(
            "w1",
            Reports(
                progress=[ProgressReport(job_id=job_id, fraction=0.4, message="page 4 of 10")],
                lines=[line(job_id, 1, "first"), line(job_id, 2, "second")],
            ),
        )
        # Progress alone keeps the line count; lines alone keep the progress.
        await session.write_reports("w1", Reports(lines=[line(job_id, 3, "third")]))
        await session.write_reports(
            "w1", Reports(progress=[ProgressReport(job_id=job_id, fraction=0.5, message="")])
        )

    run_session(harness, steps)
    got = stored(harness, job_id)
    assert (got["progress"], got["message"], got["lines"]) == (0.5, "", 3)
    assert got["log"] == [
        (1, 1, "INFO", "first"),
        (1, 2, "INFO", "second"),
        (1, 3, "INFO", "third"),
    ]


def test_a_line_written_twice_stays_once_and_trims_keep_the_tail(harness):
    (job_id,) = harness.insert(row())

    async def steps(session):
        await session.write_reports("w1", Reports(lines=[line(job_id, n) for n in (1, 2, 3)]))
        again = Reports(lines=[line(job_id, 3, "other"), line(job_id, 4)])
        await session.write_reports("w1", again)  # a write retried after an error
        trim = LogTrim(job_id=job_id, attempt=1, keep_from=3)
        await session.write_reports("w1", Reports(lines=[line(job_id, 5)], trims=[trim]))

    run_session(harness, steps)
    assert [(s, t) for _, s, _, t in stored(harness, job_id)["log"]] == [
        (3, "l3"),
        (4, "l4"),
        (5, "l5"),
    ]


def test_reports_of_a_job_no_longer_this_worker_s_leave_its_row_alone(harness):
    mine, finished = harness.insert(row(), row())

    async def steps(session):
        await session.complete("w1", [Completion(id=finished, status=JobStatus.SUCCEEDED)])
        progress = [
            ProgressReport(job_id=finished, fraction=1.0, message="late"),
            ProgressReport(job_id=mine, fraction=0.1, message="mine"),
        ]
        await session.write_reports("w2", Reports(progress=progress[1:]))  # not its job
        await session.write_reports("w1", Reports(progress=progress, lines=[line(finished, 1)]))

    run_session(harness, steps)
    assert stored(harness, mine)["progress"] == 0.1
    late = stored(harness, finished)
    # The row is left as it was; the line still belongs to the attempt that logged it.
    assert (late["progress"], late["lines"], late["log"]) == (None, 0, [(1, 1, "INFO", "l1")])


def test_lines_of_several_attempts_are_kept_apart(harness):
    (job_id,) = harness.insert(row())

    async def steps(session):
        lines = [line(job_id, 1, "a1", attempt=1), line(job_id, 1, "a2", attempt=2)]
        trim = LogTrim(job_id=job_id, attempt=2, keep_from=2)  # only attempt 2's
        await session.write_reports("w1", Reports(lines=lines))
        await session.write_reports("w1", Reports(trims=[trim]))

    run_session(harness, steps)
    assert stored(harness, job_id)["log"] == [(1, 1, "INFO", "a1")]
