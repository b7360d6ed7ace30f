"""Real faster-whisper base (int8, CPU) on the shared learner clips."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness.wer import word_error_rate
from parle.audio import decode_audio
from parle.engines.whisper import WhisperTranscriber
from tests.loop import loop_ticks_during


def clean_clips(references: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(file, text) of clips whose reference WER is good; format variants included."""
    clips = []
    for ref in references:
        if ref.get("clean_for_assertions"):
            clips.append((ref["file"], ref["text"]))
        for variant in ref.get("variants", []):
            if variant.get("clean_for_assertions") and variant["kind"] != "espeak":
                clips.append((variant["file"], ref["text"]))
    return clips


def test_clean_clips_are_transcribed(
    whisper: WhisperTranscriber, references: list[dict[str, Any]], audio_dir: Path
) -> None:
    clips = clean_clips(references)
    assert len(clips) >= 20
    for file, text in clips:
        audio = decode_audio((audio_dir / file).read_bytes())
        result = asyncio.run(whisper.transcribe(audio))
        wer = word_error_rate(text, result.text)
        assert wer <= 0.25, f"{file}: {result.text!r} vs {text!r} (WER {wer:.2f})"
        assert result.language == "pt"
        assert 0.3 < result.confidence <= 1.0
        assert result.duration_s == pytest.approx(audio.size / 16_000)


def test_fitted_window_transcribes_as_the_full_one_without_running_away(
    whisper: WhisperTranscriber, references: list[dict[str, Any]], audio_dir: Path
) -> None:
    """The realtime door's decode (a window fitted to the turn) on the clean clips, each also
    with the silence a live turn carries around it: no decode that repeats itself (some did,
    with 1 s of silence after the speech), and about as accurate as the 30 s window (measured:
    mean WER 0.027 against 0.007, a word in fifty more)."""
    ran_away: list[str] = []
    original = whisper._decode_fitted

    def watched(audio: Any, language: str) -> Any:
        result = original(audio, language)
        if result is None:
            ran_away.append(current)
        return result

    fitted_wers, full_wers = [], []
    whisper._decode_fitted = watched  # type: ignore[method-assign]
    try:
        for file, text in clean_clips(references):
            clip = decode_audio((audio_dir / file).read_bytes())
            full_wers.append(word_error_rate(text, whisper.transcribe_sync(clip).text))
            for lead, tail in ((0.0, 0.0), (0.3, 0.2), (0.3, 0.5)):
                current = f"{file} +{lead}/{tail}s"
                audio = np.concatenate(
                    [np.zeros(int(lead * 16_000), np.float32), clip,
                     np.zeros(int(tail * 16_000), np.float32)]
                )  # fmt: skip
                result = whisper.transcribe_fitted_sync(audio, language="pt")
                wer = word_error_rate(text, result.text)
                assert wer <= 0.34, f"{current}: {result.text!r} vs {text!r} (WER {wer:.2f})"
                fitted_wers.append(wer)
    finally:
        del whisper._decode_fitted
    assert not ran_away
    assert np.mean(fitted_wers) <= np.mean(full_wers) + 0.03


@pytest.mark.parametrize(
    "file", ["scenarios/silence_10s.wav", "scenarios/pinknoise_5s.wav", "bad/short_50ms.wav"]
)
def test_silence_and_noise_give_an_empty_transcript(
    whisper: WhisperTranscriber, audio_dir: Path, file: str
) -> None:
    audio = decode_audio((audio_dir / file).read_bytes(), min_seconds=0)
    result = whisper.transcribe_sync(audio)
    assert result.text == "" and result.is_empty


@pytest.mark.parametrize(
    ("file", "text"),
    [
        ("scenarios/noise_lead3s_then_speech.wav", "A minha casa é muito bonito e grande."),
        (
            "scenarios/two_turn_20s.wav",
            "Olá, meu nome é Ana e eu sou dos Estados Unidos. Como se diz library em português?",
        ),
    ],
)
def test_speech_among_noise_and_pauses_is_heard(
    whisper: WhisperTranscriber, audio_dir: Path, file: str, text: str
) -> None:
    result = whisper.transcribe_sync(decode_audio((audio_dir / file).read_bytes()))
    assert word_error_rate(text, result.text) <= 0.25, result.text


async def test_transcribe_runs_off_the_event_loop(
    whisper: WhisperTranscriber, audio_dir: Path
) -> None:
    audio = decode_audio((audio_dir / "utterances/u01.wav").read_bytes())
    result, ticks = await loop_ticks_during(whisper.transcribe(audio))
    assert result.text
    assert ticks >= 10  # the loop kept running while Whisper decoded
