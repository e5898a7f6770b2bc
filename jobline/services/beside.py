"""What runs beside each scheduler: the pruner and the event relay."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from django.db import DEFAULT_DB_ALIAS

from jobline.services.retention import Pruner
from jobline.services.subscriptions import Relay


async def with_upkeep(main: Awaitable[None], using: str = DEFAULT_DB_ALIAS) -> None:
    """Await ``main`` (a scheduler's run) with a ``Pruner`` and a ``Relay`` beside it, both
    stopped when it ends."""
    helpers = (Pruner(using), Relay(using))
    tasks = [asyncio.create_task(h.run(), name=f"jobline-{type(h).__name__}") for h in helpers]
    try:
        await main
    finally:
        for helper in helpers:
            helper.stop()
        await asyncio.gather(*tasks)
