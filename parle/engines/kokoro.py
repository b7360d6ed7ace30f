"""Text to speech with Kokoro-82M through ONNX Runtime (kokoro-onnx)."""

from __future__ import annotations

import asyncio
import logging
import tempfile
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from parle.audio import AudioChunk, float_to_pcm16
from parle.errors import EngineInputError, EngineUnavailableError

if TYPE_CHECKING:
    from kokoro_onnx import Kokoro

log = logging.getLogger(__name__)

KOKORO_SAMPLE_RATE = 24_000
# A Kokoro voice style: one 256-d vector per possible token count.
VoiceStyle = npt.NDArray[np.float32]


def load_voices(paths: list[Path]) -> dict[str, VoiceStyle]:
    """Voice styles from `.npz`/`voices-v1.0.bin` archives or single `<name>.bin` files."""
    voices: dict[str, VoiceStyle] = {}
    for path in paths:
        if path.is_dir():
            voices.update(load_voices(sorted(path.glob("*.bin")) + sorted(path.glob("*.npz"))))
            continue
        with path.open("rb") as fh:
            is_archive = fh.read(2) == b"PK"
        if is_archive:
            with np.load(path) as archive:
                voices.update({name: archive[name].astype(np.float32) for name in archive.files})
        else:  # the hub's per-voice files: raw float32, 256 values per row
            voices[path.stem] = np.fromfile(path, dtype="<f4").reshape(-1, 1, 256)
    return voices


# Kokoro's peaks reach about 1.15 full scale: a fixed gain keeps pieces equally loud and
# unclipped; a piece that still peaks too high is scaled down on its own.
_OUTPUT_GAIN = 0.8
_PEAK_LIMIT = 0.98


def with_headroom(audio: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    audio = audio * _OUTPUT_GAIN
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    return audio * (_PEAK_LIMIT / peak) if peak > _PEAK_LIMIT else audio


def pick_voice(voices: list[str], requested: str | None, default: str) -> str:
    """`requested` (else `default`) if it is one of `voices`; a clear error otherwise."""
    name = requested or default
    if name not in voices:
        raise EngineInputError(f"Unknown voice {name!r}; available: {', '.join(voices)}.")
    return name


class KokoroSynthesizer:
    """Kokoro-82M (int8 ONNX) behind the `Synthesizer` protocol, Brazilian Portuguese by default.

    Each call synthesizes one speakable piece (the sentence cutter keeps pieces short) in a
    worker thread and yields its PCM16 as soon as it exists.
    """

    sample_rate = KOKORO_SAMPLE_RATE

    def __init__(
        self,
        model_path: Path | str,
        voices_paths: list[Path],
        *,
        voice: str = "pf_dora",
        fallback_voice: str = "jm_kumo",
        lang: str = "pt-br",
        speed: float = 1.0,
        threads: int = 0,
    ) -> None:
        self.model_path = Path(model_path)
        self.voices_paths = voices_paths
        self.voice = voice
        self.fallback_voice = fallback_voice
        self.lang = lang
        self.speed = speed
        self.threads = threads
        self._kokoro: Kokoro | None = None
        self._voices: dict[str, VoiceStyle] = {}

    @property
    def voices(self) -> list[str]:
        return sorted(self._voices)

    def load(self) -> None:
        """Open the ONNX session, read the voice styles, and synthesize one warm-up word."""
        import onnxruntime as ort
        from kokoro_onnx import Kokoro

        self._voices = load_voices(self.voices_paths)
        if not self._voices:
            raise EngineUnavailableError("no Kokoro voice styles were found")
        if self.voice not in self._voices:
            chosen = self.fallback_voice if self.fallback_voice in self._voices else self.voices[0]
            log.warning(
                "voice not available, using fallback",
                extra={"voice": self.voice, "fallback": chosen},
            )
            self.voice = chosen
        options = ort.SessionOptions()
        # The LLM server shares these cores while the reply streams: spinning threads would
        # steal them from it (and it from us), doubling both stages' time.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if self.threads:
            options.intra_op_num_threads = self.threads
        session = ort.InferenceSession(
            str(self.model_path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        # kokoro-onnx insists on a voices archive at construction although PARLE passes the
        # style per call: hand it a throwaway one (unlinking is safe once numpy has it open).
        with tempfile.TemporaryDirectory() as tmp:
            archive = Path(tmp) / "voices.npz"
            voices: dict[str, Any] = {self.voice: self._voices[self.voice]}
            np.savez(archive, **voices)
            self._kokoro = Kokoro.from_session(session, str(archive))
        self.synthesize_sync("Olá.")

    def close(self) -> None:
        self._kokoro = None  # the runtime frees the model with its last reference

    def resolve_voice(self, voice: str | None) -> str:
        return pick_voice(self.voices, voice, self.voice)

    def synthesize_sync(
        self, text: str, *, voice: str | None = None, speed: float | None = None
    ) -> AudioChunk:
        if self._kokoro is None:
            raise EngineUnavailableError("The speech engine is not loaded.")
        style = self._voices[self.resolve_voice(voice)]
        if not any(ch.isalnum() for ch in text):
            return AudioChunk(b"", self.sample_rate)  # punctuation alone: nothing to say
        try:
            audio, rate = self._kokoro.create(
                text, voice=style, speed=speed or self.speed, lang=self.lang, trim=True
            )
        except ValueError:
            # Text that yields no phonemes (only symbols): nothing to say.
            return AudioChunk(b"", self.sample_rate)
        return AudioChunk(float_to_pcm16(with_headroom(audio)), rate)

    async def synthesize(
        self, text: str, *, voice: str | None = None, speed: float | None = None
    ) -> AsyncGenerator[AudioChunk, None]:
        """Synthesize `text` off the event loop and yield its audio."""
        chunk = await asyncio.to_thread(self.synthesize_sync, text, voice=voice, speed=speed)
        if chunk.pcm:
            yield chunk
