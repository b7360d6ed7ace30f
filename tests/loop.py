"""Checks that blocking inference runs off the event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def loop_ticks_during(work: Awaitable[T]) -> tuple[T, int]:
    """Await `work` while a 10 ms ticker runs; return its result and how often the loop ticked."""
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    try:
        result = await work
    finally:
        task.cancel()
    return result, ticks
