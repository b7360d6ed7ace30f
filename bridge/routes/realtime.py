"""`/v1/realtime` (and `/realtime`): the OpenAI Realtime-compatible WebSocket door
(docs/protocols.md, section 9). Thin: the session is `parle.realtime.session`; this checks the
key, the origin and the session id as `/ws/stream` does, and lends the session the server's
admission and metrics."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketDisconnect

from bridge.deps import get_services, key_refusal, refused_origin
from bridge.errors import ApiError
from bridge.inputs import check_session_id
from bridge.security import offered_subprotocols
from bridge.services import Services
from parle.realtime.events import error_event
from parle.realtime.session import RealtimeConfig, RealtimeSession
from parle.turn import TurnTimings

router = APIRouter()

PROTOCOL = "realtime"


class _Door:
    """The server's admission and metrics, as a realtime session uses them."""

    def __init__(self, services: Services, client: str) -> None:
        self.services = services
        self.client = client

    @contextlib.asynccontextmanager
    async def admit(
        self, quiet_cancel: Callable[[], bool], *, transcription: bool = False
    ) -> AsyncIterator[None]:
        ticket = await self.services.gate.enter(self.client)
        # A transcript alone is counted as `/v1/audio/transcriptions` counts its own.
        protocol = "transcription" if transcription else PROTOCOL
        async with self.services.admitted(ticket, protocol, quiet_cancel):
            yield

    def observe_turn(self, timings: TurnTimings) -> None:
        self.services.metrics.observe_turn(PROTOCOL, timings)

    def observe_speculation(self, outcome: str) -> None:
        self.services.metrics.speculations.labels(outcome).inc()


def _config(services: Services) -> RealtimeConfig:
    s = services.settings
    return RealtimeConfig(
        level=s.level,
        language=s.stt_language or None,
        speculation_ms=s.realtime_speculation_ms,
        partial_interval_ms=s.realtime_partial_interval_ms,
        events_per_s=s.realtime_events_per_s,
        max_event_bytes=s.max_upload_bytes,
        max_audio_seconds=s.max_audio_seconds,
        min_audio_seconds=s.min_audio_seconds,
    )


@router.websocket("/v1/realtime")
@router.websocket("/realtime")
async def realtime(ws: WebSocket) -> None:
    """One realtime session per socket; `?model=` is accepted and ignored;
    `?intent=transcription` starts a transcription session (as `session.type`)."""
    services = get_services(ws)
    if await refused_origin(ws, services.settings):
        return
    # A browser that offered subprotocols drops a connection that does not pick one.
    await ws.accept(subprotocol="realtime" if "realtime" in offered_subprotocols(ws) else None)
    session_id = ""
    refusal = key_refusal(ws, services.settings)
    if refusal is None:
        try:
            session_id = check_session_id(ws.query_params.get("session_id"))
            pipeline = services.require_pipeline()
        except ApiError as exc:
            refusal = exc
    if refusal is not None:
        await ws.send_text(json.dumps(error_event(refusal.code, refusal.message)))
        await ws.close(code=1008 if refusal.status in (401, 422) else 1013)
        return

    async def send(event: dict[str, Any]) -> None:
        await ws.send_text(json.dumps(event, ensure_ascii=False))

    session = RealtimeSession(
        pipeline,
        _Door(services, services.client_of(ws)),
        send,
        memory=services.sessions.get(session_id),
        session_id=session_id,
        config=_config(services),
        transcription=ws.query_params.get("intent") == "transcription",
    )
    services.open_sockets += 1
    services.metrics.active_sessions.labels("websocket").set(services.open_sockets)
    try:
        await session.start()
        while not session.closed:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                break
            raw = message.get("text")
            if raw is None:
                raw = message.get("bytes") or b""
            await session.handle(raw)
    except WebSocketDisconnect:
        pass
    finally:
        await session.close()
        services.open_sockets -= 1
        services.metrics.active_sessions.labels("websocket").set(services.open_sockets)
