"""The speech API the LiveKit agent (and any OpenAI-style client) uses: transcriptions and
streamed speech, OpenAI-compatible request shapes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from bridge.app import ApiError, check_options, form_text, read_audio_form, services_of
from bridge.legacy import TurnStreamingResponse
from bridge.security import client_id
from parle.audio import wav_header
from parle.cutter import SentenceCutter
from parle.engines.base import Synthesizer

router = APIRouter(prefix="/v1/audio")

MAX_SPEECH_CHARS = 4096


@router.post("/transcriptions", response_model=None)
async def transcriptions(request: Request) -> JSONResponse | PlainTextResponse:
    """OpenAI-compatible: multipart `file`, optional `model`, `language`, `response_format`
    (`json` default, `text`, `verbose_json`)."""
    services = services_of(request)
    pipeline = services.require_pipeline()
    data, form = await read_audio_form(request, "file", alias="audio")
    response_format = form_text(form, "response_format") or "json"
    if response_format not in ("json", "text", "verbose_json"):
        raise ApiError(
            422, "response_format must be json, text or verbose_json.", "bad_response_format"
        )
    options = check_options(services, voice=None, level=None, language=form_text(form, "language"))
    samples = await pipeline.decode(data)
    ticket = await services.gate.enter(client_id(request))
    try:
        transcript = await pipeline.transcriber.transcribe(samples, language=options.language)
    finally:
        ticket.release()
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

    input: str = Field(min_length=1, max_length=MAX_SPEECH_CHARS)
    model: str | None = None
    voice: str | None = None
    speed: float | None = Field(default=None, ge=0.5, le=2.0)
    response_format: Literal["pcm", "wav"] = "wav"


@router.post("/speech", response_class=StreamingResponse)
async def speech(body: SpeechRequest, request: Request) -> StreamingResponse:
    """Streams audio as it is synthesized, piece by piece: PCM16 mono at 24 kHz (`pcm`), or
    the same behind a streaming WAV header (`wav`)."""
    services = services_of(request)
    services.require_pipeline()
    assert services.synthesizer is not None
    options = check_options(services, voice=body.voice, level=None, language=None, speed=body.speed)
    ticket = await services.gate.enter(client_id(request))
    rate = services.synthesizer.sample_rate
    stream = _speak(services.synthesizer, body, options.voice)
    media = "audio/wav" if body.response_format == "wav" else "audio/pcm"
    return TurnStreamingResponse(
        stream,
        on_close=ticket.release,
        media_type=media,
        headers={"X-Sample-Rate": str(rate), "Cache-Control": "no-cache"},
    )


async def _speak(
    synthesizer: Synthesizer, body: SpeechRequest, voice: str | None
) -> AsyncIterator[bytes]:
    """The speech bytes; the slot is released by TurnStreamingResponse however it ends."""
    if body.response_format == "wav":
        yield wav_header(synthesizer.sample_rate)
    cutter = SentenceCutter()
    for piece in cutter.push(body.input) + cutter.flush():
        async for chunk in synthesizer.synthesize(piece, voice=voice, speed=body.speed):
            yield chunk.pcm
