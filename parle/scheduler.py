"""Priority admission to the compute engines (STT, TTS) shared by every session.

On a small box, running several sessions' Whisper and Kokoro calls at once only makes each
of them slower (threads fight for the same cores). `ComputeGate` runs at most `slots` calls
at once and, among the waiting ones, picks the most urgent: work that stands between a learner
and their first audio (speech recognition, the first spoken piece) before the rest of a reply
that is already playing.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

# Lower is more urgent.
URGENT = 0  # STT, and the first piece of a reply
LATER = 1  # later pieces: the learner is already hearing the reply


class ComputeGate:
    """At most `slots` holders at once; waiters are served by (priority, arrival)."""

    def __init__(self, slots: int) -> None:
        if slots < 1:
            raise ValueError("slots must be at least 1")
        self.slots = slots
        self._busy = 0
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    @property
    def waiting(self) -> int:
        return sum(1 for *_, future in self._waiters if not future.done())

    @asynccontextmanager
    async def slot(self, priority: int = LATER) -> AsyncIterator[None]:
        await self._acquire(priority)
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, priority: int) -> None:
        if self._busy < self.slots and not self.waiting:
            self._busy += 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (priority, next(self._order), future))
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self._release()  # granted just as we were cancelled: pass it on
            raise

    def _release(self) -> None:
        while self._waiters:
            _, _, future = heapq.heappop(self._waiters)
            if not future.done():
                future.set_result(None)  # the slot moves to this waiter
                return
        self._busy -= 1
