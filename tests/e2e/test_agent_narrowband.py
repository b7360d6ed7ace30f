"""Phone audio: a learner clip band-limited to 8 kHz telephony is still understood, whether the
STT plugin gets it at 8 kHz or, as in a room, upsampled by the SDK to the session's 16 kHz."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from livekit import rtc

from agent.plugins import ParleSTT
from harness.wer import word_error_rate
from parle.audio import decode_audio

SAID = "Olá, meu nome é Ana e eu sou dos Estados Unidos."


def resample(pcm: np.ndarray, src: int, dst: int) -> np.ndarray:
    resampler = rtc.AudioResampler(src, dst, quality=rtc.AudioResamplerQuality.HIGH)
    frames = resampler.push(rtc.AudioFrame(pcm.tobytes(), src, 1, pcm.size)) + resampler.flush()
    return np.concatenate([np.frombuffer(f.data, dtype=np.int16) for f in frames])


def phone_line(clip: Path) -> np.ndarray:
    """The clip as a phone line carries it: 8 kHz, 16-bit."""
    audio = (decode_audio(clip.read_bytes()) * 32767).astype(np.int16)
    return resample(audio, 16_000, 8_000)


def frames_at(pcm: np.ndarray, rate: int) -> list[rtc.AudioFrame]:
    pcm = pcm if rate == 8_000 else resample(pcm, 8_000, rate)
    step = rate // 50
    return [
        rtc.AudioFrame(pcm[i : i + step].tobytes(), rate, 1, pcm[i : i + step].size)
        for i in range(0, pcm.size, step)
    ]


@pytest.mark.parametrize("rate", [8_000, 16_000])
async def test_narrowband_speech_is_transcribed(server: str, audio_dir: Path, rate: int) -> None:
    line = phone_line(audio_dir / "utterances/u01.wav")
    plugin = ParleSTT(server_url=server)
    event = await plugin.recognize(frames_at(line, rate))
    await plugin.aclose()
    assert word_error_rate(SAID, event.alternatives[0].text) <= 0.3
