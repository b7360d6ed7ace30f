"""The legacy WebSocket protocol, `/ws/stream`: binary messages in (one recorded utterance
each) and JSON control messages; JSON messages and binary WAV chunks out (docs/protocols.md).
Thin: the turn is `parle.turn.TurnPipeline`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import replace

from fastapi import APIRouter, WebSocket
from pydantic import BaseModel, ValidationError
from starlette.websockets import WebSocketDisconnect

from bridge import schemas
from bridge.deps import get_services, key_refusal, refused_origin
from bridge.errors import ApiError, api_error_for
from bridge.inputs import check_learner_id, check_options, check_session_id
from bridge.limits import SocketsFullError, socket_slot
from bridge.services import Services
from parle import wire
from parle.errors import ParleError
from parle.lessons import LessonAction
from parle.turn import AudioEvent, CompleteEvent, TurnOptions

log = logging.getLogger(__name__)
router = APIRouter()


class ClientGone(Exception):
    """Sending failed: the client closed the socket or the connection dropped."""


class _Connection:
    """One WebSocket session: its settings, the turn in progress, and ordered sending."""

    def __init__(self, ws: WebSocket, services: Services, session: str) -> None:
        self.ws = ws
        self.services = services
        self.session = session
        self.client = services.client_of(ws)
        self.options = TurnOptions()
        self.turn: asyncio.Task[None] | None = None
        self._send_lock = asyncio.Lock()

    async def send(self, message: BaseModel) -> None:
        async with self._send_lock:
            await self._send_text(wire.json_text(message))

    async def _send_text(self, text: str) -> None:
        try:
            await self.ws.send_text(text)
        except (WebSocketDisconnect, RuntimeError, OSError) as exc:
            raise ClientGone from exc

    async def send_audio(self, event: AudioEvent) -> None:
        wav = event.chunk.to_wav()
        async with self._send_lock:  # the announcement and its bytes stay together
            await self._send_text(wire.json_text(wire.ws_audio(event, wav)))
            try:
                await self.ws.send_bytes(wav)
            except (WebSocketDisconnect, RuntimeError, OSError) as exc:
                raise ClientGone from exc

    async def error(self, message: str, code: str) -> None:
        await self.send(wire.ErrorMessage(message=message, code=code))

    async def cancel_turn(self) -> bool:
        task, self.turn = self.turn, None
        if task is None or task.done():
            return False
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return True

    def start_turn(
        self,
        *,
        audio: bytes | None = None,
        text: str | None = None,
        lesson: LessonAction | None = None,
    ) -> None:
        self.turn = asyncio.create_task(self._run_turn(audio, text, time.perf_counter(), lesson))

    async def _run_turn(
        self, audio: bytes | None, text: str | None, started: float, lesson: LessonAction | None
    ) -> None:
        services = self.services
        try:
            try:
                await self._serve_turn(audio, text, started, lesson)
            except ApiError as exc:
                await self.error(exc.message, exc.code)
            except ParleError as exc:
                error = api_error_for(exc)
                await self.error(error.message, error.code)
            except ClientGone:
                raise
            except Exception:
                log.exception("ws turn failed")
                await self.error("Internal error; the turn was stopped.", "internal")
        except ClientGone:
            services.metrics.observe_failure("ws", "client_gone")

    async def _serve_turn(
        self, audio: bytes | None, text: str | None, started: float, lesson: LessonAction | None
    ) -> None:
        services = self.services
        pipeline = services.require_pipeline()
        samples = await pipeline.decode(audio) if audio is not None else None
        ticket = await services.gate.enter(self.client)
        events = services.turn_events(
            ticket,
            samples,
            session=self.session,
            options=self.options,
            started_at=started,
            protocol="ws",
            text=text,
            lesson=lesson,
        )
        chunks = 0
        async with contextlib.aclosing(events):
            async for event in events:
                if isinstance(event, AudioEvent):
                    await self.send_audio(event)
                    chunks += 1
                elif isinstance(event, CompleteEvent):
                    await self.send(wire.complete(event, chunks=chunks))
                elif (message := wire.turn_message(event)) is not None:
                    await self.send(message)

    async def handle_text(self, raw: str) -> None:
        try:
            message = schemas.client_message.validate_json(raw)
        except ValidationError as exc:
            await self.error(f"Bad message ({wire.validation_problem(exc)}).", "bad_message")
            return
        if isinstance(message, schemas.Ping):
            await self.send(schemas.ServerAck(type="pong"))
        elif isinstance(message, schemas.Cancel):
            await self.cancel_turn()
            await self.send(schemas.ServerAck(type="cancelled"))
        elif isinstance(message, schemas.Reset):
            await self.cancel_turn()
            self.services.sessions.reset(self.session, tenant=self.options.tenant)
            await self.send(schemas.ServerAck(type="reset"))
        elif isinstance(message, schemas.Config):
            try:
                chosen = check_options(
                    voices=self.services.voices(),
                    languages=self.services.languages(),
                    voice=message.voice,
                    level=message.level,
                    language=message.language,
                    speed=message.speed,
                    learner_id=message.learner_id,
                    scenario=message.scenario,
                    tenant=self.options.tenant,
                )
            except ApiError as exc:
                await self.error(exc.message, exc.code)
                return
            self.options = replace(
                self.options,
                **{k: v for k, v in vars(chosen).items() if v is not None and k != "sequential"},
            )
            current = {
                k: v for k, v in vars(self.options).items() if v is not None and k != "tenant"
            }
            await self.send(schemas.ServerAck(type="config", config=current))
            if chosen.scenario is not None:  # the tutor opens the lesson, in role
                await self.cancel_turn()
                self.start_turn(lesson="open")
        elif isinstance(message, schemas.End):
            await self.cancel_turn()
            self.start_turn(lesson="end")  # the closing recap, as a turn
        elif isinstance(message, schemas.TextInput):
            await self.cancel_turn()  # a new utterance interrupts the reply in progress
            self.start_turn(text=message.text)


@router.websocket("/ws/stream")
async def ws_stream(ws: WebSocket) -> None:
    """One session per socket: see the module docstring and `bridge.schemas`.

    Past `PARLE_MAX_CONNECTIONS` open WebSockets (every door's, `bridge.limits.socket_slot`),
    the socket is accepted only to be told why: an `error` message `too_many_connections`, then
    close 1013 (try again later), which a browser page can read (it cannot read the status of
    an upgrade refused over HTTP)."""
    services = get_services(ws)
    if await refused_origin(ws, services.settings):
        return
    try:
        with socket_slot(services):
            await ws.accept()
            await _serve(ws, services)
    except SocketsFullError as exc:
        await ws.accept()
        await _refuse(ws, exc.code, str(exc), 1013)


async def _serve(ws: WebSocket, services: Services) -> None:
    refusal = key_refusal(ws, services.settings)
    if refusal is None:
        try:
            session = check_session_id(ws.query_params.get("session_id"))
            learner = check_learner_id(ws.query_params.get("learner_id"))
        except ApiError as exc:
            refusal = exc
    if refusal is not None:
        await _refuse(ws, refusal.code, refusal.message, 1008)
        return
    connection = _Connection(ws, services, session)
    connection.options = replace(
        connection.options, learner_id=learner, tenant=services.tenant_of(ws)
    )
    try:
        await connection.send(schemas.ServerReady(session_id=session, voices=services.voices()))
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                break
            if message.get("bytes") is not None:
                data: bytes = message["bytes"]
                if len(data) > services.settings.max_upload_bytes:
                    limit = services.settings.max_upload_bytes // (1024 * 1024)
                    await connection.error(
                        f"The audio is too large (the limit is {limit} MB).", "too_large"
                    )
                    continue
                await connection.cancel_turn()  # barge-in: the learner spoke again
                connection.start_turn(audio=data)
            elif message.get("text") is not None:
                await connection.handle_text(message["text"])
    except (WebSocketDisconnect, ClientGone):
        pass
    finally:
        await connection.cancel_turn()


async def _refuse(ws: WebSocket, code: str, message: str, close_code: int) -> None:
    """A refused connection: its `error` message, then closed (the code as the reason)."""
    await ws.send_text(wire.json_text(wire.ErrorMessage(message=message, code=code)))
    await ws.close(code=close_code, reason=code)
