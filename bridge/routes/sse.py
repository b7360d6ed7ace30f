"""The legacy HTTP+SSE protocol, `POST /api/stream-audio`: one recorded utterance in, the
turn's events out (docs/protocols.md). Thin: the turn is `parle.turn.TurnPipeline`."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncGenerator

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from bridge.deps import ServicesDep
from bridge.errors import ApiError, api_error_for
from bridge.inputs import (
    check_options,
    check_session_id,
    form_flag,
    form_text,
    read_lesson_form,
)
from bridge.openapi import error_responses, id_field, level_field, multipart_body
from bridge.streaming import TurnStreamingResponse
from parle import wire
from parle.errors import ParleError
from parle.lessons import LessonAction
from parle.turn import AudioEvent, CompleteEvent, ResponseEvent, StageEvent, TurnEvent

log = logging.getLogger(__name__)
router = APIRouter()

SSE_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",  # nginx: do not buffer the stream
    "Connection": "keep-alive",
}


@router.post(
    "/api/stream-audio",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "The turn's events."},
        **error_responses(400, 401, 408, 413, 415, 422, 429, 503),
    },
    openapi_extra=multipart_body(
        "audio",
        "file",
        {
            "session_id": id_field("1-128 of A-Z a-z 0-9 _ . : - ; a new session when absent"),
            "voice": "one of the synthesizer's voices",
            "level": level_field(),
            "language": "the speech's language, e.g. pt or pt-BR",
            "learner_id": id_field("who is speaking (session-id rules): their record is kept"),
            "scenario": "a role-play lesson's id (GET /api/scenarios)",
            "end": "true: end the lesson (closing recap); the audio is then optional",
        },
    ),
)
async def stream_audio(
    request: Request, services: ServicesDep, order: str = "stream"
) -> StreamingResponse:
    """One spoken turn as Server-Sent Events.

    Audio events may come before `response` (the reply is spoken while it is written);
    `?order=strict` holds them until `response` has gone, as the old server did.
    """
    started = time.perf_counter()
    pipeline = services.require_pipeline()
    if order not in ("stream", "strict"):
        raise ApiError(422, "order must be 'stream' or 'strict'.", "bad_order")
    data, form = await read_lesson_form(request, "audio", alias="file")
    session = check_session_id(form_text(form, "session_id"))
    options = check_options(
        voices=services.voices(),
        languages=services.languages(),
        voice=form_text(form, "voice"),
        level=form_text(form, "level"),
        language=form_text(form, "language"),
        learner_id=form_text(form, "learner_id"),
        scenario=form_text(form, "scenario"),
        tenant=services.tenant_of(request),
    )
    lesson: LessonAction | None = "end" if form_flag(form, "end") else None
    # Bad audio: a 4xx before any event.
    samples = await pipeline.decode(data) if data is not None else None
    ticket = await services.gate.enter(services.client_of(request))
    events = services.turn_events(
        ticket, samples, session=session, options=options, started_at=started, protocol="sse",
        lesson=lesson,
    )  # fmt: skip
    return TurnStreamingResponse(
        _sse_stream(events, session, strict=order == "strict"),
        on_close=ticket.release,
        media_type="text/event-stream",
        headers={**SSE_HEADERS, "X-Session-Id": session},
    )


async def _sse_stream(
    events: AsyncGenerator[TurnEvent, None], session: str, *, strict: bool
) -> AsyncGenerator[str, None]:
    held: list[str] = []  # strict order: audio (and the tts stage) wait for `response`
    response_sent = False
    try:
        async with contextlib.aclosing(events):
            async for event in events:
                if isinstance(event, AudioEvent):
                    frame = wire.sse_frame(wire.sse_audio(event))
                elif isinstance(event, CompleteEvent):
                    frame = wire.sse_frame(wire.complete(event, session_id=session))
                else:
                    message = wire.turn_message(event)
                    if message is None:
                        continue
                    frame = wire.sse_frame(message)
                waits = isinstance(event, AudioEvent) or (
                    isinstance(event, StageEvent) and event.stage == "tts"
                )
                if strict and waits and not response_sent:
                    held.append(frame)
                    continue
                yield frame
                if isinstance(event, ResponseEvent):
                    response_sent = True
                    for frame in held:
                        yield frame
                    held.clear()
    except ParleError as exc:
        error = api_error_for(exc)
        yield wire.sse_frame(wire.ErrorMessage(message=error.message, code=error.code))
    except Exception:
        log.exception("sse turn failed")
        yield wire.sse_frame(
            wire.ErrorMessage(message="Internal error; the turn was stopped.", code="internal")
        )
