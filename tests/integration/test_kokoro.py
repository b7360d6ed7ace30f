"""Real Kokoro-82M int8 ONNX speaking Brazilian Portuguese, checked by real Whisper."""

from __future__ import annotations

import numpy as np
import pytest

from harness.wer import word_error_rate
from parle.audio import concat_chunks, decode_audio
from parle.engines.kokoro import KokoroSynthesizer
from parle.engines.whisper import WhisperTranscriber
from parle.errors import EngineInputError
from tests.loop import loop_ticks_during

TEXT = "Olá! Meu nome é Parle. Eu sou professora de português."


async def speak(kokoro: KokoroSynthesizer, text: str, **kwargs: object) -> np.ndarray:
    chunks = [chunk async for chunk in kokoro.synthesize(text, **kwargs)]  # type: ignore[arg-type]
    assert chunks and all(c.sample_rate == 24_000 for c in chunks)
    return np.frombuffer(concat_chunks(chunks).pcm, dtype="<i2").astype(np.float32) / 32767


async def test_speech_is_24khz_non_silent_and_plausibly_long(kokoro: KokoroSynthesizer) -> None:
    audio = await speak(kokoro, TEXT)
    seconds = audio.size / 24_000
    words = len(TEXT.split())
    assert words / 5.0 < seconds < words / 1.0  # between 1 and 5 words a second
    assert float(np.sqrt(np.mean(audio**2))) > 0.02
    assert float(np.abs(audio).max()) < 1.0


async def test_whisper_hears_what_kokoro_said(
    kokoro: KokoroSynthesizer, whisper: WhisperTranscriber
) -> None:
    chunks = [c async for c in kokoro.synthesize(TEXT)]
    heard = decode_audio(concat_chunks(chunks).to_wav())
    result = await whisper.transcribe(heard)
    assert word_error_rate(TEXT, result.text) <= 0.4, result.text


async def test_speed_changes_duration(kokoro: KokoroSynthesizer) -> None:
    normal = await speak(kokoro, "Eu gosto muito de café com leite.")
    slow = await speak(kokoro, "Eu gosto muito de café com leite.", speed=0.7)
    assert slow.size > normal.size * 1.2


async def test_voices_are_listed_and_unknown_ones_refused(kokoro: KokoroSynthesizer) -> None:
    assert kokoro.voice in kokoro.voices
    other = next(v for v in kokoro.voices if v != kokoro.voice)
    assert (await speak(kokoro, "Bom dia.", voice=other)).size > 0
    with pytest.raises(EngineInputError, match="Unknown voice"):
        await speak(kokoro, "Bom dia.", voice="xx_nobody")


async def test_nothing_speakable_gives_no_audio(kokoro: KokoroSynthesizer) -> None:
    assert [c async for c in kokoro.synthesize("...")] == []


async def test_synthesis_runs_off_the_event_loop(kokoro: KokoroSynthesizer) -> None:
    audio, ticks = await loop_ticks_during(speak(kokoro, TEXT))
    assert audio.size and ticks >= 10
