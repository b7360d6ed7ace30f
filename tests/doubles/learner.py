"""A learner's recorded speech for tests with instant engines: a real clip (the speech gate of
the real engines, and of their instant doubles, rejects tones and noise)."""

from __future__ import annotations

import functools

import numpy as np

from parle.audio import STT_SAMPLE_RATE, decode_audio, wav_bytes
from tests.conftest import AUDIO


@functools.cache
def _clip() -> np.ndarray:
    return decode_audio((AUDIO / "utterances" / "u01.wav").read_bytes())


def speech_wav(seconds: float | None = None) -> bytes:
    """16 kHz PCM16 WAV of a learner speaking (u01: "Olá, meu nome é Ana..."), cut or repeated
    to `seconds` when given."""
    samples = _clip()
    if seconds is not None:
        wanted = int(STT_SAMPLE_RATE * seconds)
        samples = np.tile(samples, wanted // samples.size + 1)[:wanted]
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2")
    return wav_bytes(pcm.tobytes(), STT_SAMPLE_RATE)
