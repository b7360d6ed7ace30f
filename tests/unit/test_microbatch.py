"""MicroBatcher: concurrent requests share one call, a lone one waits at most the window,
requests that arrive during a call go together next, errors reach every caller."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from parle.microbatch import MicroBatcher


class Model:
    def __init__(self, seconds: float = 0.0) -> None:
        self.calls: list[list[int]] = []
        self.seconds = seconds
        self.fail = False
        self.threads: set[str] = set()

    def __call__(self, items: list[int]) -> list[int]:
        self.calls.append(items)
        self.threads.add(threading.current_thread().name)
        time.sleep(self.seconds)
        if self.fail:
            raise RuntimeError("model failed")
        return [item * 10 for item in items]


async def test_concurrent_requests_share_one_call_off_the_loop() -> None:
    model = Model()
    batcher = MicroBatcher(model, window_s=0.01)
    assert await asyncio.gather(*(batcher.submit(i) for i in range(5))) == [0, 10, 20, 30, 40]
    assert model.calls == [[0, 1, 2, 3, 4]]
    assert threading.main_thread().name not in model.threads


async def test_a_lone_request_waits_at_most_the_window() -> None:
    batcher = MicroBatcher(Model(), window_s=0.003)
    started = time.perf_counter()
    assert await batcher.submit(7) == 70
    assert time.perf_counter() - started < 0.05
    immediate = MicroBatcher(Model(), window_s=0)
    assert await immediate.submit(1) == 10


async def test_max_batch_and_arrivals_during_a_call_go_together_next() -> None:
    model = Model(seconds=0.1)
    batcher = MicroBatcher(model, window_s=0.005, max_batch=2)
    first = [asyncio.create_task(batcher.submit(i)) for i in range(2)]  # full: starts at once
    await asyncio.sleep(0.02)
    later = [asyncio.create_task(batcher.submit(i)) for i in range(2, 4)]  # during the call
    assert await asyncio.gather(*first, *later) == [0, 10, 20, 30]
    assert model.calls == [[0, 1], [2, 3]]


async def test_an_error_reaches_every_caller_and_the_batcher_goes_on() -> None:
    model = Model()
    batcher = MicroBatcher(model, window_s=0.005)
    model.fail = True
    results = await asyncio.gather(batcher.submit(1), batcher.submit(2), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)
    model.fail = False
    assert await batcher.submit(3) == 30


async def test_a_caller_cancelled_in_the_window_is_left_out() -> None:
    model = Model()
    batcher = MicroBatcher(model, window_s=0.05)
    gone = asyncio.create_task(batcher.submit(1))
    stays = asyncio.create_task(batcher.submit(2))
    await asyncio.sleep(0.01)
    gone.cancel()
    assert await stays == 20
    assert model.calls == [[2]]
    with pytest.raises(asyncio.CancelledError):
        await gone


async def test_it_holds_its_running_task_and_forgets_what_is_done() -> None:
    batcher = MicroBatcher(Model(seconds=0.05), window_s=0.0, max_batch=1)
    pending = asyncio.gather(*(batcher.submit(i) for i in range(3)))
    await asyncio.sleep(0.01)
    assert len(batcher._tasks) == 1  # the batch in flight is referenced, not left to the GC
    assert await pending == [0, 10, 20]
    assert not batcher._tasks
    batcher = MicroBatcher(Model(), window_s=0.0, max_batch=1)
    limit = batcher.batch_sizes.maxlen or 0
    await asyncio.gather(*(batcher.submit(i) for i in range(limit + 10)))
    assert len(batcher.batch_sizes) == limit  # bounded, however long the server runs


async def test_close_cancels_what_waits() -> None:
    batcher = MicroBatcher(Model(), window_s=10.0)
    waiting = asyncio.ensure_future(batcher.submit(1))
    await asyncio.sleep(0)
    batcher.close()
    with pytest.raises(asyncio.CancelledError):
        await waiting
