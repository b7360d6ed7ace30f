"""Stop a rented GPU box (TensorDock) after it has served no one for a while.

Activity is every request or WebSocket other than the probes (`/health`, `/ready`, `/metrics`):
while one is open the box is busy, and the idle clock starts when the last one ends. A LiveKit
agent in a call keeps the box busy through its STT/TTS requests and metrics reports.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import httpx

log = logging.getLogger(__name__)

_PROBES = {"/health", "/ready", "/metrics"}


class ActivityTracker:
    """How many requests are open, and when the last one ended."""

    def __init__(self) -> None:
        self.open = 0
        self.last_active = time.monotonic()

    def idle_for(self) -> float:
        """Seconds since the box last served anyone (0 while someone is being served)."""
        return 0.0 if self.open else time.monotonic() - self.last_active


class ActivityMiddleware:
    """Pure ASGI (streams and WebSockets count until they close), probes excluded."""

    def __init__(self, app: Any, tracker: ActivityTracker) -> None:
        self.app = app
        self.tracker = tracker

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket") or scope.get("path") in _PROBES:
            await self.app(scope, receive, send)
            return
        self.tracker.open += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.tracker.open -= 1
            self.tracker.last_active = time.monotonic()


class TensorDockClient:
    """The one TensorDock API call PARLE makes: stop this instance."""

    def __init__(self, *, api_url: str, token: str, instance_id: str, attempts: int = 3) -> None:
        self._url = f"{api_url.rstrip('/')}/instances/{instance_id}/stop"
        self._headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        self._attempts = attempts

    async def stop_instance(self, *, retry_delay_s: float = 2.0) -> bool:
        """True once TensorDock accepted the stop; failures are retried, then logged."""
        async with httpx.AsyncClient(timeout=15.0) as client:
            for attempt in range(1, self._attempts + 1):
                try:
                    response = await client.post(self._url, headers=self._headers)
                    response.raise_for_status()
                    return True
                except httpx.HTTPError as exc:
                    status = getattr(getattr(exc, "response", None), "status_code", None)
                    log.warning(
                        "TensorDock stop failed",
                        extra={"attempt": attempt, "error": type(exc).__name__, "status": status},
                    )
                if attempt < self._attempts:
                    await asyncio.sleep(retry_delay_s * attempt)
        return False


class IdleStopper:
    """Checks the activity every `check_s`; after `idle_s` with nobody served, stops the box.
    Never while a request or WebSocket is open; a failed stop is tried again at the next check."""

    def __init__(
        self,
        activity: ActivityTracker,
        client: TensorDockClient,
        *,
        idle_s: float,
        check_s: float = 30.0,
        retry_delay_s: float = 2.0,
    ) -> None:
        self._activity = activity
        self._client = client
        self._idle_s = idle_s
        self._check_s = check_s
        self._retry_delay_s = retry_delay_s
        self.stopped = False

    async def run(self) -> None:
        log.info("idle stop armed", extra={"idle_minutes": round(self._idle_s / 60, 2)})
        while not self.stopped:
            await asyncio.sleep(self._check_s)
            idle = self._activity.idle_for()
            if idle < self._idle_s:
                continue
            log.warning("idle: stopping this instance", extra={"idle_s": round(idle)})
            self.stopped = await self._client.stop_instance(retry_delay_s=self._retry_delay_s)
            if self.stopped:
                log.warning("TensorDock accepted the stop; this box is shutting down")
