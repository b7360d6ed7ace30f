"""The realtime door's events, as the OpenAI Realtime API (GA) names them.

Client events are validated here (pydantic, discriminated by `type`); fields PARLE does not
use are ignored, so an SDK's full `session.update` is accepted. Server events are plain dicts
built by `server_event`, each with a fresh `event_id`.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from parle.tenants import ID_PATTERN
from parle.turn import MAX_TYPED_CHARS


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class FormatIn(_Lenient):
    type: Literal["audio/pcm", "audio/pcmu", "audio/pcma"]
    rate: Literal[24000, 16000, 8000] | None = None


class TurnDetectionIn(_Lenient):
    type: Literal["server_vad"]
    threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    prefix_padding_ms: int | None = Field(default=None, ge=0, le=5000)
    silence_duration_ms: int | None = Field(default=None, ge=100, le=10_000)
    create_response: bool | None = None
    interrupt_response: bool | None = None


class TranscriptionIn(_Lenient):
    language: str | None = Field(default=None, max_length=16)


class AudioInputIn(_Lenient):
    format: FormatIn | None = None
    turn_detection: TurnDetectionIn | None = None  # null (sent explicitly): manual commits
    transcription: TranscriptionIn | None = None


class AudioOutputIn(_Lenient):
    format: FormatIn | None = None
    voice: str | None = Field(default=None, max_length=64)
    speed: float | None = Field(default=None, ge=0.5, le=2.0)


class AudioIn(_Lenient):
    input: AudioInputIn | None = None
    output: AudioOutputIn | None = None


class ParleIn(BaseModel):
    """PARLE's own session settings (`session.parle`): strict, unlike the rest."""

    model_config = ConfigDict(extra="forbid")

    level: (
        Literal["A1", "A2", "B1", "B2", "C1", "C2", "a1", "a2", "b1", "b2", "c1", "c2"] | None
    ) = None
    learner_id: str | None = Field(default=None, pattern=ID_PATTERN)
    scenario: str | None = Field(default=None, pattern=ID_PATTERN)


class SessionIn(_Lenient):
    type: Literal["realtime", "transcription"] | None = None
    audio: AudioIn | None = None
    parle: ParleIn | None = None


class _Event(_Lenient):
    event_id: str | None = Field(default=None, max_length=128)


class SessionUpdate(_Event):
    type: Literal["session.update"]
    session: SessionIn


class AudioAppend(_Event):
    type: Literal["input_audio_buffer.append"]
    audio: str


class AudioCommit(_Event):
    type: Literal["input_audio_buffer.commit"]


class AudioClear(_Event):
    type: Literal["input_audio_buffer.clear"]


class TextContentIn(_Lenient):
    type: Literal["input_text"]
    text: str = Field(min_length=1, max_length=MAX_TYPED_CHARS)


class UserItemIn(_Lenient):
    type: Literal["message"]
    role: Literal["user"]
    content: list[TextContentIn] = Field(min_length=1, max_length=8)


class ItemCreate(_Event):
    type: Literal["conversation.item.create"]
    item: UserItemIn


class ItemTruncate(_Event):
    type: Literal["conversation.item.truncate"]
    item_id: str = Field(max_length=128)
    content_index: int = Field(default=0, ge=0)
    audio_end_ms: int = Field(ge=0)


class ResponseCreate(_Event):
    type: Literal["response.create"]


class ResponseCancel(_Event):
    type: Literal["response.cancel"]
    response_id: str | None = Field(default=None, max_length=128)


ClientEvent = Annotated[
    SessionUpdate
    | AudioAppend
    | AudioCommit
    | AudioClear
    | ItemCreate
    | ItemTruncate
    | ResponseCreate
    | ResponseCancel,
    Field(discriminator="type"),
]
client_event: TypeAdapter[ClientEvent] = TypeAdapter(ClientEvent)


def server_event(kind: str, /, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "event_id": new_id("event"), **fields}


def error_event(code: str, message: str, *, event_id: str | None = None) -> dict[str, Any]:
    """OpenAI's error shape; `code` is PARLE's stable code (docs/protocols.md)."""
    kind = "server_error" if code in _SERVER_CODES else "invalid_request_error"
    error = {"type": kind, "code": code, "message": message, "param": None, "event_id": event_id}
    return server_event("error", error=error)


_SERVER_CODES = frozenset(
    {"internal", "engine", "engine_unavailable", "llm_unavailable", "timeout", "not_ready"}
    | {"stt_failed", "llm_failed", "tts_failed", "too_many_connections"}
)
