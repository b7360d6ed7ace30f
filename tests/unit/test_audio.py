"""Decoding what clients send: every shipped format variant, every bad input."""

from __future__ import annotations

import io
import json
import wave
from pathlib import Path

import numpy as np
import pytest

from parle.audio import STT_SAMPLE_RATE, AudioChunk, concat_chunks, decode_audio, wav_bytes
from parle.errors import AudioInputError


def variant_files(audio_dir: Path) -> list[Path]:
    return sorted((audio_dir / "variants").iterdir())


def test_every_format_variant_decodes_to_the_same_length(audio_dir: Path) -> None:
    variants = variant_files(audio_dir)
    assert len(variants) >= 27
    for path in variants:
        reference = audio_dir / "utterances" / f"{path.name[:3]}.wav"
        expected = decode_audio(reference.read_bytes()).size
        audio = decode_audio(path.read_bytes())
        assert audio.dtype == np.float32 and audio.ndim == 1, path.name
        # Codecs pad a little (MP3, AAC); the speech itself must all be there.
        assert abs(audio.size - expected) < 0.1 * STT_SAMPLE_RATE, path.name
        assert 0.05 < float(np.abs(audio).max()) <= 1.0, path.name


# What each shipped bad file must give: an AudioInputError reason, or audio (recoverable).
BAD_EXPECTED = {
    "empty_0_bytes.wav": "empty",
    "header_sr_0hz.wav": "undecodable",
    "png_renamed.wav": "undecodable",
    "random_1kb.wav": "undecodable",
    "short_50ms.wav": "too_short",
    "six_channel_8bit.wav": None,  # downmixed
    "truncated_mid_sample.wav": None,  # the prefix that is there
    "webm_named_wav.wav": None,  # sniffed, not trusted by name
}


def test_every_bad_file_gives_the_typed_error_or_usable_audio(audio_dir: Path) -> None:
    manifest = json.loads((audio_dir / "bad" / "manifest.json").read_text())
    shipped = [item["file"] for item in manifest["items"] if item["shipped"]]
    assert sorted(Path(f).name for f in shipped) == sorted(BAD_EXPECTED)
    for name, reason in BAD_EXPECTED.items():
        data = (audio_dir / "bad" / name).read_bytes()
        if reason is None:
            assert decode_audio(data).size > STT_SAMPLE_RATE, name
            continue
        with pytest.raises(AudioInputError) as info:
            decode_audio(data)
        assert info.value.reason == reason, name
        message = str(info.value)
        assert message and "/work" not in message and "Error" not in message


def test_over_long_audio_is_refused_while_decoding() -> None:
    silence = wav_bytes(b"\x00\x00" * STT_SAMPLE_RATE * 70, STT_SAMPLE_RATE)
    with pytest.raises(AudioInputError, match="too long") as info:
        decode_audio(silence, max_seconds=60)
    assert info.value.reason == "too_long"


def test_byte_cap_is_checked_before_decoding() -> None:
    with pytest.raises(AudioInputError) as info:
        decode_audio(b"RIFF" + b"\x00" * 2000, max_bytes=1000)
    assert info.value.reason == "too_large"


def test_wav_chunks_are_complete_playable_files() -> None:
    pcm = (np.sin(np.arange(2400) / 10) * 10000).astype("<i2").tobytes()
    data = AudioChunk(pcm, 24_000).to_wav()
    with wave.open(io.BytesIO(data)) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (24_000, 1, 2)
        assert wav.readframes(wav.getnframes()) == pcm


def test_concat_chunks_refuses_mixed_rates() -> None:
    joined = concat_chunks([AudioChunk(b"\x01\x00", 24_000), AudioChunk(b"\x02\x00", 24_000)])
    assert joined.pcm == b"\x01\x00\x02\x00"
    with pytest.raises(ValueError):
        concat_chunks([AudioChunk(b"", 24_000), AudioChunk(b"", 16_000)])
