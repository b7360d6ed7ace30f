"""Test doubles that stand in for real engines, for asserting exact pipeline behaviour and for
measuring the pipeline's own overhead. Each mirrors a real engine that is tested on its own:
`InstantTranscriber` -> `WhisperTranscriber`, `InstantSynthesizer` -> `KokoroSynthesizer`,
`ScriptedChatModel` -> `OpenAIChatModel`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

from parle.audio import AudioChunk, FloatAudio
from parle.engines.base import ChatMessage, Transcript


class InstantTranscriber:
    """Hears `text` in any audio with at least one non-zero sample, nothing in digital silence."""

    def __init__(self, text: str = "Olá, tudo bem?", *, delay_s: float = 0.0) -> None:
        self.text = text
        self.delay_s = delay_s
        self.calls = 0

    def load(self) -> None:
        return None

    async def transcribe(self, audio: FloatAudio, *, language: str | None = None) -> Transcript:
        self.calls += 1
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        heard = self.text if bool(abs(audio).max() > 0) else ""
        return Transcript(heard, language or "pt", audio.size / 16_000, 1.0 if heard else 0.0)


class InstantSynthesizer:
    """10 ms of a constant tone per character, in one chunk, after `delay_s`."""

    sample_rate = 24_000

    def __init__(self, *, delay_s: float = 0.0) -> None:
        self.voices = ["pf_dora", "pm_alex"]
        self.delay_s = delay_s
        self.texts: list[str] = []
        self.speeds: list[float | None] = []
        self.cancelled = 0

    def load(self) -> None:
        return None

    async def synthesize(
        self, text: str, *, voice: str | None = None, speed: float | None = None
    ) -> AsyncIterator[AudioChunk]:
        self.texts.append(text)
        self.speeds.append(speed)
        try:
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        samples = len(text) * self.sample_rate // 100
        yield AudioChunk(b"\x00\x10" * samples, self.sample_rate)


class ScriptedChatModel:
    """Streams a fixed list of tokens, `delay_s` apart; records every request it gets."""

    def __init__(self, tokens: Sequence[str], *, delay_s: float = 0.0) -> None:
        self.tokens = list(tokens)
        self.delay_s = delay_s
        self.requests: list[list[ChatMessage]] = []
        self.closed_early = 0

    async def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> AsyncIterator[str]:
        self.requests.append(list(messages))
        sent = 0
        try:
            for token in self.tokens:
                if self.delay_s:
                    await asyncio.sleep(self.delay_s)
                yield token
                sent += 1
        finally:
            if sent < len(self.tokens):
                self.closed_early += 1
