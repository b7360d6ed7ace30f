"""Admission: of turns (a bounded work queue, per-client concurrency and rate limits), and of
WebSockets (at most `PARLE_MAX_CONNECTIONS` open)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from parle.errors import ParleError

if TYPE_CHECKING:  # bridge.services imports this module
    from bridge.services import Services


class BusyError(ParleError):
    """Every engine slot is taken and the queue is full."""

    code = "busy"


class RateLimitedError(ParleError):
    """A client asked for more turns than its limit allows."""

    code = "rate_limited"

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class SocketsFullError(ParleError):
    """Every WebSocket slot (`PARLE_MAX_CONNECTIONS`) is taken."""

    code = "too_many_connections"


@contextlib.contextmanager
def socket_slot(services: Services) -> Iterator[None]:
    """One open WebSocket (`/ws/stream`, `/v1/realtime`) for the block: counted against
    `PARLE_MAX_CONNECTIONS` and in `parle_active_sessions{kind="websocket"}`. Taken before the
    socket is accepted: when every slot is held, `SocketsFullError` at once (counted in
    `parle_errors_total`), and the door refuses the socket.

    WebSockets are counted here, not by uvicorn's `limit_concurrency`, which let every upgrade
    through and then answered 503 to every HTTP request, `/ready` included, while they were
    open (`bridge.serving` bounds HTTP connections alone)."""
    if services.open_sockets >= services.settings.max_connections:
        services.metrics.errors.labels(SocketsFullError.code).inc()
        raise SocketsFullError("The server has too many open connections; try again later.")
    gauge = services.metrics.active_sessions.labels("websocket")
    services.open_sockets += 1
    gauge.set(services.open_sockets)
    try:
        yield
    finally:
        services.open_sockets -= 1
        gauge.set(services.open_sockets)


@dataclass
class _Client:
    active: int = 0
    recent: deque[float] = field(default_factory=deque)


class Ticket:
    """A held slot; `release()` is idempotent so every exit path may call it."""

    def __init__(self, gate: TurnGate, client: str) -> None:
        self._gate = gate
        self._client = client
        self._released = False

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._gate._release(self._client)


class TurnGate:
    """At most `max_active` turns run, at most `max_queued` wait; beyond that, `BusyError`.

    Per client: at most `client_max` turns at once and `per_minute` started a minute.
    """

    def __init__(
        self, *, max_active: int, max_queued: int, client_max: int, per_minute: int
    ) -> None:
        self.max_active = max_active
        self.max_queued = max_queued
        self.client_max = client_max
        self.per_minute = per_minute
        self._slots = asyncio.Semaphore(max_active)
        self._waiting = 0
        self._active = 0
        self._clients: dict[str, _Client] = {}

    @property
    def queue_depth(self) -> int:
        return self._waiting

    @property
    def active(self) -> int:
        return self._active

    async def enter(self, client: str) -> Ticket:
        """Wait for a slot or raise `BusyError`/`RateLimitedError` at once."""
        now = time.monotonic()
        state = self._clients.setdefault(client, _Client())
        while state.recent and state.recent[0] < now - 60:
            state.recent.popleft()
        if len(state.recent) >= self.per_minute:
            retry = 60 - (now - state.recent[0])
            self._forget_idle(client)
            raise RateLimitedError(
                f"Too many turns: at most {self.per_minute} a minute.", retry_after_s=retry
            )
        if state.active >= self.client_max:
            raise RateLimitedError(
                f"Too many turns at once: at most {self.client_max} per client.", retry_after_s=1
            )
        if self._slots.locked() and self._waiting >= self.max_queued:
            self._forget_idle(client)
            raise BusyError("The tutor is busy right now; please try again in a moment.")
        state.active += 1
        state.recent.append(now)
        self._waiting += 1
        try:
            await self._slots.acquire()
        except BaseException:
            state.active -= 1
            self._forget_idle(client)
            raise
        finally:
            self._waiting -= 1
        self._active += 1
        return Ticket(self, client)

    def _release(self, client: str) -> None:
        self._active -= 1
        self._slots.release()
        state = self._clients.get(client)
        if state is not None:
            state.active -= 1
            self._forget_idle(client)

    def _forget_idle(self, client: str) -> None:
        # Keep the table bounded: a client with nothing running and no recent turn goes.
        state = self._clients.get(client)
        if state is not None and state.active == 0 and not state.recent:
            del self._clients[client]
        if len(self._clients) > 10_000:
            cutoff = time.monotonic() - 60
            for key in [k for k, s in self._clients.items() if s.active == 0]:
                recent = self._clients[key].recent
                if not recent or recent[-1] < cutoff:
                    del self._clients[key]
