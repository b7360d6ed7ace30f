"""The small Protocols every engine implements, and the values they exchange."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, TypedDict

from parle.audio import AudioChunk, FloatAudio


class ChatMessage(TypedDict):
    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True, slots=True)
class Transcript:
    """What a transcriber heard. `text` is empty for silence, noise or hallucinations."""

    text: str
    language: str
    duration_s: float
    confidence: float

    @property
    def is_empty(self) -> bool:
        return not self.text.strip()


class Transcriber(Protocol):
    """16 kHz mono float32 audio in, a finished `Transcript` out."""

    def load(self) -> None: ...

    async def transcribe(self, audio: FloatAudio, *, language: str | None = None) -> Transcript: ...


class Synthesizer(Protocol):
    """Text in, a stream of PCM16 chunks out, at `sample_rate`."""

    sample_rate: int

    def load(self) -> None: ...

    def synthesize(
        self, text: str, *, voice: str | None = None, speed: float | None = None
    ) -> AsyncIterator[AudioChunk]: ...


class ChatModel(Protocol):
    """A streaming chat LLM; closing the iterator aborts the generation."""

    def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> AsyncIterator[str]: ...
