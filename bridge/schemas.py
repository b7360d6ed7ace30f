"""The WebSocket protocol's JSON messages (`/ws/stream`), discriminated by `type`.

Client -> server: one binary message per utterance (a recorded blob), or one of
`ClientMessage`. Server -> client: the `Server*` messages below as JSON text, and binary
messages, each a complete playable WAV chunk of the reply, in order.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Ping(_In):
    type: Literal["ping"]


class Reset(_In):
    """Forget this session's conversation."""

    type: Literal["reset"]


class Config(_In):
    """Change voice, level, language or speaking speed for the next turns (acknowledged)."""

    type: Literal["config"]
    voice: str | None = None
    level: str | None = None
    language: str | None = None
    speed: float | None = None


class TextInput(_In):
    """A typed utterance: the turn skips speech recognition."""

    type: Literal["text"]
    text: Annotated[str, Field(min_length=1, max_length=2000)]


class Cancel(_In):
    """Barge-in: stop the reply in progress now."""

    type: Literal["cancel"]


ClientMessage = Annotated[Ping | Reset | Config | TextInput | Cancel, Field(discriminator="type")]
client_message = TypeAdapter(ClientMessage)


class ServerReady(BaseModel):
    type: Literal["ready"] = "ready"
    session_id: str
    voices: list[str]


class ServerStage(BaseModel):
    type: Literal["stage"] = "stage"
    stage: Literal["stt", "llm", "tts"]


class ServerTranscript(BaseModel):
    type: Literal["transcript"] = "transcript"
    transcript: str
    stt_ms: float


class ServerLevel(BaseModel):
    """The learner's level (smoothed over the session), this utterance's estimate, scores."""

    type: Literal["level"] = "level"
    level: str
    estimate: str
    scores: dict[str, float]


class ServerCorrection(BaseModel):
    """The tutor's correction of this utterance, apart from the spoken reply."""

    type: Literal["correction"] = "correction"
    original: str
    corrected: str
    explanation: str
    kind: str


class ServerResponseDelta(BaseModel):
    type: Literal["response_delta"] = "response_delta"
    delta: str


class ServerResponse(BaseModel):
    type: Literal["response"] = "response"
    response: str
    llm_ms: float


class ServerAudio(BaseModel):
    """Announces the binary WAV message that follows it."""

    type: Literal["audio"] = "audio"
    index: int
    sample_rate: int
    bytes: int


class ServerComplete(BaseModel):
    type: Literal["complete"] = "complete"
    transcript: str
    response: str
    timing: dict[str, float | None]
    chunks: int


class ServerError(BaseModel):
    type: Literal["error"] = "error"
    message: str
    code: str


class ServerAck(BaseModel):
    """Answers ping (`pong`), reset, config and cancel."""

    type: Literal["pong", "reset", "config", "cancelled"]
    config: dict[str, Any] | None = None


class AgentTurnReport(_In):
    """One voice-agent turn's latencies, reported by a LiveKit worker (`POST /api/agent/metrics`)
    so that the server's `/metrics` covers the rooms too. Seconds; a stage absent is omitted."""

    end_of_turn_s: float | None = Field(default=None, ge=0, le=600)
    stt_s: float | None = Field(default=None, ge=0, le=600)
    llm_ttft_s: float | None = Field(default=None, ge=0, le=600)
    tts_ttfb_s: float | None = Field(default=None, ge=0, le=600)
    end_to_end_s: float | None = Field(default=None, ge=0, le=600)
