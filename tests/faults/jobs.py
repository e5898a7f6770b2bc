"""Job types of the fault tests, loaded by ``jobline`` processes through JOBLINE_IMPORT.

``stamp`` logs each attempt with the system-wide monotonic clock (one file per process), so
the tests can tell whether two attempts of one job ever ran at the same time.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import jobline


def _log(job_id: int, event: str) -> None:
    folder = Path(os.environ["JOBLINE_TEST_RUNLOG"])
    with open(folder / f"stamp-{os.getpid()}.log", "a") as log:
        log.write(f"{job_id} {event} {time.clock_gettime(time.CLOCK_MONOTONIC):.6f}\n")


@jobline.job(name="stamp", max_attempts=10)
async def stamp(seconds: float = 0.0) -> int:
    """Logs ``start``, then ``end`` when done or ``stop`` when cancelled."""
    job_id = jobline.current_job().id
    _log(job_id, "start")
    try:
        await asyncio.sleep(seconds)
    except BaseException:
        _log(job_id, "stop")
        raise
    _log(job_id, "end")
    return os.getpid()
