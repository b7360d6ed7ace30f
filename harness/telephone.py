"""A learner's clip as a phone line carries it: telephone band (300-3400 Hz), 8 kHz, G.711
mu-law, 20 ms packets some of which are lost; back at 16 kHz, as LiveKit's SIP bridge hands a
caller's audio to the room. For the phone tests and the phone benchmark."""

from __future__ import annotations

import numpy as np

from parle.audio import decode_audio, wav_bytes


def mu_law(samples: np.ndarray, mu: float = 255.0) -> np.ndarray:
    """G.711's mu-law companding at 8 bits a sample, there and back."""
    x = np.clip(samples, -1.0, 1.0)
    code = np.round(np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu) * 127)
    y = code / 127
    return np.asarray(np.sign(y) * np.expm1(np.abs(y) * np.log1p(mu)) / mu)


def band_pass(audio: np.ndarray, low: float = 300, high: float = 3400) -> np.ndarray:
    """The telephone band of 16 kHz `audio`: a 129-tap windowed-sinc FIR filter (8 ms). A
    brick-wall filter over the whole clip instead rings through its silences, and the agent's
    VAD then never hears the speech end."""
    n = np.arange(129) - 64
    kernel = 2 * high / 16_000 * np.sinc(2 * high / 16_000 * n)
    kernel -= 2 * low / 16_000 * np.sinc(2 * low / 16_000 * n)
    return np.convolve(audio, kernel * np.hamming(129), mode="same")


def telephone(clip: bytes, *, loss: float = 0.0, seed: int = 0) -> bytes:
    """`clip` (any format PARLE decodes) through a phone line, as a 16 kHz WAV: band-limited,
    8 kHz, mu-law, and `loss` of its 20 ms packets lost (silence: no concealment)."""
    narrow = mu_law(band_pass(decode_audio(clip))[::2])  # nothing left above 4 kHz
    if loss:
        packets = narrow[: narrow.size // 160 * 160].reshape(-1, 160)
        packets[np.random.default_rng(seed).random(len(packets)) < loss] = 0
        narrow = packets.reshape(-1)
    wide = np.interp(np.arange(narrow.size * 2) / 2, np.arange(narrow.size), narrow)
    return wav_bytes((np.clip(wide, -1, 1) * 32767).astype("<i2").tobytes(), 16_000)
