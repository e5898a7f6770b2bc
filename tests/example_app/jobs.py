"""Job types used by the tests: a user's app with a jobs.py, found by autodiscovery."""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, Field

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
