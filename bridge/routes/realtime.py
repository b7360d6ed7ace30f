"""`/v1/realtime` (and `/realtime`): the OpenAI Realtime-compatible WebSocket door
(docs/protocols.md, section 9). Thin: the session is `parle.realtime.session`; this checks the
key, the origin and the session id as `/ws/stream` does, and lends the session the server's
admission and metrics."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable

from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketDisconnect

from bridge.deps import get_services, key_refusal, refused_origin
from bridge.errors import ApiError
from bridge.inputs import check_session_id
from bridge.limits import SocketsFullError, socket_slot
from bridge.security import offered_subprotocols
from bridge.services import Services
from parle.realtime.events import error_event
from parle.realtime.session import RealtimeConfig, RealtimeSession
from parle.turn import TurnTimings

router = APIRouter()

PROTOCOL = "realtime"
# A client that stopped reading finds its close frame behind what it left unread: this long
# to read on to it, then the connection is left to uvicorn to drop.
CLOSE_WAIT_S = 5.0


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
        # A client may leave unread as much as it may send in one event.
        max_outbox_bytes=s.max_upload_bytes,
        max_audio_seconds=s.max_audio_seconds,
        min_audio_seconds=s.min_audio_seconds,
    )


@router.websocket("/v1/realtime")
@router.websocket("/realtime")
async def realtime(ws: WebSocket) -> None:
    """One realtime session per socket; `?model=` is accepted and ignored;
    `?intent=transcription` starts a transcription session (as `session.type`).

    Past `PARLE_MAX_CONNECTIONS` open WebSockets (every door's, `bridge.limits.socket_slot`),
    the socket is accepted only to be told why: an `error` event `too_many_connections`, then
    close 1013 (try again later). A browser page can read that close code; it cannot read the
    status of an upgrade refused over HTTP. A client that leaves its events unread
    (`RealtimeConfig.max_outbox_bytes`) is closed with 1008 and the reason `NOT_READING`."""
    services = get_services(ws)
    if await refused_origin(ws, services.settings):
        return
    # A browser that offered subprotocols drops a connection that does not pick one.
    subprotocol = "realtime" if "realtime" in offered_subprotocols(ws) else None
    try:
        with socket_slot(services):
            await ws.accept(subprotocol=subprotocol)
            await _serve(ws, services)
    except SocketsFullError as exc:
        await ws.accept(subprotocol=subprotocol)
        await _refuse(ws, exc.code, str(exc), 1013)


async def _serve(ws: WebSocket, services: Services) -> None:
    session_id = ""
    refusal = key_refusal(ws, services.settings)
    if refusal is None:
        try:
            session_id = check_session_id(ws.query_params.get("session_id"))
            pipeline = services.require_pipeline()
        except ApiError as exc:
            refusal = exc
    if refusal is not None:
        close_code = 1008 if refusal.status in (401, 422) else 1013
        await _refuse(ws, refusal.code, refusal.message, close_code)
        return

    tenant = services.tenant_of(ws)
    receiving: asyncio.Task[None] | None = None
    hung_up: list[tuple[int, str]] = []

    def hang_up(code: int, reason: str) -> None:
        services.metrics.errors.labels("client_not_reading").inc()
        hung_up.append((code, reason))
        if receiving is not None:
            receiving.cancel()

    session = RealtimeSession(
        pipeline,
        _Door(services, services.client_of(ws)),
        ws.send_text,
        memory=services.sessions.get(session_id, tenant=tenant),
        session_id=session_id,
        config=_config(services),
        transcription=ws.query_params.get("intent") == "transcription",
        tenant=tenant,
        hang_up=hang_up,
    )

    async def receive_events() -> None:
        with contextlib.suppress(WebSocketDisconnect):
            while not session.closed:
                message = await ws.receive()
                if message["type"] == "websocket.disconnect":
                    return
                raw = message.get("text")
                if raw is None:
                    raw = message.get("bytes") or b""
                await session.handle(raw)

    try:
        await session.start()
        # A task of its own: a session that hangs up must not wait for the client's next
        # message (one that stopped reading may have stopped sending too).
        receiving = asyncio.create_task(receive_events())
        await asyncio.wait([receiving])
        if not receiving.cancelled():
            receiving.result()
    finally:
        if receiving is not None:
            receiving.cancel()
        await session.close()
    if hung_up:
        code, reason = hung_up[0]
        with contextlib.suppress(Exception):  # gone, or still not reading (CLOSE_WAIT_S)
            async with asyncio.timeout(CLOSE_WAIT_S):
                await ws.close(code=code, reason=reason)


async def _refuse(ws: WebSocket, code: str, message: str, close_code: int) -> None:
    """A refused connection: its `error` event, then closed (the code as the reason)."""
    await ws.send_text(json.dumps(error_event(code, message)))
    await ws.close(code=close_code, reason=code)
