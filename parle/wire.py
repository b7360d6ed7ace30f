"""The messages PARLE sends about a turn, each shape written once.

Every door speaks the same vocabulary: the WebSocket sends a message as JSON text, the SSE
stream sends its fields as an event named after its `type` (`stage` is called `status` there,
as old SSE clients expect), and the LiveKit agent sends `level` and `correction` on the room's
`parle.tutor` text stream. Only the audio differs per door (a base64 WAV in SSE, a binary
message announced by `audio` on the WebSocket), and `complete` carries the door's own extra
(`session_id` in SSE, the number of `chunks` on the WebSocket).
"""

from __future__ import annotations

import base64
import json
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from parle.turn import (
    AudioEvent,
    CommandEvent,
    CompleteEvent,
    CorrectionEvent,
    LevelEvent,
    ResponseDeltaEvent,
    ResponseEvent,
    StageEvent,
    TranscriptEvent,
    TurnEvent,
)
from parle.tutor.corrections import Correction


class StageMessage(BaseModel):
    type: Literal["stage"] = "stage"
    stage: Literal["stt", "llm", "tts"]


class TranscriptMessage(BaseModel):
    type: Literal["transcript"] = "transcript"
    transcript: str
    stt_ms: float


class LevelMessage(BaseModel):
    """The learner's level (smoothed over the session), this utterance's estimate, scores."""

    type: Literal["level"] = "level"
    level: str
    estimate: str
    scores: dict[str, float]


class CorrectionMessage(BaseModel):
    """The tutor's correction of this utterance, apart from the spoken reply."""

    type: Literal["correction"] = "correction"
    original: str
    corrected: str
    explanation: str
    kind: str

    @classmethod
    def of(cls, correction: Correction) -> CorrectionMessage:
        return cls(
            original=correction.original,
            corrected=correction.corrected,
            explanation=correction.explanation,
            kind=correction.kind,
        )


class CommandMessage(BaseModel):
    """This turn is a spoken command or a lesson's opening/end, answered without an LLM reply
    (what it set: `level`, `speed`, `scenario`)."""

    type: Literal["command"] = "command"
    command: str
    level: str | None = None
    speed: float | None = None
    scenario: str | None = None


class ResponseDeltaMessage(BaseModel):
    type: Literal["response_delta"] = "response_delta"
    delta: str


class ResponseMessage(BaseModel):
    type: Literal["response"] = "response"
    response: str
    llm_ms: float


class AudioAnnouncement(BaseModel):
    """WebSocket: announces the binary WAV message that follows it."""

    type: Literal["audio"] = "audio"
    index: int
    sample_rate: int
    bytes: int


class AudioMessage(BaseModel):
    """SSE: one playable WAV chunk, base64."""

    type: Literal["audio"] = "audio"
    chunk: str
    index: int


class CompleteMessage(BaseModel):
    type: Literal["complete"] = "complete"
    transcript: str
    response: str
    timing: dict[str, float | None]
    session_id: str | None = None  # SSE
    chunks: int | None = None  # WebSocket


class ErrorMessage(BaseModel):
    type: Literal["error"] = "error"
    message: str
    code: str


TurnMessage = (
    StageMessage
    | TranscriptMessage
    | LevelMessage
    | CorrectionMessage
    | CommandMessage
    | ResponseDeltaMessage
    | ResponseMessage
)


def turn_message(event: TurnEvent) -> TurnMessage | None:
    """The message for a turn event that every door sends alike; None for `audio` and
    `complete`, whose shape depends on the door (`sse_audio`/`ws_audio`, `complete`)."""
    if isinstance(event, StageEvent):
        return StageMessage(stage=event.stage)
    if isinstance(event, TranscriptEvent):
        return TranscriptMessage(transcript=event.text, stt_ms=event.stt_ms)
    if isinstance(event, LevelEvent):
        return LevelMessage(level=event.level, estimate=event.estimate, scores=event.scores)
    if isinstance(event, CorrectionEvent):
        return CorrectionMessage.of(event.correction)
    if isinstance(event, CommandEvent):
        return CommandMessage(
            command=event.command, level=event.level, speed=event.speed, scenario=event.scenario
        )
    if isinstance(event, ResponseDeltaEvent):
        return ResponseDeltaMessage(delta=event.delta)
    if isinstance(event, ResponseEvent):
        return ResponseMessage(response=event.text, llm_ms=event.llm_ms)
    return None


def complete(
    event: CompleteEvent, *, session_id: str | None = None, chunks: int | None = None
) -> CompleteMessage:
    return CompleteMessage(
        transcript=event.transcript,
        response=event.response,
        timing=event.timings.as_dict(),
        session_id=session_id,
        chunks=chunks,
    )


def sse_audio(event: AudioEvent) -> AudioMessage:
    chunk = base64.b64encode(event.chunk.to_wav()).decode("ascii")
    return AudioMessage(chunk=chunk, index=event.index)


def ws_audio(event: AudioEvent, wav: bytes) -> AudioAnnouncement:
    return AudioAnnouncement(index=event.index, sample_rate=event.chunk.sample_rate, bytes=len(wav))


# Names an SSE event differently from its message `type` (old SSE clients' names).
_SSE_NAMES = {"stage": "status"}


def sse_frame(message: BaseModel) -> str:
    """A message as one Server-Sent Event: named by its type, its other fields as data."""
    fields: dict[str, Any] = message.model_dump(exclude={"type"}, exclude_none=True)
    kind = str(getattr(message, "type", "message"))
    return (
        f"event: {_SSE_NAMES.get(kind, kind)}\ndata: {json.dumps(fields, ensure_ascii=False)}\n\n"
    )


def json_text(message: BaseModel) -> str:
    """A message as JSON text: a WebSocket text message, or a room text-stream message."""
    return message.model_dump_json(exclude_none=True)


def validation_problem(exc: ValidationError) -> str:
    """What is wrong with a client's message, told back to it: the first problem, and where."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ()))
    return f"{where}: {first['msg']}" if where else str(first["msg"])
