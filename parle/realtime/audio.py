"""The realtime door's audio formats: what a client may send and receive, converted as it
streams (PCM16 at 24 or 16 kHz, G.711 µ-law and A-law at 8 kHz for phone gateways).

Incoming audio becomes 16 kHz mono float32 (what Silero VAD and Whisper take); the tutor's
speech (PCM16 at the synthesizer's rate) becomes the session's output format. Resampling is
stateful (PyAV's swresample), so audio cut into any frame sizes converts as one stream.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from parle.audio import STT_SAMPLE_RATE, FloatAudio

FormatType = Literal["audio/pcm", "audio/pcmu", "audio/pcma"]
PCM_RATES = (24_000, 16_000)
G711_RATE = 8_000


@dataclass(frozen=True)
class AudioFormat:
    """One of the session's audio formats, as the OpenAI Realtime API names them."""

    type: FormatType = "audio/pcm"
    rate: int = 24_000

    @property
    def bytes_per_sample(self) -> int:
        return 2 if self.type == "audio/pcm" else 1

    def as_dict(self) -> dict[str, object]:
        if self.type == "audio/pcm":
            return {"type": self.type, "rate": self.rate}
        return {"type": self.type}


def _mulaw_table() -> npt.NDArray[np.int16]:
    codes = ~np.arange(256, dtype=np.int32) & 0xFF
    exponent = (codes >> 4) & 0x07
    mantissa = codes & 0x0F
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return np.where(codes & 0x80, -magnitude, magnitude).astype(np.int16)


def _alaw_table() -> npt.NDArray[np.int16]:
    codes = np.arange(256, dtype=np.int32) ^ 0x55
    exponent = (codes >> 4) & 0x07
    mantissa = codes & 0x0F
    magnitude = np.where(
        exponent == 0, (mantissa << 4) + 8, ((mantissa << 4) + 0x108) << np.maximum(exponent - 1, 0)
    )
    return np.where(codes & 0x80, magnitude, -magnitude).astype(np.int16)


_DECODE = {"audio/pcmu": _mulaw_table(), "audio/pcma": _alaw_table()}


def _encoder(table: npt.NDArray[np.int16]) -> npt.NDArray[np.uint8]:
    """For every PCM16 value, the code whose decoded value is nearest."""
    order = np.argsort(table, kind="stable")
    values = table[order].astype(np.int32)
    every = np.arange(-32768, 32768, dtype=np.int32)
    right = np.clip(np.searchsorted(values, every), 1, len(values) - 1)
    left = right - 1
    nearer_left = (every - values[left]) <= (values[right] - every)
    return order[np.where(nearer_left, left, right)].astype(np.uint8)


_ENCODE = {kind: _encoder(table) for kind, table in _DECODE.items()}


def g711_decode(data: bytes, kind: FormatType) -> npt.NDArray[np.int16]:
    return _DECODE[kind][np.frombuffer(data, dtype=np.uint8)]


def g711_encode(samples: npt.NDArray[np.int16], kind: FormatType) -> bytes:
    return bytes(_ENCODE[kind][samples.astype(np.int32) + 32768].tobytes())


class _Resampler:
    """A stateful PCM16 mono resampler (PyAV); identity when the rates match."""

    def __init__(self, src: int, dst: int) -> None:
        self.src = src
        self.dst = dst
        self._resampler = None
        if src != dst:
            import av  # deferred: PyAV loads FFmpeg's libraries

            self._resampler = av.AudioResampler(format="s16", layout="mono", rate=dst)

    def __call__(self, samples: npt.NDArray[np.int16]) -> npt.NDArray[np.int16]:
        if self._resampler is None or samples.size == 0:
            return samples
        import av

        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = self.src
        out = [f.to_ndarray().reshape(-1) for f in self._resampler.resample(frame)]
        return np.concatenate(out).astype(np.int16) if out else np.zeros(0, np.int16)


class InputDecoder:
    """A client's audio bytes in `fmt` -> 16 kHz mono float32, as a stream."""

    def __init__(self, fmt: AudioFormat) -> None:
        self.format = fmt
        rate = fmt.rate if fmt.type == "audio/pcm" else G711_RATE
        self._resample = _Resampler(rate, STT_SAMPLE_RATE)
        self._odd = b""  # a PCM16 sample split across two appends

    def __call__(self, data: bytes) -> FloatAudio:
        if self.format.type == "audio/pcm":
            data = self._odd + data
            cut = len(data) - len(data) % 2
            self._odd = data[cut:]
            pcm = np.frombuffer(data[:cut], dtype="<i2").astype(np.int16)
        else:
            pcm = g711_decode(data, self.format.type)
        return (self._resample(pcm).astype(np.float32) / 32768.0).astype(np.float32)


class OutputEncoder:
    """The synthesizer's PCM16 at `source_rate` -> bytes in `fmt`, as a stream."""

    def __init__(self, fmt: AudioFormat, source_rate: int) -> None:
        self.format = fmt
        rate = fmt.rate if fmt.type == "audio/pcm" else G711_RATE
        self.rate = rate
        self._resample = _Resampler(source_rate, rate)

    def __call__(self, pcm: bytes) -> bytes:
        samples = self._resample(np.frombuffer(pcm, dtype="<i2").astype(np.int16))
        if self.format.type == "audio/pcm":
            return samples.astype("<i2").tobytes()
        return g711_encode(samples, self.format.type)

    def duration_s(self, data: bytes) -> float:
        return len(data) / self.format.bytes_per_sample / self.rate
