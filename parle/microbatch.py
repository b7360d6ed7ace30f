"""Cross-session micro-batching: requests from different sessions that arrive within a few
milliseconds of each other share one model call (one encoder pass on the GPU)."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class MicroBatcher(Generic[Item, Result]):
    """Runs `run_batch` (blocking, in a worker thread) on the items submitted together.

    A request arriving when the model is idle waits at most `window_s` for company, then runs;
    requests arriving while a batch runs wait for it and then go together (the GPU would have
    serialized them anyway). At most `max_batch` items per call. A caller cancelled before its
    batch starts is left out of it; one cancelled later gets nothing (its result is dropped).
    `executor`: where `run_batch` runs (an engine that must stay on one thread passes its own);
    by default asyncio's worker threads.
    """

    def __init__(
        self,
        run_batch: Callable[[list[Item]], Sequence[Result]],
        *,
        window_s: float = 0.003,
        max_batch: int = 16,
        executor: Executor | None = None,
    ) -> None:
        self._run_batch = run_batch
        self._executor = executor
        self._window_s = window_s
        self._max_batch = max_batch
        self._pending: list[tuple[Item, asyncio.Future[Result]]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._running = False
        # The running batch's task: held so it is not collected mid-call, cancelled by close().
        self._tasks: set[asyncio.Task[None]] = set()
        # The sizes of the latest model calls (for metrics and tests), bounded.
        self.batch_sizes: deque[int] = deque(maxlen=1024)

    async def submit(self, item: Item) -> Result:
        """`item`'s result, computed in a batch with whatever arrived alongside it."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Result] = loop.create_future()
        self._pending.append((item, future))
        if not self._running:
            if len(self._pending) >= self._max_batch or self._window_s <= 0:
                self._start(loop)
            elif self._timer is None:
                self._timer = loop.call_later(self._window_s, self._start, loop)
        return await future

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._pending = [(item, f) for item, f in self._pending if not f.done()]
        if self._running or not self._pending:
            return
        batch, self._pending = self._pending[: self._max_batch], self._pending[self._max_batch :]
        self._running = True
        task = loop.create_task(self._run(batch, loop))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def close(self) -> None:
        """Fail what waits, cancel the batch in flight; the batcher takes no more work."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for _, future in self._pending:
            if not future.done():
                future.cancel()
        self._pending.clear()
        for task in list(self._tasks):
            task.cancel()

    async def _run(
        self, batch: list[tuple[Item, asyncio.Future[Result]]], loop: asyncio.AbstractEventLoop
    ) -> None:
        self.batch_sizes.append(len(batch))
        try:
            results = await loop.run_in_executor(
                self._executor, self._run_batch, [item for item, _ in batch]
            )
        except Exception as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
        else:
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)
        finally:
            self._running = False
            if self._pending:  # they waited for this batch already: no window for them
                self._start(loop)


def batch_sizes(limit: int) -> list[int]:
    """The batch sizes a fixed-shape model call is prepared for: powers of two below `limit`,
    and `limit` (a compiled or captured call per size, instead of one per count)."""
    sizes = [1]
    while sizes[-1] * 2 < limit:
        sizes.append(sizes[-1] * 2)
    return sorted({*sizes, limit})
