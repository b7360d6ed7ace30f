"""Speech to text with Whisper through transformers (torch): SDPA attention, a static KV cache,
and several sessions' utterances in one encoder pass.

For GPU boxes where CTranslate2's CUDA-12 cuBLAS is absent (faster-whisper cannot run), and
for cross-session batching: every request is padded to Whisper's 30 s window anyway, so a
batch of B utterances costs about one encoder pass of B windows on the GPU.

Every model call runs on one thread the engine owns, whichever thread asks: with the static
cache on CUDA, transformers compiles the decoder with CUDA-graph trees, whose state is
thread-local (a decode from another thread fails an assertion inside torch). Batches are
padded to a few sizes, each compiled at load, so no request pays for a compilation.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from parle.audio import STT_SAMPLE_RATE, FloatAudio
from parle.engines.base import WHISPER_LANGUAGES, Transcript
from parle.engines.whisper import speech_region
from parle.errors import EngineUnavailableError
from parle.microbatch import MicroBatcher, batch_sizes

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SpeechRequest:
    """One session's speech (already gated) waiting for a batched decode."""

    audio: FloatAudio
    language: str | None


@dataclass(frozen=True)
class Decoded:
    """One utterance's decode: text, the token ids it came from, and a confidence."""

    text: str
    tokens: tuple[int, ...]
    confidence: float


class HfWhisperTranscriber:
    """Whisper (`WhisperForConditionalGeneration`) behind the `Transcriber` protocol.

    Greedy, no timestamps, language pinned; Silero VAD gates the decode as in the
    faster-whisper engine. Concurrent calls within `batch_window_s` share one `generate`,
    padded to one of `batch_sizes(max_batch)` rows.
    """

    def __init__(
        self,
        model_path: Path | str,
        *,
        device: str = "cuda",
        dtype: str = "float16",
        language: str | None = "pt",
        max_new_tokens: int = 128,
        min_speech_ms: int = 250,
        static_cache: bool = True,
        batch_window_s: float = 0.003,
        max_batch: int = 16,
    ) -> None:
        self.model_path = str(model_path)
        self.device = device
        self.dtype = dtype
        self.language = language or None
        self.max_new_tokens = max_new_tokens
        self.min_speech_ms = min_speech_ms
        self.static_cache = static_cache
        self.batch_sizes = batch_sizes(max_batch)
        self._model: Any = None
        self._processor: Any = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="whisper-hf")
        self._thread_id: int | None = None
        self.batcher: MicroBatcher[SpeechRequest, Decoded] = MicroBatcher(
            self._decode_requests,
            window_s=batch_window_s,
            max_batch=max_batch,
            executor=self._executor,
        )

    languages = WHISPER_LANGUAGES

    def close(self) -> None:
        self.batcher.close()
        self._executor.shutdown(wait=False, cancel_futures=True)

    def load(self) -> None:
        """Load the processor and the model (SDPA) onto the device, then warm up every batch
        size, on the engine's thread."""
        self._on_own_thread(self._load)

    def _on_own_thread(self, work: Any, *args: Any) -> Any:
        if threading.get_ident() == self._thread_id:
            return work(*args)
        return self._executor.submit(work, *args).result()

    def _load(self) -> None:
        import torch

        self._thread_id = threading.get_ident()
        from transformers import WhisperForConditionalGeneration, WhisperProcessor

        self._processor = WhisperProcessor.from_pretrained(self.model_path)
        model: Any = WhisperForConditionalGeneration.from_pretrained(
            self.model_path, dtype=getattr(torch, self.dtype), attn_implementation="sdpa"
        )
        self._model = model.to(self.device).eval()
        if self.static_cache:
            # A fixed-shape decoder cache: no reallocation per token, and CUDA-graph friendly.
            self._model.generation_config.cache_implementation = "static"
        rng = np.random.default_rng(0)
        noise = (rng.standard_normal(STT_SAMPLE_RATE) * 0.01).astype(np.float32)
        for size in self.batch_sizes:
            self._decode_batch([noise] * size, self.language)

    async def transcribe(self, audio: FloatAudio, *, language: str | None = None) -> Transcript:
        """Transcribe in a worker thread, batched with other sessions' concurrent requests."""
        language = language or self.language
        duration = audio.size / STT_SAMPLE_RATE
        # Silero runs in a thread too: a few ms per second of audio, never on the event loop.
        region = await asyncio.to_thread(speech_region, audio, self.min_speech_ms)
        if region is None:
            return Transcript("", language or "", duration, 0.0)
        decoded = await self.batcher.submit(SpeechRequest(audio[region[0] : region[1]], language))
        return Transcript(decoded.text, language or "", duration, decoded.confidence)

    async def transcribe_fitted(
        self, audio: FloatAudio, *, language: str | None = None
    ) -> Transcript:
        """Batched decoding already pays per clip, not per 30 s window."""
        return await self.transcribe(audio, language=language)

    def _decode_requests(self, requests: list[SpeechRequest]) -> list[Decoded]:
        results: dict[int, Decoded] = {}
        for language in {r.language for r in requests}:  # one generate per language
            indices = [i for i, r in enumerate(requests) if r.language == language]
            decoded = self.decode_batch([requests[i].audio for i in indices], language)
            results.update(zip(indices, decoded, strict=True))
        return [results[i] for i in range(len(requests))]

    def decode_batch(self, audios: list[FloatAudio], language: str | None = None) -> list[Decoded]:
        """Greedy decode of several utterances in one `generate` (blocking; runs on the
        engine's thread)."""
        result: list[Decoded] = self._on_own_thread(self._decode_batch, audios, language)
        return result

    def _decode_batch(self, audios: list[FloatAudio], language: str | None) -> list[Decoded]:
        import torch

        if self._model is None or self._processor is None:
            raise EngineUnavailableError("The speech recognizer is not loaded.")
        count = len(audios)
        size = next((s for s in self.batch_sizes if s >= count), count)
        padded = list(audios) + [audios[-1]] * (size - count)  # rows past `count` are dropped
        # The log-mel spectrogram on the model's device: on a CPU it costs ~15 ms a window,
        # which a batch of 32 would pay in series.
        features = self._processor.feature_extractor(
            padded, sampling_rate=STT_SAMPLE_RATE, return_tensors="pt", device=self.device
        ).input_features.to(self.device, dtype=self._model.dtype)
        with torch.inference_mode():
            out = self._model.generate(
                features,
                language=language or self.language,
                task="transcribe",
                max_new_tokens=self.max_new_tokens,
                do_sample=False,
                num_beams=1,
                return_timestamps=False,
                return_dict_in_generate=True,
                output_scores=True,
            )
        decoded = [
            self._decoded(sequence, scores)
            for sequence, scores in zip(out.sequences, self._token_logprobs(out), strict=True)
        ]
        return decoded[:count]

    def _token_logprobs(self, out: Any) -> list[list[float]]:
        import torch

        steps = [torch.log_softmax(step.float(), dim=-1) for step in out.scores]
        generated = out.sequences[:, -len(steps) :] if steps else out.sequences[:, :0]
        eos = self._model.generation_config.eos_token_id
        logprobs = []
        for row in range(generated.shape[0]):
            values = []
            for step, token in enumerate(generated[row].tolist()):
                values.append(float(steps[step][row, token]))
                if token == eos:
                    break
            logprobs.append(values)
        return logprobs

    def _decoded(self, sequence: torch.Tensor, logprobs: list[float]) -> Decoded:
        tokens = tuple(int(t) for t in sequence.tolist())
        text = self._processor.tokenizer.decode(tokens, skip_special_tokens=True).strip()
        confidence = math.exp(sum(logprobs) / len(logprobs)) if logprobs else 0.0
        return Decoded(text, tokens, round(confidence, 4))
