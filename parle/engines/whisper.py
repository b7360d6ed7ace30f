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
# `transcribe_fitted`: the longest clip it fits a window to, and the silence it appends. With
# 1 s of silence, 10 of 48 decodes of the learner clips (with and without silence around
# them) ran away, repeating a sentence; with 3 s, none, for ~20 ms more.
_FITTED_MAX_S = 28.0
_FITTED_TAIL = 3 * STT_SAMPLE_RATE
# Its decode keeps two hypotheses (a beam of 2) whatever `beam_size` is: greedily, a near-tie
# on one token decided the whole text, and which way it fell depended on the CPU's int8
# kernels. variants/u07.mp3 with 0.3 s of silence before it was heard right with oneDNN's
# (CTranslate2's choice on AMD CPUs) and as "LMI's melhor do Kairman dela." with Intel MKL's
# (its choice on Intel CPUs; `CT2_USE_MKL=1 CT2_FORCE_CPU_ISA=AVX` gives the same on AMD);
# other lengths of silence after the speech moved the garble to other kernels, while the
# 30 s window missed at most a word of it on all. With 2 hypotheses, the learner clips pass
# under both libraries and every ISA (mean WER 0.016-0.022, was 0.022-0.036), for ~30% more
# time a decode (4.5 s of speech: 215 to 283 ms; the 30 s window: 651 ms).
_FITTED_MIN_BEAM = 2
# Tokens a second of speech may take at most (fast Portuguese is ~6); beyond: a runaway.
_FITTED_TOKENS_PER_S = 12
# Words a second of speech may carry (fast Portuguese is ~4): a sentence repeated within the
# token budget is a runaway too.
_FITTED_WORDS_PER_S = 6.0


def speech_region(audio: FloatAudio, min_speech_ms: int) -> tuple[int, int] | None:
    """Where the speech is (Silero VAD, shipped inside faster-whisper), padded a little; None
    when there is less than `min_speech_ms` of it: silence and noise cost no Whisper pass.
    `min_speech_ms` 0 turns the gate off: all of the audio is decoded."""
    if min_speech_ms <= 0:
        return (0, audio.size) if audio.size else None
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

    async def transcribe_fitted(
        self, audio: FloatAudio, *, language: str | None = None
    ) -> Transcript:
        """`transcribe` for a clip under ~28 s, with the encoder window fitted to the clip.

        Whisper pads every input to a 30 s window, so a call costs the same (~0.8 s on the
        `cpu` profile) however short the speech; CTranslate2's encoder also takes a shorter
        window, which costs in proportion (a 4 s turn: ~0.15 s) and, on these clips, gives the
        same text. The realtime door decodes a turn several times while it is spoken, so it
        uses this; the blob doors keep the reference 30 s path. Longer clips, and calls with
        no pinned language, take that path too.
        """
        return await asyncio.to_thread(self.transcribe_fitted_sync, audio, language=language)

    def transcribe_fitted_sync(
        self, audio: FloatAudio, *, language: str | None = None
    ) -> Transcript:
        language = language or self.language
        if language is None or audio.size > _FITTED_MAX_S * STT_SAMPLE_RATE:
            return self.transcribe_sync(audio, language=language)
        duration = audio.size / STT_SAMPLE_RATE
        region = speech_region(audio, self.min_speech_ms)
        if region is None:
            return Transcript("", language, duration, 0.0)
        start, end = region
        fitted = self._decode_fitted(audio[start:end], language)
        if fitted is None:  # a runaway decode (a short window's known failure): the 30 s path
            text, _, confidence = self._decode(audio[start:end], language)
        else:
            text, confidence = fitted
        return Transcript(text, language, duration, confidence)

    def _decode_fitted(self, audio: FloatAudio, language: str) -> tuple[str, float] | None:
        """The text and confidence, or None when the decode ran away (repeating itself)."""
        if self._model is None:
            raise EngineUnavailableError("The speech recognizer is not loaded.")
        import ctranslate2
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_compression_ratio, get_suppressed_tokens

        model = self._model
        # A little silence after the speech: the decoder ends the text cleanly.
        padded = np.concatenate([audio, np.zeros(_FITTED_TAIL, dtype=np.float32)])
        features = model.feature_extractor(padded)
        frames = features.shape[-1] - features.shape[-1] % 2  # the encoder halves the frames
        window = np.ascontiguousarray(features[None, :, :frames], dtype=np.float32)
        encoded = model.model.encode(ctranslate2.StorageView.from_array(window))
        tokenizer = Tokenizer(
            model.hf_tokenizer, model.model.is_multilingual, task="transcribe", language=language
        )
        prompt = [*tokenizer.sot_sequence, tokenizer.no_timestamps]
        budget = int(audio.size / STT_SAMPLE_RATE * _FITTED_TOKENS_PER_S) + 16
        result = model.model.generate(
            encoded,
            [prompt],
            beam_size=max(self.beam_size, _FITTED_MIN_BEAM),
            max_length=min(len(prompt) + budget, model.max_length // 2),
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=list(get_suppressed_tokens(tokenizer, (-1,)) or ()),
        )[0]
        tokens = [t for t in result.sequences_ids[0] if t < tokenizer.eot]
        if len(tokens) >= budget:
            return None
        text = tokenizer.decode(tokens).strip()
        if len(text.split()) > max(8.0, audio.size / STT_SAMPLE_RATE * _FITTED_WORDS_PER_S):
            return None
        # ct2's score is the length-normalised log probability: faster-whisper's avg_logprob.
        logprob = float(result.scores[0]) if result.scores else -10.0
        if result.no_speech_prob > self.no_speech_threshold and logprob < -1.0:
            return "", 0.0
        if text and get_compression_ratio(text) > self.max_compression_ratio:
            return None
        return text, round(math.exp(logprob), 4) if text else 0.0

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
