"""What clients send the server, and the WebSocket's own control answers.

Client -> server on `/ws/stream`: one binary message per utterance (a recorded blob), or one
of `ClientMessage`. Server -> client: a turn's messages (`parle.wire`, shared with every door)
and the control answers below as JSON text, and binary messages, each a complete playable WAV
chunk of the reply, announced by an `audio` message, in order.
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
    learner_id: str | None = None  # whose record this session joins (session-id rules)
    scenario: str | None = None  # a role-play lesson; naming one (re)starts it, opener first


class TextInput(_In):
    """A typed utterance: the turn skips speech recognition."""

    type: Literal["text"]
    text: Annotated[str, Field(min_length=1, max_length=2000)]


class End(_In):
    """End the lesson: the tutor closes it with a recap of its corrections (a turn)."""

    type: Literal["end"]


class Cancel(_In):
    """Barge-in: stop the reply in progress now."""

    type: Literal["cancel"]


ClientMessage = Annotated[
    Ping | Reset | Config | TextInput | Cancel | End, Field(discriminator="type")
]
client_message = TypeAdapter(ClientMessage)


class ServerReady(BaseModel):
    type: Literal["ready"] = "ready"
    session_id: str
    voices: list[str]


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
