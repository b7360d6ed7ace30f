"""Text to speech with Kokoro-82M in torch (the `kokoro` package), for GPUs.

The same model as the ONNX engine, run by its reference code: on a GPU a sentence costs a few
milliseconds, and the Portuguese voices (`pf_dora`, `pm_alex`) come as the hub ships them
(`voices/<name>.pt`). Phonemes from espeak-ng through misaki (`lang_code="p"`: pt-br).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

import numpy as np

from parle.audio import AudioChunk, float_to_pcm16
from parle.engines.kokoro import KOKORO_SAMPLE_RATE, pick_voice, with_headroom
from parle.errors import EngineUnavailableError
from parle.models import KOKORO_TORCH_REPO

log = logging.getLogger(__name__)

KOKORO_TORCH_WEIGHTS = "kokoro-v1_0.pth"


class KokoroTorchSynthesizer:
    """Kokoro-82M (torch) behind the `Synthesizer` protocol.

    `model_dir` is laid out as the hub's `hexgrad/Kokoro-82M`: `config.json`,
    `kokoro-v1_0.pth` and `voices/<name>.pt`. Each call synthesizes one speakable piece in a
    worker thread and yields its audio, segment by segment, once it is all computed.
    """

    sample_rate = KOKORO_SAMPLE_RATE

    def __init__(
        self,
        model_dir: Path | str,
        *,
        voice: str = "pf_dora",
        lang_code: str = "p",
        device: str = "cuda",
        speed: float = 1.0,
    ) -> None:
        self.model_dir = Path(model_dir)
        self.voice = voice
        self.lang_code = lang_code
        self.device = device
        self.speed = speed
        self._pipeline: Any = None
        self._voices: dict[str, Any] = {}

    @property
    def voices(self) -> list[str]:
        return sorted(self._voices)

    def load(self) -> None:
        """Load the model onto the device, the voices, the pt-br G2P; then a warm-up word."""
        import torch
        from kokoro import KModel, KPipeline

        model = KModel(
            repo_id=KOKORO_TORCH_REPO,  # only names the model; nothing is downloaded
            config=str(self.model_dir / "config.json"),
            model=str(self.model_dir / KOKORO_TORCH_WEIGHTS),
        )
        self._pipeline = KPipeline(
            lang_code=self.lang_code, repo_id=KOKORO_TORCH_REPO, model=model.to(self.device).eval()
        )
        self._voices = {
            path.stem: torch.load(path, map_location=self.device, weights_only=True)
            for path in sorted((self.model_dir / "voices").glob("*.pt"))
        }
        if self.voice not in self._voices:
            raise EngineUnavailableError(
                f"voice {self.voice!r} is not in {self.model_dir / 'voices'} "
                f"(found: {', '.join(self.voices) or 'none'})"
            )
        self.synthesize_sync("Olá.")

    def close(self) -> None:
        self._pipeline = None  # the runtime frees the model with its last reference

    def resolve_voice(self, voice: str | None) -> str:
        return pick_voice(self.voices, voice, self.voice)

    def synthesize_sync(
        self, text: str, *, voice: str | None = None, speed: float | None = None
    ) -> list[AudioChunk]:
        """`text`'s audio, one chunk per segment the pipeline cut (blocking)."""
        if self._pipeline is None:
            raise EngineUnavailableError("The speech engine is not loaded.")
        style = self._voices[self.resolve_voice(voice)]
        if not any(ch.isalnum() for ch in text):
            return []  # punctuation alone: nothing to say
        chunks = []
        for result in self._pipeline(text, voice=style, speed=speed or self.speed):
            if result.audio is None:
                continue
            audio = result.audio.detach().float().cpu().numpy().astype(np.float32)
            if audio.size:
                chunks.append(AudioChunk(float_to_pcm16(with_headroom(audio)), self.sample_rate))
        return chunks

    async def synthesize(
        self, text: str, *, voice: str | None = None, speed: float | None = None
    ) -> AsyncGenerator[AudioChunk, None]:
        """Synthesize `text` off the event loop and yield its audio."""
        chunks = await asyncio.to_thread(self.synthesize_sync, text, voice=voice, speed=speed)
        for chunk in chunks:
            yield chunk
