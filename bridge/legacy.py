"""The two legacy protocols existing clients speak: HTTP+SSE (`POST /api/stream-audio`) and
WebSocket (`/ws/stream`). Both are thin: the turn itself is `parle.turn.TurnPipeline`."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Request, WebSocket
from fastapi.responses import StreamingResponse
from pydantic import ValidationError
from starlette.websockets import WebSocketDisconnect

from bridge import schemas
from bridge.app import (
    ApiError,
    Services,
    api_error_for,
    check_options,
    check_session_id,
    form_text,
    read_audio_form,
    services_of,
)
from bridge.security import client_id, key_is_valid, presented_key
from parle.errors import ParleError
from parle.turn import (
    AudioEvent,
    CompleteEvent,
    CorrectionEvent,
    LevelEvent,
    ResponseDeltaEvent,
    ResponseEvent,
    StageEvent,
    TranscriptEvent,
    TurnEvent,
    TurnOptions,
)

log = logging.getLogger(__name__)
router = APIRouter()

SSE_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",  # nginx: do not buffer the stream
    "Connection": "keep-alive",
}


# --- HTTP + SSE -------------------------------------------------------------------------------


def sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


@router.post("/api/stream-audio", response_class=StreamingResponse)
async def stream_audio(request: Request, order: str = "stream") -> StreamingResponse:
    """One spoken turn as Server-Sent Events (see DESIGN.md section 4).

    Audio events may come before `response` (the reply is spoken while it is written);
    `?order=strict` holds them until `response` has gone, as the old server did.
    """
    started = time.perf_counter()
    services = services_of(request)
    pipeline = services.require_pipeline()
    if order not in ("stream", "strict"):
        raise ApiError(422, "order must be 'stream' or 'strict'.", "bad_order")
    data, form = await read_audio_form(request, "audio", alias="file")
    session = check_session_id(form_text(form, "session_id"))
    options = check_options(
        services,
        voice=form_text(form, "voice"),
        level=form_text(form, "level"),
        language=form_text(form, "language"),
    )
    samples = await pipeline.decode(data)  # bad audio: a 4xx before any event
    ticket = await services.gate.enter(client_id(request))
    events = services.turn_events(
        ticket, samples, session=session, options=options, started_at=started, protocol="sse"
    )
    stream = _sse_stream(events, session, strict=order == "strict")
    return TurnStreamingResponse(
        stream,
        on_close=ticket.release,
        media_type="text/event-stream",
        headers={**SSE_HEADERS, "X-Session-Id": session},
    )


class TurnStreamingResponse(StreamingResponse):
    """Runs `on_close` however the response ends, even if the client left before the body
    started (the stream's own `finally` would then never run)."""

    def __init__(self, content: Any, *, on_close: Any, **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self._on_close = on_close

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._on_close()
            await _close(self.body_iterator)


async def _sse_stream(
    events: AsyncIterator[TurnEvent], session: str, *, strict: bool
) -> AsyncIterator[str]:
    held: list[str] = []  # strict order: audio waits for `response`
    response_sent = False
    try:
        async for event in events:
            if isinstance(event, StageEvent):
                frame = sse("status", {"stage": event.stage})
                if strict and event.stage == "tts" and not response_sent:
                    held.append(frame)
                    continue
                yield frame
            elif isinstance(event, TranscriptEvent):
                yield sse("transcript", {"transcript": event.text, "stt_ms": event.stt_ms})
            elif isinstance(event, LevelEvent):
                yield sse("level", _level(event))
            elif isinstance(event, CorrectionEvent):
                yield sse("correction", event.correction.as_dict())
            elif isinstance(event, ResponseDeltaEvent):
                yield sse("response_delta", {"delta": event.delta})
            elif isinstance(event, ResponseEvent):
                yield sse("response", {"response": event.text, "llm_ms": event.llm_ms})
                response_sent = True
                for frame in held:
                    yield frame
                held.clear()
            elif isinstance(event, AudioEvent):
                chunk = base64.b64encode(event.chunk.to_wav()).decode("ascii")
                frame = sse("audio", {"chunk": chunk, "index": event.index})
                if strict and not response_sent:
                    held.append(frame)
                else:
                    yield frame
            elif isinstance(event, CompleteEvent):
                yield sse("complete", _complete(event, session))
    except ParleError as exc:
        yield sse("error", {"message": str(exc), "code": exc.code})
    except Exception:
        log.exception("sse turn failed")
        yield sse("error", {"message": "Internal error; the turn was stopped.", "code": "internal"})
    finally:
        # The ticket is released by the turn's own clean-up (and, should the body never
        # start, by TurnStreamingResponse).
        await _close(events)


def _level(event: LevelEvent) -> dict[str, Any]:
    return {"level": event.level, "estimate": event.estimate, "scores": event.scores}


def _complete(event: CompleteEvent, session: str) -> dict[str, Any]:
    return {
        "transcript": event.transcript,
        "response": event.response,
        "timing": event.timings.as_dict(),
        "session_id": session,
    }


async def _close(events: object) -> None:
    aclose = getattr(events, "aclose", None)
    if aclose is not None:
        with contextlib.suppress(Exception):
            await aclose()


# --- WebSocket --------------------------------------------------------------------------------


class _Connection:
    """One WebSocket session: its settings, the turn in progress, and ordered sending."""

    def __init__(self, ws: WebSocket, services: Services, session: str) -> None:
        self.ws = ws
        self.services = services
        self.session = session
        self.client = client_id(ws)
        self.options = TurnOptions()
        self.turn: asyncio.Task[None] | None = None
        self._send_lock = asyncio.Lock()

    async def send(self, message: Any) -> None:
        async with self._send_lock:
            await self.ws.send_text(message.model_dump_json(exclude_none=True))

    async def send_audio(self, event: AudioEvent) -> None:
        wav = event.chunk.to_wav()
        meta = schemas.ServerAudio(
            index=event.index, sample_rate=event.chunk.sample_rate, bytes=len(wav)
        )
        async with self._send_lock:  # the announcement and its bytes stay together
            await self.ws.send_text(meta.model_dump_json())
            await self.ws.send_bytes(wav)

    async def error(self, message: str, code: str) -> None:
        await self.send(schemas.ServerError(message=message, code=code))

    async def cancel_turn(self) -> bool:
        task, self.turn = self.turn, None
        if task is None or task.done():
            return False
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return True

    def start_turn(self, *, audio: bytes | None = None, text: str | None = None) -> None:
        self.turn = asyncio.create_task(self._run_turn(audio, text, time.perf_counter()))

    async def _run_turn(self, audio: bytes | None, text: str | None, started: float) -> None:
        services = self.services
        try:
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
            )
            chunks = 0
            async with contextlib.aclosing(events):
                async for event in events:
                    if isinstance(event, StageEvent):
                        await self.send(schemas.ServerStage(stage=event.stage))
                    elif isinstance(event, TranscriptEvent):
                        await self.send(
                            schemas.ServerTranscript(transcript=event.text, stt_ms=event.stt_ms)
                        )
                    elif isinstance(event, LevelEvent):
                        await self.send(schemas.ServerLevel(**_level(event)))
                    elif isinstance(event, CorrectionEvent):
                        fix = event.correction
                        await self.send(
                            schemas.ServerCorrection(
                                original=fix.original,
                                corrected=fix.corrected,
                                explanation=fix.explanation,
                                kind=fix.kind,
                            )
                        )
                    elif isinstance(event, ResponseDeltaEvent):
                        await self.send(schemas.ServerResponseDelta(delta=event.delta))
                    elif isinstance(event, ResponseEvent):
                        await self.send(
                            schemas.ServerResponse(response=event.text, llm_ms=event.llm_ms)
                        )
                    elif isinstance(event, AudioEvent):
                        await self.send_audio(event)
                        chunks += 1
                    elif isinstance(event, CompleteEvent):
                        await self.send(
                            schemas.ServerComplete(
                                transcript=event.transcript,
                                response=event.response,
                                timing=event.timings.as_dict(),
                                chunks=chunks,
                            )
                        )
        except ApiError as exc:
            await self.error(exc.message, exc.code)
        except ParleError as exc:
            error = api_error_for(exc)
            await self.error(error.message, error.code)
        except (WebSocketDisconnect, RuntimeError):
            pass  # the client went away mid-reply; the turn is over
        except Exception:
            log.exception("ws turn failed")
            await self.error("Internal error; the turn was stopped.", "internal")

    async def handle_text(self, raw: str) -> None:
        try:
            message = schemas.client_message.validate_json(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            detail = f"{where}: {first['msg']}" if where else str(first["msg"])
            await self.error(f"Bad message ({detail}).", "bad_message")
            return
        if isinstance(message, schemas.Ping):
            await self.send(schemas.ServerAck(type="pong"))
        elif isinstance(message, schemas.Cancel):
            await self.cancel_turn()
            await self.send(schemas.ServerAck(type="cancelled"))
        elif isinstance(message, schemas.Reset):
            await self.cancel_turn()
            self.services.sessions.reset(self.session)
            await self.send(schemas.ServerAck(type="reset"))
        elif isinstance(message, schemas.Config):
            try:
                chosen = check_options(
                    self.services,
                    voice=message.voice,
                    level=message.level,
                    language=message.language,
                    speed=message.speed,
                )
            except ApiError as exc:
                await self.error(exc.message, exc.code)
                return
            self.options = replace(
                self.options,
                **{k: v for k, v in vars(chosen).items() if v is not None and k != "sequential"},
            )
            current = {k: v for k, v in vars(self.options).items() if v is not None}
            await self.send(schemas.ServerAck(type="config", config=current))
        elif isinstance(message, schemas.TextInput):
            await self.cancel_turn()  # a new utterance interrupts the reply in progress
            self.start_turn(text=message.text)


@router.websocket("/ws/stream")
async def ws_stream(ws: WebSocket) -> None:
    """Binary messages in (one utterance each) and JSON control messages; JSON messages and
    binary WAV chunks out (see `bridge.schemas`)."""
    services = services_of(ws)
    await ws.accept()
    if not key_is_valid(services.settings.api_key_list, presented_key(ws)):
        await ws.send_text(
            schemas.ServerError(
                message="A valid API key is required.", code="unauthorized"
            ).model_dump_json()
        )
        await ws.close(code=1008)
        return
    try:
        session = check_session_id(ws.query_params.get("session_id"))
    except ApiError as exc:
        await ws.send_text(
            schemas.ServerError(message=exc.message, code=exc.code).model_dump_json()
        )
        await ws.close(code=1008)
        return
    connection = _Connection(ws, services, session)
    services.open_sockets += 1
    services.metrics.active_sessions.labels("websocket").set(services.open_sockets)
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
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        await connection.cancel_turn()
        services.open_sockets -= 1
        services.metrics.active_sessions.labels("websocket").set(services.open_sockets)
