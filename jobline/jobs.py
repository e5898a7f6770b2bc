"""Built-in job types for smoke tests and benchmarks."""

from __future__ import annotations

import asyncio

from pydantic import Field

from jobline.dispatch import events, http, kafka  # noqa: F401  (built-ins)
from jobline.jobtypes import job


@job(name="noop", user_triggered=True)
async def noop() -> None:
    """Do nothing; measures the queue itself."""


@job(name="sleep", user_triggered=True)
async def sleep(seconds: float = Field(1.0, ge=0, le=86_400)) -> dict[str, float]:
    """Wait ``seconds`` without holding a thread."""
    await asyncio.sleep(seconds)
    return {"slept": seconds}
