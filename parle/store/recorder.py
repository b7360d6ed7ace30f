"""`StoreRecorder`: the pipeline's `LearnerRecorder` over a `LearnerStore`.

Nothing a learner waits for touches the database except one bounded read when a session
starts (their level and profile, `READ_TIMEOUT_S` at most). Turns are put on a bounded queue
and written by one background task, in order; facts and vocabulary are worked out there too.
When the database is unreachable, sessions run as anonymous ones (in memory), each failure is
counted (`on_error`) and logged once per outage; a full queue drops the newest record (counted).
`stop()` writes everything already queued before it returns (the server's shutdown).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from parle.recording import TurnRecord
from parle.sessions import SessionMemory
from parle.store.store import LearnerStore, SessionRef, utcnow
from parle.tutor.levels import LevelTracker
from parle.tutor.profile import LearnerProfile, learner_note

log = logging.getLogger(__name__)

READ_TIMEOUT_S = 1.0  # the most a session's first reply waits for the learner's profile
RECONNECT_S = 30.0  # how often an unreachable database is tried again
RETENTION_CHECK_S = 3600.0
DRAIN_TIMEOUT_S = 30.0  # shutdown: the most time spent writing what is queued


@dataclass
class _Binding:
    learner_id: str
    ref: SessionRef


@dataclass(frozen=True)
class _Turn:
    ref: SessionRef
    record: TurnRecord
    at: dt.datetime


class StoreRecorder:
    """See the module docstring. Constructor cheap; `start()` connects, `stop()` drains."""

    def __init__(
        self,
        store: LearnerStore,
        *,
        queue_size: int = 1000,
        retention_days: float = 0,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        self.store = store
        self.retention_days = retention_days
        self._on_error = on_error
        self._queue: asyncio.Queue[SessionRef | _Turn] = asyncio.Queue(maxsize=queue_size)
        self._bindings: weakref.WeakKeyDictionary[SessionMemory, _Binding] = (
            weakref.WeakKeyDictionary()
        )
        self._tasks: list[asyncio.Task[None]] = []
        self.ready = False  # the database answered and is migrated
        self._healthy = True  # no failure since the last success (logs once per outage)
        self._last_attempt = 0.0
        self._closing = False

    # --- life ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect and migrate (bounded by the connection timeout); an unreachable database
        is a warning, tried again later, never a failed start."""
        await self._connect()
        self._tasks = [asyncio.create_task(self._write_loop(), name="parle-store-writer")]
        if self.retention_days > 0:
            self._tasks.append(asyncio.create_task(self._retention_loop(), name="parle-retention"))

    async def stop(self) -> None:
        """Write what is queued (at most `DRAIN_TIMEOUT_S`), then close."""
        self._closing = True
        if self._tasks and not self._tasks[0].done():
            try:
                await asyncio.wait_for(self._queue.join(), DRAIN_TIMEOUT_S)
            except TimeoutError:
                log.warning("learner store: shutdown before the queue was written",
                            extra={"pending": self._queue.qsize()})  # fmt: skip
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await self.store.close()

    async def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait until everything queued is written (a report reads its own writes)."""
        if not self._tasks:
            return self._queue.empty()
        try:
            await asyncio.wait_for(self._queue.join(), timeout_s)
        except TimeoutError:
            return False
        return True

    async def _connect(self) -> bool:
        self._last_attempt = time.monotonic()
        try:
            await self.store.start()
        except Exception as exc:
            self._failed("connect", exc)
            return False
        self.ready = True
        self._succeeded()
        log.info("learner store ready", extra={"backend": self.store.backend})
        return True

    # --- the pipeline's hook ------------------------------------------------------------------

    async def session_started(
        self, memory: SessionMemory, learner_id: str, session_key: str | None
    ) -> None:
        binding = self._bindings.get(memory)
        if binding is not None and binding.learner_id == learner_id:
            return
        profile = await self._profile(learner_id)
        if profile is not None:
            if profile.level is not None:
                memory.level = LevelTracker(profile.level)  # where they left off
            note = learner_note(profile)
            if note:
                memory.notes["learner"] = note
            else:
                memory.notes.pop("learner", None)
        else:
            memory.notes.pop("learner", None)
        start = memory.level.level if memory.level is not None else None
        ref = SessionRef(learner_id, session_key, utcnow(), start)
        self._bindings[memory] = _Binding(learner_id, ref)
        self._put(ref)

    def turn_finished(self, memory: SessionMemory, record: TurnRecord) -> None:
        binding = self._bindings.get(memory)
        if binding is None:
            return
        self._put(_Turn(binding.ref, record, utcnow()))

    async def _profile(self, learner_id: str) -> LearnerProfile | None:
        if not self.ready:
            return None
        try:
            async with asyncio.timeout(READ_TIMEOUT_S):
                await self._queue.join()  # their last session's turns first
                return await self.store.profile(learner_id)
        except Exception as exc:
            self._failed("read", exc)
            return None

    def _put(self, item: SessionRef | _Turn) -> None:
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            self._failed("queue_full", None)

    # --- the writer ---------------------------------------------------------------------------

    async def _write_loop(self) -> None:
        while True:
            item = await self._queue.get()
            try:
                await self._write(item)
            finally:
                self._queue.task_done()

    async def _write(self, item: SessionRef | _Turn) -> None:
        if not self.ready and (
            time.monotonic() - self._last_attempt < RECONNECT_S or not await self._connect()
        ):
            self._failed("write", None)
            return
        try:
            if isinstance(item, SessionRef):
                await self.store.open_session(item)
            else:
                await self.store.record_turn(item.ref, item.record, item.at)
        except Exception as exc:
            self._failed("write", exc)
        else:
            self._succeeded()

    async def _retention_loop(self) -> None:
        while True:
            if self.ready:
                before = utcnow() - dt.timedelta(days=self.retention_days)
                try:
                    gone = await self.store.purge(before)
                except Exception as exc:
                    self._failed("retention", exc)
                else:
                    log.info("learner store retention applied", extra={"learners_erased": gone})
            await asyncio.sleep(RETENTION_CHECK_S)

    # --- failures -----------------------------------------------------------------------------

    def _failed(self, op: str, exc: BaseException | None) -> None:
        if self._on_error is not None:
            self._on_error(op)
        if self._healthy:
            self._healthy = False
            # The error's type only: its message may hold a learner's words or a password.
            extra: dict[str, Any] = {"op": op}
            if exc is not None:
                extra["error_type"] = type(exc).__name__
            log.warning("learner store unavailable; learners are kept in memory", extra=extra)

    def _succeeded(self) -> None:
        if not self._healthy:
            self._healthy = True
            log.info("learner store available again")
