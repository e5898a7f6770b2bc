"""Unique jobs at enqueue: which rows become new jobs, which update a pending one.

Every driver runs the same decision: it locks the rows' unique keys, finds the live jobs
that match (``jobline.core.flow.Unique``: same key, a state in ``states``, created within
``seconds``), and hands them to :func:`plan_unique`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from jobline.core.states import JobStatus
from jobline.core.values import NewJob


@dataclass(frozen=True, slots=True)
class Match:
    """A live job with a row's unique key."""

    id: int
    status: str


@dataclass(slots=True)
class UniquePlan:
    insert: list[NewJob] = field(default_factory=list)  #: one row per key without a match
    #: queued matches that take a newer row's inputs and run time (``on_conflict="replace"``)
    replace: list[tuple[int, NewJob]] = field(default_factory=list)
    _answers: list[tuple[str, int | None, bool]] = field(default_factory=list)

    def answers(self, inserted: list[tuple[int, str | None]]) -> list[tuple[int, bool]]:
        """``(job id, created)`` per row, given what inserting ``self.insert`` returned."""
        ids = [job_id for job_id, _ in inserted]
        by_key = {unique_key(r): i for r, i in zip(self.insert, ids, strict=True)}
        return [
            (job_id if job_id is not None else by_key[key], created)
            for key, job_id, created in self._answers
        ]


def unique_key(row: NewJob) -> str:
    assert row.flow is not None and row.flow.unique_key is not None, "not a unique job"
    return row.flow.unique_key


def plan_unique(rows: Sequence[NewJob], matches: dict[str, Match]) -> UniquePlan:
    """Rows of one key in one batch resolve to one job: the first creates it (or finds the
    match), the rest return it; with ``replace`` the last row's inputs and run time win."""
    plan = UniquePlan()
    last: dict[str, NewJob] = {}
    for row in rows:
        last[unique_key(row)] = row
    new: dict[str, int] = {}  # key -> index in plan.insert
    replaced: set[str] = set()
    for row in rows:
        key = unique_key(row)
        assert row.flow is not None
        match = matches.get(key)
        if match is not None:
            plan._answers.append((key, match.id, False))
            if row.flow.replace and match.status == JobStatus.QUEUED and key not in replaced:
                plan.replace.append((match.id, last[key]))
                replaced.add(key)
        elif key in new:
            plan._answers.append((key, None, False))
        else:
            new[key] = len(plan.insert)
            plan.insert.append(last[key] if row.flow.replace else row)
            plan._answers.append((key, None, True))
    return plan
