"""Speech to text with faster-whisper (CTranslate2)."""

from __future__ import annotations

import asyncio
import logging
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from parle.audio import STT_SAMPLE_RATE, FloatAudio
from parle.engines.base import WHISPER_LANGUAGES, Transcript
from parle.errors import EngineUnavailableError

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

log = logging.getLogger(__name__)

# Silero keeps this much audio around detected speech so word edges are not clipped.
_SPEECH_PAD_S = 0.2


def speech_region(audio: FloatAudio, min_speech_ms: int) -> tuple[int, int] | None:
    """Where the speech is (Silero VAD, shipped inside faster-whisper), padded a little; None
    when there is less than `min_speech_ms` of it: silence and noise cost no Whisper pass."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    spans = get_speech_timestamps(
        audio, VadOptions(min_speech_duration_ms=100, min_silence_duration_ms=300)
    )
    speech = sum(s["end"] - s["start"] for s in spans)
    if speech * 1000 < min_speech_ms * STT_SAMPLE_RATE:
        return None
    pad = int(_SPEECH_PAD_S * STT_SAMPLE_RATE)
    return max(0, spans[0]["start"] - pad), min(audio.size, spans[-1]["end"] + pad)


class WhisperTranscriber:
    """faster-whisper behind the `Transcriber` protocol.

    Latency first: beam 1, no timestamps, language pinned. Silero VAD (shipped inside
    faster-whisper) gates the decode, so silence and noise cost no Whisper pass and cannot
    hallucinate; segments Whisper itself marks as no-speech or as repetitive are dropped.
    """

    def __init__(
        self,
        model_path: Path | str,
        *,
        device: str = "cpu",
        compute_type: str = "int8",
        language: str | None = "pt",
        beam_size: int = 1,
        threads: int = 0,
        no_speech_threshold: float = 0.6,
        max_compression_ratio: float = 2.4,
        min_speech_ms: int = 250,
    ) -> None:
        self.model_path = str(model_path)
        self.device = device
        self.compute_type = compute_type
        self.language = language or None
        self.beam_size = beam_size
        self.threads = threads
        self.no_speech_threshold = no_speech_threshold
        self.max_compression_ratio = max_compression_ratio
        self.min_speech_ms = min_speech_ms
        self._model: WhisperModel | None = None

    languages = WHISPER_LANGUAGES

    def close(self) -> None:
        self._model = None  # CTranslate2 frees the model with its last reference

    def load(self) -> None:
        """Load the CTranslate2 model and run one warm-up decode."""
        from faster_whisper import WhisperModel

        self._model = WhisperModel(
            self.model_path,
            device=self.device,
            compute_type=self.compute_type,
            cpu_threads=self.threads or (os.cpu_count() or 1),
        )
        rng = np.random.default_rng(0)
        warmup = (rng.standard_normal(STT_SAMPLE_RATE) * 0.01).astype(np.float32)
        self._decode(warmup, self.language)

    async def transcribe(self, audio: FloatAudio, *, language: str | None = None) -> Transcript:
        """Transcribe off the event loop; the result is complete when it returns.

        `language` overrides the pinned language for this call.
        """
        return await asyncio.to_thread(self.transcribe_sync, audio, language=language)

    def transcribe_sync(self, audio: FloatAudio, *, language: str | None = None) -> Transcript:
        language = language or self.language
        duration = audio.size / STT_SAMPLE_RATE
        region = speech_region(audio, self.min_speech_ms)
        if region is None:
            return Transcript("", language or "", duration, 0.0)
        start, end = region
        text, heard_language, confidence = self._decode(audio[start:end], language)
        return Transcript(text, heard_language, duration, confidence)

    def _decode(self, audio: FloatAudio, language: str | None) -> tuple[str, str, float]:
        if self._model is None:
            raise EngineUnavailableError("The speech recognizer is not loaded.")
        segments, info = self._model.transcribe(
            audio,
            language=language,
            beam_size=self.beam_size,
            without_timestamps=True,
            condition_on_previous_text=False,
            vad_filter=False,
        )
        kept: list[Any] = []
        for seg in segments:  # the generator decodes as it is consumed: finish it here
            if seg.no_speech_prob > self.no_speech_threshold and seg.avg_logprob < -1.0:
                continue
            if seg.compression_ratio > self.max_compression_ratio:
                continue
            kept.append(seg)
        text = " ".join(seg.text.strip() for seg in kept).strip()
        confidence = math.exp(sum(seg.avg_logprob for seg in kept) / len(kept)) if kept else 0.0
        return text, info.language, round(confidence, 4)
