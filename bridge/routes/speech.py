"""The speech API the LiveKit agent (and any OpenAI-style client) uses: transcriptions and
streamed speech, OpenAI-compatible request shapes. Both go through the same admission gate,
compute slots, time limits and metrics as a turn."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from bridge.deps import ServicesDep
from bridge.errors import ApiError
from bridge.inputs import check_options, form_text, read_audio_form
from bridge.openapi import error_responses, multipart_body
from bridge.streaming import TurnStreamingResponse
from parle.audio import wav_header
from parle.errors import EngineTimeoutError
from parle.turn import TurnPipeline

router = APIRouter(prefix="/v1/audio")


@router.post(
    "/transcriptions",
    response_model=None,
    responses=error_responses(400, 401, 408, 413, 415, 422, 429, 500, 503, 504),
    openapi_extra=multipart_body(
        "file",
        "audio",
        {
            "model": "ignored",
            "language": "the speech's language, e.g. pt or pt-BR",
            "response_format": "json (default), text or verbose_json",
        },
    ),
)
async def transcriptions(
    request: Request, services: ServicesDep
) -> JSONResponse | PlainTextResponse:
    """OpenAI-compatible: multipart `file`, optional `model`, `language`, `response_format`
    (`json` default, `text`, `verbose_json`)."""
    pipeline = services.require_pipeline()
    data, form = await read_audio_form(request, "file", alias="audio")
    response_format = form_text(form, "response_format") or "json"
    if response_format not in ("json", "text", "verbose_json"):
        raise ApiError(
            422, "response_format must be json, text or verbose_json.", "bad_response_format"
        )
    options = check_options(
        voices=[],
        languages=services.languages(),
        voice=None,
        level=None,
        language=form_text(form, "language"),
    )
    samples = await pipeline.decode(data)
    ticket = await services.gate.enter(services.client_of(request))
    async with services.admitted(ticket, "transcription"):
        transcript = await pipeline.transcribe(samples, language=options.language)
    if response_format == "text":
        return PlainTextResponse(transcript.text)
    body: dict[str, object] = {"text": transcript.text}
    if response_format == "verbose_json":
        body |= {
            "task": "transcribe",
            "language": transcript.language,
            "duration": round(transcript.duration_s, 3),
            "confidence": transcript.confidence,
        }
    return JSONResponse(body)


class SpeechRequest(BaseModel):
    """OpenAI-compatible body of `POST /v1/audio/speech`."""

    model_config = ConfigDict(extra="ignore")

    input: str = Field(min_length=1)
    model: str | None = None
    voice: str | None = None
    speed: float | None = Field(default=None, ge=0.5, le=2.0)
    response_format: Literal["pcm", "wav"] = "wav"


@router.post(
    "/speech",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"audio/wav": {}, "audio/pcm": {}}, "description": "The speech."},
        **error_responses(400, 401, 408, 413, 422, 429, 500, 503, 504),
    },
)
async def speech(body: SpeechRequest, request: Request, services: ServicesDep) -> StreamingResponse:
    """Streams audio as it is synthesized, piece by piece: PCM16 mono at the engine's rate
    (`X-Sample-Rate`; `pcm`), or the same behind a streaming WAV header (`wav`)."""
    pipeline = services.require_pipeline()
    limit = services.settings.speech_max_chars
    if len(body.input) > limit:
        raise ApiError(
            413, f"input is too long (at most {limit} characters a request).", "input_too_long"
        )
    options = check_options(
        voices=services.voices(),
        languages=frozenset(),
        voice=body.voice,
        level=None,
        language=None,
        speed=body.speed,
    )
    ticket = await services.gate.enter(services.client_of(request))
    rate = pipeline.synthesizer.sample_rate
    stream = services.served(
        ticket,
        _speak(pipeline, body, options.voice, services.settings.speech_timeout_s),
        "speech",
    )
    # The first audio is awaited before the answer starts, so a failing engine is a clear
    # error status, not an empty 200.
    try:
        first = await anext(stream)
    except StopAsyncIteration:
        first = b""
    media = "audio/wav" if body.response_format == "wav" else "audio/pcm"
    return TurnStreamingResponse(
        _prepend(first, stream),
        on_close=ticket.release,
        media_type=media,
        headers={"X-Sample-Rate": str(rate), "Cache-Control": "no-cache"},
    )


async def _speak(
    pipeline: TurnPipeline, body: SpeechRequest, voice: str | None, timeout_s: float
) -> AsyncGenerator[bytes, None]:
    """The speech bytes (a WAV header first, with the first audio), within the speech time
    limit; the slot is released by TurnStreamingResponse however it ends."""
    header = wav_header(pipeline.synthesizer.sample_rate) if body.response_format == "wav" else b""
    try:
        async with asyncio.timeout(timeout_s):
            chunks = pipeline.speak_text(body.input, voice=voice, speed=body.speed)
            async with contextlib.aclosing(chunks):
                async for chunk in chunks:
                    yield header + chunk.pcm
                    header = b""
    except TimeoutError:
        raise EngineTimeoutError("Speech synthesis took too long and was stopped.") from None
    if header:
        yield header  # nothing to say: an empty WAV


async def _prepend(first: bytes, rest: AsyncGenerator[bytes, None]) -> AsyncGenerator[bytes, None]:
    if first:
        yield first
    async with contextlib.aclosing(rest):
        async for data in rest:
            yield data
