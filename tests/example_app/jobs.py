"""Job types used by the tests: a user's app with a jobs.py, found by autodiscovery."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator

import jobline


@jobline.job(name="add")
async def add(a: int, b: int = 1) -> int:
    return a + b


@jobline.job(name="sync_add")
def sync_add(a: int, b: int) -> dict[str, int]:
    return {"sum": a + b, "thread": 1}


@jobline.job(name="flaky", max_attempts=3, retry=jobline.RetryPolicy(base=0.05, jitter=0))
async def flaky(fail_times: int) -> str:
    """Fails its first ``fail_times`` attempts."""
    attempt = jobline.current_job().attempt
    if attempt <= fail_times:
        raise RuntimeError(f"boom on attempt {attempt}")
    return f"ok on attempt {attempt}"


@jobline.job(name="ask_retry", max_attempts=2)
async def ask_retry() -> None:
    if jobline.current_job().attempt == 1:
        raise jobline.Retry("not yet", delay=0)


@jobline.job(name="slow", timeout=30)
async def slow(seconds: float) -> float:
    await asyncio.sleep(seconds)
    return seconds


@jobline.job(name="slow_sync")
def slow_sync(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@jobline.job(name="record", max_attempts=5)
async def record(seconds: float = 0.0) -> int:
    """Append this job's id to a per-process file in $JOBLINE_TEST_RUNLOG, then wait."""
    job = jobline.current_job()
    folder = Path(os.environ["JOBLINE_TEST_RUNLOG"])
    with open(folder / f"{os.getpid()}.log", "a") as log:
        log.write(f"{job.id} start\n")
        log.flush()
        await asyncio.sleep(seconds)
        log.write(f"{job.id} end\n")
    return os.getpid()


@jobline.job(name="gpu_only", requires={"gpu"})
async def gpu_only() -> str:
    return "rendered"


class Point(BaseModel):
    x: int
    y: int = Field(0, ge=0)


class Scale(jobline.Job):
    """Class-based job with pydantic inputs and outputs."""

    name = "scale"

    class Inputs(BaseModel):
        point: Point
        factor: int = 2

    class Outputs(BaseModel):
        point: Point

    async def run(self) -> Outputs:
        p = self.inputs.point
        return self.Outputs(point=Point(x=p.x * self.inputs.factor, y=p.y * self.inputs.factor))


@dataclass
class Greeting:
    name: str
    punctuation: str = "!"


class Greet(jobline.Job):
    """Class-based sync job with dataclass inputs."""

    name = "greet"
    Inputs = Greeting

    def run(self) -> str:
        return f"hello {self.inputs.name}{self.inputs.punctuation}"


# -- pipelines ------------------------------------------------------------------------------


class Number(BaseModel):
    n: int


class Numbers(BaseModel):
    items: list[int]


@jobline.job(name="pl_add")
async def pl_add(n: int, plus: int = 1) -> Number:
    return Number(n=n + plus)


@jobline.job(name="pl_range")
async def pl_range(count: int) -> Numbers:
    return Numbers(items=list(range(count)))


@jobline.job(name="pl_square", max_attempts=1)
async def pl_square(x: int, fail_on: int | None = None) -> Number:
    if x == fail_on:
        raise jobline.Fail(f"refusing {x}")
    return Number(n=x * x)


@jobline.job(name="pl_total")
def pl_total(values: list[int]) -> Number:
    return Number(n=sum(values))


@jobline.job(name="pl_fail", max_attempts=2, retry=jobline.RetryPolicy(base=0.01, jitter=0))
async def pl_fail(n: int) -> Number:
    raise RuntimeError(f"cannot handle {n}")


@jobline.job(name="nul_text", max_attempts=1)
async def nul_text(fail: bool) -> str:
    """Text no database can store: a NUL character in its error, or in its outputs."""
    if fail:
        raise ValueError("bad \x00 byte")
    return "ok \x00 out"


@jobline.job(name="pl_maybe")
async def pl_maybe(n: int):  # no annotation: outputs unchecked until run time
    return {"n": n} if n else {}


@jobline.job(name="pl_record", max_attempts=10)
async def pl_record(n: int = 0, seconds: float = 0.0) -> Number:
    """``record`` for pipelines: logs its start and end in $JOBLINE_TEST_RUNLOG, returns n + 1."""
    await record.run(seconds)
    return Number(n=n + 1)


@jobline.job(name="pl_gate", max_attempts=1)
async def pl_gate(n: int) -> Number:
    """Fails while $JOBLINE_TEST_GATE is "closed"."""
    if os.environ.get("JOBLINE_TEST_GATE") == "closed":
        raise jobline.Fail("the gate is closed")
    return Number(n=n)


class Layout(BaseModel):
    columns: int = Field(1, ge=1, le=4, description="Columns per page.")
    landscape: bool = False


class Report(jobline.Job):
    """Build a report (the web UI's form tests: one field of each kind)."""

    name = "report"
    user_triggered = True

    class Inputs(BaseModel):
        title: str = Field(min_length=3, max_length=80, description="Shown on the first page.")
        pages: int = Field(10, ge=1, le=500)
        ratio: float = Field(0.5, gt=0, lt=1, title="Scale ratio")
        draft: bool = False
        format: Literal["pdf", "html", "csv"] = "pdf"
        recipients: list[str] = Field(default_factory=list, description="E-mail addresses.")
        layout: Layout = Field(default_factory=Layout)
        api_key: SecretStr | None = Field(None, description="Never shown again.")
        seconds: float = Field(0, ge=0, le=60, description="How long it takes.")

        @field_validator("title")
        @classmethod
        def not_untitled(cls, value: str) -> str:  # a rule the JSON Schema cannot carry
            if value.strip().lower() == "untitled":
                raise ValueError("give the report a real title")
            return value

    async def run(self) -> dict[str, object]:
        await asyncio.sleep(self.inputs.seconds)
        return {"pages": self.inputs.pages, "format": self.inputs.format}


@jobline.job(name="tests.example_app.jobs.NormalizeCustomerPostalAddresses")
async def normalize_addresses(seconds: float = 0.0) -> dict[str, float]:
    """A job type with a long dotted name, as apps name theirs (pipeline graphs draw it)."""
    await asyncio.sleep(seconds)
    return {"slept": seconds}


# Flow control (tests/integration/test_flow_processes.py).


def _times(event: str) -> None:
    """One JSON line per start and end, with this process's clock, in $JOBLINE_TEST_RUNLOG."""
    job = jobline.current_job()
    folder = Path(os.environ["JOBLINE_TEST_RUNLOG"])
    with open(folder / f"{os.getpid()}.times", "a") as out:
        out.write(f'{{"id": {job.id}, "event": "{event}", "t": {time.time()}}}\n')


@jobline.job(name="limited", limit=jobline.Limit(2, key="account"), max_attempts=3)
async def limited(account: str, seconds: float = 0.05, first_hold: float = 0.0) -> None:
    """At most 2 per account at once; ``first_hold`` more seconds on the first attempt only
    (a worker killed meanwhile leaves the slot to its lease)."""
    _times("start")
    hold = first_hold if jobline.current_job().attempt == 1 else 0.0
    await asyncio.sleep(seconds + hold)
    _times("end")


@jobline.job(name="rated", rate=jobline.Rate(20, per=1.0))
async def rated(n: int = 0) -> None:
    """At most 20 starts a second, fleet-wide."""


@jobline.job(name="unique_report", unique=jobline.Unique(300, key="report"))
async def unique_report(report: int, by: int = 0) -> None:
    """One live job per report."""


# Progress and captured logs (tests/unit/test_progress.py, tests/integration/test_job_logs.py,
# tests/browser/test_job_logs.py).

chatter = logging.getLogger("tests.example_app.chatty")
chatter.setLevel(logging.INFO)  # as an app's LOGGING would: its INFO lines reach the capture


def _line(i: int, lines: int) -> None:
    chatter.info("line %d of %d", i, lines)
    jobline.current_job().progress(i / lines, f"line {i} of {lines}")


def _door(gate: str, phases: int, lines: int, i: int) -> Path | None:
    """The file to wait for after line ``i`` (the end of a phase), if any."""
    per = max(1, lines // phases)
    return Path(gate, str(i // per)) if gate and i % per == 0 and i < lines else None


def _secret(secret: str, first: bool) -> None:
    if secret and first:
        chatter.warning("connecting to https://bob:%s@db.example/x password=%s", secret, secret)
    elif secret:
        chatter.warning("done; token=%s", secret)


@jobline.job(name="chatty", timeout=120)
async def chatty(lines: int = 10, phases: int = 1, gate: str = "", secret: str = "") -> int:
    """Log ``lines`` lines, reporting progress after each; with a ``gate`` folder, wait for
    the file ``<gate>/<n>`` before phase n + 1 of ``phases`` (the test opens it). A
    ``secret`` is logged first and last, in a URL, as ``password=...`` and ``token=...``."""
    _secret(secret, first=True)
    for i in range(1, lines + 1):
        _line(i, lines)
        if (door := _door(gate, phases, lines, i)) is not None:
            while not door.exists():
                await asyncio.sleep(0.02)
    _secret(secret, first=False)
    return lines


@jobline.job(name="chatty_sync", timeout=120)
def chatty_sync(lines: int = 10, phases: int = 1, gate: str = "", secret: str = "") -> int:
    """``chatty`` as a sync job, which also prints a line (JOBLINE_CAPTURE_PRINTS)."""
    print(f"printing from a sync job: {lines} lines")
    _secret(secret, first=True)
    for i in range(1, lines + 1):
        _line(i, lines)
        if (door := _door(gate, phases, lines, i)) is not None:
            while not door.exists():
                time.sleep(0.02)
    _secret(secret, first=False)
    return lines
