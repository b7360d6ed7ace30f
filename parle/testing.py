"""Test doubles that stand in for real engines, for asserting exact pipeline behaviour and for
measuring the pipeline's own overhead. Each mirrors a real engine that is tested on its own:
`InstantTranscriber` -> `WhisperTranscriber`, `InstantSynthesizer` -> `KokoroSynthesizer`,
`ScriptedChatModel` -> `OpenAIChatModel`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Sequence

from parle.audio import AudioChunk, FloatAudio
from parle.engines.base import WHISPER_LANGUAGES, ChatMessage, Transcript


class InstantTranscriber:
    """Hears `text` wherever the real engines' speech gate (Silero VAD, as in
    `WhisperTranscriber`) finds at least `min_speech_ms` of speech, nothing elsewhere: a tone,
    noise or silence is no turn, as with the real engine. `vad=False` hears any non-zero
    sample (the overhead benchmark, which must not measure Silero)."""

    languages = WHISPER_LANGUAGES

    def __init__(
        self,
        text: str = "Olá, tudo bem?",
        *,
        delay_s: float = 0.0,
        vad: bool = True,
        min_speech_ms: int = 250,
    ) -> None:
        self.text = text
        self.delay_s = delay_s
        self.vad = vad
        self.min_speech_ms = min_speech_ms
        self.calls = 0
        self.failure: Exception | None = None  # raised by every call while set

    def load(self) -> None:
        return None

    def close(self) -> None:
        return None

    async def transcribe(self, audio: FloatAudio, *, language: str | None = None) -> Transcript:
        self.calls += 1
        if self.failure is not None:
            raise self.failure
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        heard = self.text if await asyncio.to_thread(self._hears_speech, audio) else ""
        return Transcript(heard, language or "pt", audio.size / 16_000, 1.0 if heard else 0.0)

    async def transcribe_fitted(
        self, audio: FloatAudio, *, language: str | None = None
    ) -> Transcript:
        return await self.transcribe(audio, language=language)

    def _hears_speech(self, audio: FloatAudio) -> bool:
        if not self.vad:
            return bool(abs(audio).max() > 0)
        from parle.engines.whisper import speech_region

        return speech_region(audio, self.min_speech_ms) is not None


class InstantSynthesizer:
    """10 ms of a constant tone per character, in one chunk, after `delay_s`."""

    sample_rate = 24_000

    def __init__(self, *, delay_s: float = 0.0) -> None:
        self.voices = ["pf_dora", "pm_alex"]
        self.delay_s = delay_s
        self.texts: list[str] = []
        self.speeds: list[float | None] = []
        self.cancelled = 0
        self.failure: Exception | None = None  # raised by every call while set

    def load(self) -> None:
        return None

    def close(self) -> None:
        return None

    async def synthesize(
        self, text: str, *, voice: str | None = None, speed: float | None = None
    ) -> AsyncGenerator[AudioChunk, None]:
        self.texts.append(text)
        self.speeds.append(speed)
        if self.failure is not None:
            raise self.failure
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
        self.max_tokens: list[int | None] = []

    async def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> AsyncGenerator[str, None]:
        self.requests.append(list(messages))
        self.max_tokens.append(max_tokens)
        for token in self.tokens:
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            yield token

    async def aclose(self) -> None:
        return None
