from __future__ import annotations

import asyncio

import pytest

from parle.scheduler import LATER, URGENT, ComputeGate


async def test_urgent_work_overtakes_waiting_later_work() -> None:
    gate = ComputeGate(1)
    order: list[str] = []
    release_first = asyncio.Event()

    async def job(name: str, priority: int, hold: asyncio.Event | None = None) -> None:
        async with gate.slot(priority):
            order.append(name)
            if hold is not None:
                await hold.wait()

    first = asyncio.create_task(job("playing-reply-piece-1", LATER, release_first))
    await asyncio.sleep(0)
    queued = [
        asyncio.create_task(job("reply-piece-2", LATER)),
        asyncio.create_task(job("reply-piece-3", LATER)),
        asyncio.create_task(job("new-learner-stt", URGENT)),
    ]
    await asyncio.sleep(0.01)
    assert gate.waiting == 3
    release_first.set()
    await asyncio.gather(first, *queued)
    assert order == ["playing-reply-piece-1", "new-learner-stt", "reply-piece-2", "reply-piece-3"]


async def test_slots_bound_concurrency_and_cancelled_waiters_pass_their_turn() -> None:
    gate = ComputeGate(2)
    running = peak = 0

    async def job(seconds: float) -> None:
        nonlocal running, peak
        async with gate.slot():
            running += 1
            peak = max(peak, running)
            await asyncio.sleep(seconds)
            running -= 1

    tasks = [asyncio.create_task(job(0.02)) for _ in range(6)]
    await asyncio.sleep(0.005)
    tasks[4].cancel()  # a waiter whose client left
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert peak == 2
    assert isinstance(results[4], asyncio.CancelledError)
    async with asyncio.timeout(1):  # nothing leaked: both slots are free again
        async with gate.slot(), gate.slot():
            pass


def test_at_least_one_slot() -> None:
    with pytest.raises(ValueError):
        ComputeGate(0)
