"""Speaking speed without a pitch change (WSOLA), streamed."""

from __future__ import annotations

import numpy as np
import pytest

from parle.timestretch import TimeStretcher

RATE = 24_000


def tone(seconds: float, hz: float = 220.0) -> np.ndarray:
    t = np.arange(int(RATE * seconds)) / RATE
    return (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def pitch(audio: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    return float(np.argmax(spectrum) * RATE / len(audio))


def stretch(audio: np.ndarray, speed: float, chunk: int | None = None) -> np.ndarray:
    stretcher = TimeStretcher(speed, RATE)
    step = chunk or len(audio)
    parts = [stretcher.push(audio[i : i + step]) for i in range(0, len(audio), step)]
    return np.concatenate([*parts, stretcher.flush()])


@pytest.mark.parametrize("speed", [0.85, 0.9, 1.05, 1.25])
def test_the_length_follows_the_speed_and_the_pitch_stays(speed: float) -> None:
    source = tone(2.0)
    out = stretch(source, speed)
    assert abs(len(out) - len(source) / speed) <= 0.01 * RATE
    assert abs(pitch(out) - 220.0) < 2.0


def test_pushed_in_chunks_it_is_the_same_as_in_one_push() -> None:
    rng = np.random.default_rng(0)
    source = (tone(1.5, 180.0) + 0.05 * rng.standard_normal(int(RATE * 1.5))).astype(np.float32)
    whole = stretch(source, 0.85)
    for chunk in (3840, 1000, 15360):  # the TTS's first chunk, odd sizes, a later chunk
        assert np.array_equal(stretch(source, 0.85, chunk), whole)


def test_segments_join_in_phase() -> None:
    out = stretch(tone(1.0), 0.85)
    inner = out[RATE // 10 : -RATE // 10]
    # Out of phase, overlapping segments would cancel: the loudness would dip at every join.
    windows = inner[: len(inner) // 240 * 240].reshape(-1, 240)
    loudness = np.sqrt((windows**2).mean(axis=1))
    assert loudness.min() > 0.9 * 0.5 / np.sqrt(2)
    assert np.abs(inner).max() < 0.52


def test_speeds_out_of_range_are_refused() -> None:
    with pytest.raises(ValueError, match="speed"):
        TimeStretcher(0.1, RATE)
