"""`StoreRecorder`: the pipeline's `LearnerRecorder` over a `LearnerStore`.

Nothing a learner waits for touches the database except one bounded read when a session
starts (their level and profile, `READ_TIMEOUT_S` at most). Turns are put on a bounded queue
and written by one background task, in order; facts and vocabulary are worked out there too.
A full queue drops the newest record (counted).

An outage loses nothing the queue accepted. A failed write is tried again, with a backoff
doubling from `BACKOFF_MIN_S` to `BACKOFF_MAX_S`, for `RETRY_FOR_S`; what is still not written
then, and everything queued after it, goes to the journal (`parle.store.journal`: a local
file, bounded, one per database), replayed in order as soon as the database answers again,
or at the next start when the process ended first. A failure other than a busy database lets
go of the engine and connects again on the same backoff (migrating: a deleted SQLite file is
made anew, a corrupt one moved aside), without a restart. While the database is unreachable
sessions run as anonymous ones (in memory). Each outage is logged once, each record that
failed is counted (`on_error`), never with a learner's words. `state` says `ok`, `degraded`
(retrying, or records in the journal) or `unavailable` (no database). `stop()` writes, or
journals, everything already queued before it returns (the server's shutdown).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import enum
import logging
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sqlalchemy.exc import DataError, IntegrityError

from parle.recording import TurnRecord
from parle.sessions import SessionMemory
from parle.store import database
from parle.store.journal import (
    JOURNAL_MAX_BYTES,
    Item,
    Journal,
    PendingTurn,
    item_learner,
    item_time,
)
from parle.store.store import LearnerStore, SessionRef, utcnow
from parle.tutor.levels import LevelTracker
from parle.tutor.profile import LearnerProfile, learner_note

log = logging.getLogger(__name__)

READ_TIMEOUT_S = 1.0  # the most a session's first reply waits for the learner's profile
RETRY_FOR_S = 30.0  # how long a record is tried again before it goes to the journal
BACKOFF_MIN_S = 0.2  # the first wait before trying again (a write, a connection, a replay)
BACKOFF_MAX_S = 5.0  # ... doubling up to this
RETENTION_CHECK_S = 3600.0
DRAIN_TIMEOUT_S = 30.0  # shutdown: the most time spent writing what is queued

StoreState = Literal["ok", "degraded", "unavailable"]


class _Outcome(enum.Enum):
    WRITTEN = "written"
    FAILED = "failed"  # the database did not answer, or was busy: try again
    REFUSED = "refused"  # the database answered no, twice: trying again cannot help


@dataclass
class _Binding:
    learner_id: str
    ref: SessionRef


class StoreRecorder:
    """See the module docstring. Constructor cheap; `start()` connects, `stop()` drains.
    `journal`: the journal's file (None: none, what cannot be written is dropped and
    counted); the other numbers default to the module's constants."""

    def __init__(
        self,
        store: LearnerStore,
        *,
        queue_size: int = 1000,
        retention_days: float = 0,
        on_error: Callable[[str], None] | None = None,
        journal: Path | None = None,
        journal_max_bytes: int = JOURNAL_MAX_BYTES,
        retry_for_s: float = RETRY_FOR_S,
        backoff_min_s: float = BACKOFF_MIN_S,
        backoff_max_s: float = BACKOFF_MAX_S,
    ) -> None:
        self.store = store
        self.retention_days = retention_days
        self.retry_for_s = retry_for_s
        self.backoff_min_s = backoff_min_s
        self.backoff_max_s = backoff_max_s
        self._on_error = on_error
        self._queue: asyncio.Queue[Item] = asyncio.Queue(maxsize=queue_size)
        self._bindings: weakref.WeakKeyDictionary[SessionMemory, _Binding] = (
            weakref.WeakKeyDictionary()
        )
        self._tasks: list[asyncio.Task[None]] = []
        self.ready = False  # the database answered and is migrated
        self._healthy = True  # no failure since the last success (logs once per outage)
        self._connect_failing = False  # counts a connection outage once, not every attempt
        self._retrying = False  # the last write failed
        self._journal = None if journal is None else Journal(journal, journal_max_bytes)
        self._journal_lock = asyncio.Lock()  # the file: the writer, an erasure, stop()
        self._journaling = False  # logs the first record journaled in an outage, not each
        self._journal_lost = False  # logs the first record the journal could not take
        self._delay = backoff_min_s  # before the next connection or replay attempt
        self._next_try = 0.0  # time.monotonic() of that attempt
        self._current: Item | None = None  # being written: journaled if stop() cuts it off
        # Learner: when erased (their older records go); only while records are pending.
        self._erased: dict[str, dt.datetime] = {}
        self._closing = False
        store.on_delete.append(self._forget)

    @property
    def journal_items(self) -> int:
        """Records waiting in the journal for the database."""
        return 0 if self._journal is None else self._journal.items

    @property
    def state(self) -> StoreState:
        """`unavailable`: no database; `degraded`: writes are retried, or records wait in the
        journal; `ok`. Turns are answered in all three."""
        if not self.ready:
            return "unavailable"
        if self._retrying or self.journal_items:
            return "degraded"
        return "ok"

    # --- life ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """Take up the journal a previous process left, connect and migrate (bounded by the
        connection timeout); an unreachable database is a warning, tried again later, never a
        failed start."""
        if self._journal is not None:
            async with self._journal_lock:
                left = await asyncio.to_thread(self._journal.open)
            if left:
                log.info("learner store journal found; replayed once the database answers",
                         extra={"journal_items": left})  # fmt: skip
        await self._connect()
        self._tasks = [asyncio.create_task(self._write_loop(), name="parle-store-writer")]
        if self.retention_days > 0:
            self._tasks.append(asyncio.create_task(self._retention_loop(), name="parle-retention"))

    async def stop(self) -> None:
        """Write what is queued, or journal it when the database does not answer (at most
        `DRAIN_TIMEOUT_S`), then close."""
        self._closing = True  # the writer stops trying again: the journal keeps the rest
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
        # A write cut off above may have landed: the replay writes it once.
        left = ([] if self._current is None else [self._current]) + self._take_queued()
        self._current = None
        if left:
            await self._spill(left)
        await self.store.close()

    async def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait until everything queued is written (a report reads its own writes); False
        when some of it is not (yet) in the database."""
        if self._tasks:
            try:
                await asyncio.wait_for(self._queue.join(), timeout_s)
            except TimeoutError:
                return False
        return self._queue.empty() and not self.journal_items

    async def _connect(self) -> bool:
        try:
            await self.store.start()
        except Exception as exc:
            if not self._connect_failing:
                self._connect_failing = True
                self._count("connect")
            self._failed("connect", exc, count=False)
            return False
        self._connect_failing = False
        self.ready = True
        self._succeeded()
        log.info("learner store ready", extra={"backend": self.store.backend})
        return True

    async def _reset(self) -> None:
        """Let go of the engine: the next attempt connects (and migrates) anew."""
        self.ready = False
        with contextlib.suppress(Exception):
            await self.store.close()

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
        self._put(PendingTurn(binding.ref, record, utcnow()))

    async def _profile(self, learner_id: str) -> LearnerProfile | None:
        if not self.ready:
            return None
        try:
            async with asyncio.timeout(READ_TIMEOUT_S):
                if self.state == "ok":  # else the queue waits on the database: read as it is
                    await self._queue.join()  # their last session's turns first
                return await self.store.profile(learner_id)
        except Exception as exc:
            self._failed("read", exc)
            return None

    def _put(self, item: Item) -> None:
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            self._failed("queue_full", None)

    # --- the writer ---------------------------------------------------------------------------

    async def _write_loop(self) -> None:
        while True:
            await self._recover()
            wait: float | None = None  # for the next record only
            if not self._closing and (not self.ready or self.journal_items):
                wait = max(0.0, self._next_try - time.monotonic())
            try:
                async with asyncio.timeout(wait):
                    item = await self._queue.get()
            except TimeoutError:
                continue  # time to try the database again
            self._current = item
            try:
                await self._deliver(item)
            finally:
                self._queue.task_done()
            self._current = None  # not when cancelled: stop() journals it
            if not self._pending():
                self._erased.clear()  # no record left that an erasure could outdate

    async def _recover(self) -> None:
        """Connect again, and replay the journal, when due (on the backoff)."""
        if self._closing or (self.ready and not self.journal_items):
            return
        if time.monotonic() < self._next_try:
            return
        if (self.ready or await self._connect()) and (
            not self.journal_items or await self._replay()
        ):
            self._delay = self.backoff_min_s
            return
        self._next_try = time.monotonic() + self._delay
        self._delay = min(self._delay * 2, self.backoff_max_s)

    async def _deliver(self, item: Item) -> None:
        """Write `item`, trying again for `retry_for_s`; else journal it."""
        if self._erased_before(item):
            return
        if self.journal_items:  # older records wait there: this one goes after them
            await self._spill([item])
            return
        deadline = time.monotonic() + self.retry_for_s
        delay = self.backoff_min_s
        tried = False
        while True:
            # After a failure the write may have landed all the same (its answer lost): once.
            outcome = await self._attempt(item, once=tried)
            if outcome is not _Outcome.FAILED:
                return
            if not tried:
                self._count("write")
                tried = True
            if self._closing or time.monotonic() + delay > deadline:
                break
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.backoff_max_s)
        await self._spill([item])
        self._next_try = time.monotonic() + self._delay

    async def _attempt(self, item: Item, *, once: bool) -> _Outcome:
        refused = False
        while True:
            try:
                if not self.ready and not await self._connect():
                    self._retrying = True
                    return _Outcome.FAILED
                if isinstance(item, SessionRef):
                    await self.store.open_session(item)
                else:
                    await self.store.record_turn(item.ref, item.record, item.at, once=once)
            except (IntegrityError, DataError) as exc:
                # The database answered no: once may be a race (another server made the same
                # learner at the same moment), twice is this record.
                if not refused:
                    refused, once = True, True
                    # Its session's row may be gone (the learner erased, retention): found
                    # or made again, the record starts their new one.
                    (item if isinstance(item, SessionRef) else item.ref).id = None
                    continue
                self._count("refused")
                log.warning("learner store refused a record; it is dropped",
                            extra={"error_type": type(exc).__name__})  # fmt: skip
                return _Outcome.REFUSED
            except Exception as exc:
                self._retrying = True
                self._failed("write", exc, count=False)
                if not database.is_busy(exc):  # gone, replaced, corrupt, disconnected
                    await self._reset()
                return _Outcome.FAILED
            self._retrying = False
            self._delay = self.backoff_min_s  # the next outage's backoff starts over
            self._succeeded()
            return _Outcome.WRITTEN

    async def _replay(self) -> bool:
        """Write the journal, oldest first; True once it is empty. A record the database
        has already (a replay cut short) is not written again."""
        assert self._journal is not None
        while True:
            async with self._journal_lock:
                items, unreadable = await asyncio.to_thread(self._journal.load)
                if unreadable:  # rewritten without them: counted once, not at every attempt
                    await asyncio.to_thread(self._journal.replace, items)
            if unreadable:
                self._count("journal_unreadable", unreadable)
                log.warning("learner store journal: unreadable lines skipped",
                            extra={"lines": unreadable})  # fmt: skip
            newer: list[Item] = []  # queued meanwhile: journaled after these, in order
            for index, item in enumerate(items):
                if self._closing:
                    return False
                if self._queue.maxsize and self._queue.qsize() * 2 > self._queue.maxsize:
                    # A long replay: the queue goes to the journal rather than overflow.
                    newer += await self._spill(self._take_queued())
                if self._erased_before(item):
                    continue
                if await self._attempt(item, once=True) is _Outcome.FAILED:
                    if index:  # the file holds all of `items`: what is written goes
                        await self._rewrite_journal(items[index:] + newer)
                    return False
            await self._rewrite_journal(newer)
            log.info("learner store journal replayed", extra={"records": len(items)})
            if not self.journal_items:
                self._journaling = self._journal_lost = False
                return True

    async def _rewrite_journal(self, items: list[Item]) -> None:
        assert self._journal is not None
        items = [item for item in items if not self._erased_before(item)]
        async with self._journal_lock:
            await asyncio.to_thread(self._journal.replace, items)

    def _take_queued(self) -> list[Item]:
        taken: list[Item] = []
        while not self._queue.empty():
            taken.append(self._queue.get_nowait())
            self._queue.task_done()
        return taken

    async def _spill(self, items: list[Item]) -> list[Item]:
        """Into the journal; what does not fit (or with no journal: all) is dropped, counted.
        Returns what went in."""
        items = [item for item in items if not self._erased_before(item)]
        if not items:
            return []
        if self._journal is None:
            self._count("dropped", len(items))
            return []
        op, error = "journal_full", None
        try:
            async with self._journal_lock:
                dropped = await asyncio.to_thread(self._journal.append, items)
        except OSError as exc:  # a full disk, a folder gone: lost like a full journal's
            op, dropped, error = "journal_error", len(items), type(exc).__name__
        if dropped:
            self._count(op, dropped)
            if not self._journal_lost:
                self._journal_lost = True
                log.warning("learner store journal: records dropped",
                            extra={"op": op, "dropped": dropped, "error_type": error})  # fmt: skip
        if not self._journaling and self._journal.items:
            self._journaling = True
            log.info("learner store: records kept in the journal until the database answers",
                     extra={"journal_items": self._journal.items})  # fmt: skip
        return items[: len(items) - dropped]

    async def _forget(self, learner_id: str) -> None:
        """A learner is erased (`LearnerStore.delete`): their records not yet written go."""
        if not self._pending():
            return
        self._erased[learner_id] = utcnow()
        if self._journal is not None and self._journal.items:
            async with self._journal_lock:
                await asyncio.to_thread(self._journal.drop_learner, learner_id)

    def _pending(self) -> bool:
        """Records not yet in the database: being written, queued, or in the journal."""
        return self._current is not None or not self._queue.empty() or bool(self.journal_items)

    def _erased_before(self, item: Item) -> bool:
        erased = self._erased.get(item_learner(item))
        return erased is not None and item_time(item) <= erased

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

    def _count(self, op: str, n: int = 1) -> None:
        if self._on_error is not None:
            for _ in range(n):
                self._on_error(op)

    def _failed(self, op: str, exc: BaseException | None, *, count: bool = True) -> None:
        if count:
            self._count(op)
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
