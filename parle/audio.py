"""Audio in and out: decode whatever a client sends to 16 kHz mono, encode PCM16 WAV chunks."""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from parle.errors import AudioInputError

STT_SAMPLE_RATE = 16_000
_FORMATS_HINT = "Send WAV, WebM/Opus, OGG/Opus, MP3 or FLAC."

FloatAudio = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class AudioChunk:
    """A piece of synthesized speech: little-endian PCM16 mono at `sample_rate`."""

    pcm: bytes
    sample_rate: int

    @property
    def duration_s(self) -> float:
        return len(self.pcm) / 2 / self.sample_rate

    def to_wav(self) -> bytes:
        return wav_bytes(self.pcm, self.sample_rate)


def float_to_pcm16(audio: npt.NDArray[np.floating]) -> bytes:
    clipped = np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0)
    return (clipped * 32767.0).astype("<i2").tobytes()


def wav_header(sample_rate: int, data_bytes: int | None = None, channels: int = 1) -> bytes:
    """A canonical 44-byte PCM16 WAV header; `data_bytes=None` marks a stream of unknown
    length (sizes set to their maximum, as streaming players expect)."""
    size = 0xFFFFFFFF - 36 if data_bytes is None else data_bytes
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        min(36 + size, 0xFFFFFFFF),
        b"WAVE",
        b"fmt ",
        16,
        1,
        channels,
        sample_rate,
        sample_rate * channels * 2,
        channels * 2,
        16,
        b"data",
        size,
    )


def wav_bytes(pcm: bytes, sample_rate: int, channels: int = 1) -> bytes:
    """A complete, playable PCM16 WAV file around `pcm`."""
    return wav_header(sample_rate, len(pcm), channels) + pcm


def decode_audio(
    data: bytes,
    *,
    max_seconds: float = 60.0,
    min_seconds: float = 0.2,
    max_bytes: int | None = None,
) -> FloatAudio:
    """Decode any common container/codec to 16 kHz mono float32 in [-1, 1].

    The format is sniffed from the bytes, never trusted from a file name. Raises
    `AudioInputError` with a user-facing message for anything that cannot be used;
    decoding stops as soon as the duration cap is passed, so a huge file costs little.
    """
    if not data:
        raise AudioInputError("The audio is empty (0 bytes).", reason="empty")
    if max_bytes is not None and len(data) > max_bytes:
        raise AudioInputError(
            f"The audio is too large ({len(data) // 1024} KiB; the limit is "
            f"{max_bytes // 1024} KiB).",
            reason="too_large",
        )
    import av  # deferred: PyAV loads FFmpeg's libraries

    max_samples = int(max_seconds * STT_SAMPLE_RATE)
    pieces: list[FloatAudio] = []
    total = 0
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if not container.streams.audio:
                raise AudioInputError(
                    f"The file has no audio track. {_FORMATS_HINT}", reason="undecodable"
                )
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(format="flt", layout="mono", rate=STT_SAMPLE_RATE)
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    samples = out.to_ndarray().reshape(-1).astype(np.float32, copy=False)
                    pieces.append(samples)
                    total += samples.size
                if total > max_samples:
                    raise AudioInputError(
                        f"The audio is too long (over {max_seconds:g} s).", reason="too_long"
                    )
            for out in resampler.resample(None):
                samples = out.to_ndarray().reshape(-1).astype(np.float32, copy=False)
                pieces.append(samples)
                total += samples.size
    except AudioInputError:
        raise
    except Exception as exc:
        # PyAV raises its own errors but also IndexError/ValueError on some garbage
        # (a PNG, a zero sample rate): every failure here is the input's fault.
        raise AudioInputError(
            f"The audio could not be decoded. {_FORMATS_HINT}",
            reason="undecodable",
        ) from exc
    if total > max_samples:
        raise AudioInputError(f"The audio is too long (over {max_seconds:g} s).", reason="too_long")
    if total == 0:
        raise AudioInputError("The audio has no samples.", reason="empty")
    if total < int(min_seconds * STT_SAMPLE_RATE):
        raise AudioInputError(
            f"The audio is too short ({total / STT_SAMPLE_RATE * 1000:.0f} ms; at least "
            f"{min_seconds * 1000:.0f} ms is needed).",
            reason="too_short",
        )
    audio = np.concatenate(pieces)
    np.clip(audio, -1.0, 1.0, out=audio)
    return audio


def concat_chunks(chunks: list[AudioChunk], *, sample_rate: int | None = None) -> AudioChunk:
    """Join audio chunks of one sample rate into one; `sample_rate` is the rate of an empty
    join (and, when given, the one every chunk must have)."""
    rate = sample_rate or (chunks[0].sample_rate if chunks else None)
    if rate is None:
        raise ValueError("joining no chunks needs a sample_rate")
    if any(c.sample_rate != rate for c in chunks):
        raise ValueError("audio chunks have different sample rates")
    return AudioChunk(b"".join(c.pcm for c in chunks), rate)
