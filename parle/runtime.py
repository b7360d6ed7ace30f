"""Builds the active profile's engines from settings, loads them once, and owns their life.

Each engine's module is imported only when the profile builds it (the registries below), so a
`cpu` install never imports torch, and a `gpu` install never imports onnxruntime.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from parle.config import Settings
from parle.engines.base import ChatModel, GrammarChecker, Synthesizer, Transcriber
from parle.engines.chat import OpenAIChatModel
from parle.engines.llm_server import LlmServer
from parle.errors import GrammarUnavailableError, ParleError
from parle.models import (
    ModelNotFoundError,
    assemble_shipped,
    find_file,
    llm_spec,
    require,
    stt_spec,
    tts_specs,
)
from parle.scheduler import ComputeGate
from parle.sessions import SessionStore
from parle.turn import TurnPipeline
from parle.tutor.levels import LevelEstimator
from parle.tutor.policy import build_estimator
from parle.tutor.prompts import build_messages

if TYPE_CHECKING:
    from parle.engines.languagetool import LanguageToolServer

log = logging.getLogger(__name__)


class UnsupportedEngineError(ParleError):
    """The profile asks for an engine this build of PARLE cannot run here."""

    code = "unsupported_engine"


def _faster_whisper(settings: Settings) -> Transcriber:
    from parle.engines.whisper import WhisperTranscriber

    return WhisperTranscriber(
        require(stt_spec(settings), settings).path,
        device=settings.stt_device,
        compute_type=settings.stt_compute_type,
        language=settings.stt_language,
        beam_size=settings.stt_beam_size,
        threads=settings.stt_threads,
        no_speech_threshold=settings.stt_no_speech_threshold,
        max_compression_ratio=settings.stt_max_compression_ratio,
        min_speech_ms=settings.stt_min_speech_ms,
    )


def _transformers_whisper(settings: Settings) -> Transcriber:
    from parle.engines.whisper_hf import HfWhisperTranscriber

    return HfWhisperTranscriber(
        require(stt_spec(settings), settings).path,
        device=settings.stt_device,
        dtype=_torch_dtype(settings.stt_compute_type, settings.stt_device),
        language=settings.stt_language,
        min_speech_ms=settings.stt_min_speech_ms,
        batch_window_s=settings.stt_batch_window_ms / 1000,
        max_batch=settings.stt_max_batch,
    )


def _torch_dtype(compute_type: str, device: str) -> str:
    """CTranslate2's compute types as a torch dtype (int8 kinds have no torch twin here)."""
    if compute_type in ("float16", "bfloat16", "float32"):
        return compute_type
    return "float32" if device == "cpu" else "float16"


def _kokoro_onnx(settings: Settings) -> Synthesizer:
    from parle.engines.kokoro import KokoroSynthesizer

    model_spec, voices_spec = tts_specs(settings)
    model = require(model_spec, settings)
    onnx = model.path if model.path.is_file() else None
    onnx = onnx or find_file(model.folder, ["*.int8.onnx", "model_quantized.onnx", "*.onnx"])
    if onnx is None:
        raise UnsupportedEngineError(f"no .onnx file in the Kokoro model folder {model.folder}")
    voice_sources: list[Path] = []
    if model.source == "local" and model.path.is_dir():
        voice_sources.append(model.path)  # a folder with voices-v1.0.bin next to the model
    voices = require(voices_spec, settings)
    voice_sources.append(voices.path)
    if voices.source != "shipped":
        # The hub's Portuguese voices, plus the shipped styles when the package is installed.
        shipped = _shipped_voices(settings)
        if shipped is not None:
            voice_sources.append(shipped)
    return KokoroSynthesizer(
        onnx,
        voice_sources,
        voice=settings.tts_voice,
        fallback_voice=settings.tts_fallback_voice,
        lang=settings.tts_lang,
        speed=settings.tts_speed,
        threads=settings.tts_threads,
    )


def _kokoro_torch(settings: Settings) -> Synthesizer:
    from parle.engines.kokoro_torch import KokoroTorchSynthesizer

    (model_spec,) = tts_specs(settings)
    return KokoroTorchSynthesizer(
        require(model_spec, settings).folder,
        voice=settings.tts_voice,
        device=settings.tts_device,
        speed=settings.tts_speed,
    )


def _qwen3_tts(settings: Settings) -> Synthesizer:
    from parle.engines.qwen3_tts import Qwen3TtsSynthesizer

    (model_spec,) = tts_specs(settings)
    return Qwen3TtsSynthesizer(
        require(model_spec, settings).folder,
        speaker=settings.qwen3_speaker,
        language=settings.qwen3_language,
        device=settings.tts_device,
        max_streams=settings.qwen3_max_streams,
        max_positions=settings.qwen3_max_positions,
        first_chunk_frames=settings.qwen3_first_chunk_frames,
        chunk_frames=settings.qwen3_chunk_frames,
        cuda_graphs=None if settings.qwen3_cuda_graphs else False,  # None: where it is CUDA
    )


# Engine name (`PARLE_STT_BACKEND`, `PARLE_TTS_ENGINE`) -> its builder, which imports the
# engine's module only when called.
TRANSCRIBERS: dict[str, Callable[[Settings], Transcriber]] = {
    "faster-whisper": _faster_whisper,
    "transformers": _transformers_whisper,
}
SYNTHESIZERS: dict[str, Callable[[Settings], Synthesizer]] = {
    "kokoro": _kokoro_onnx,
    "kokoro-torch": _kokoro_torch,
    "qwen3": _qwen3_tts,
}


def build_transcriber(settings: Settings) -> Transcriber:
    """The profile's Whisper (not loaded yet), on the configured backend."""
    return TRANSCRIBERS[settings.stt_backend](settings)


def build_synthesizer(settings: Settings) -> Synthesizer:
    """The profile's TTS (not loaded yet)."""
    return SYNTHESIZERS[settings.tts_engine](settings)


def _shipped_voices(settings: Settings) -> Path | None:
    _, voices_spec = tts_specs(settings)
    try:
        return assemble_shipped(voices_spec, settings.models_dir)
    except (ModelNotFoundError, OSError):
        return None


def build_pipeline(
    settings: Settings,
    transcriber: Transcriber,
    chat: ChatModel,
    synthesizer: Synthesizer,
    *,
    sessions: SessionStore | None = None,
    estimator: LevelEstimator | None = None,
    grammar: GrammarChecker | None = None,
) -> TurnPipeline:
    """The turn pipeline over loaded engines, with every limit from `settings`."""
    return TurnPipeline(
        transcriber,
        chat,
        synthesizer,
        sessions=sessions
        if sessions is not None
        else SessionStore(max_turns=settings.history_turns, max_sessions=settings.max_sessions),
        level=settings.level,
        max_audio_seconds=settings.max_audio_seconds,
        min_audio_seconds=settings.min_audio_seconds,
        max_audio_bytes=settings.max_upload_bytes,
        first_piece_min_chars=settings.first_piece_min_chars,
        first_piece_max_words=settings.first_piece_max_words,
        stt_timeout_s=settings.stt_timeout_s,
        compute=ComputeGate(settings.compute_slots),
        estimator=estimator,
        region=settings.region,
        grammar=grammar,
        rules=settings.grammar != "off",
    )


def build_grammar_server(settings: Settings) -> LanguageToolServer | None:
    """LanguageTool's server when `PARLE_GRAMMAR=languagetool` (not started yet); with `rules`
    or `off` none, and its module (and Java) is never touched."""
    if settings.grammar != "languagetool":
        return None
    from parle.engines.languagetool import LanguageToolServer

    return LanguageToolServer(settings)


async def start_grammar(server: LanguageToolServer | None) -> GrammarChecker | None:
    """Start LanguageTool (or find it answering) and return its checker. It never fails PARLE's
    start-up: where it cannot start, one warning, and the turns use PARLE's own rules. One
    PARLE does not run (`external`: another container, another box) may come up later: its
    checker is kept, failing (counted, `/ready`'s `grammar: down`) until it answers."""
    if server is None:
        return None
    try:
        await server.start()
    except Exception as exc:  # whatever it is, the tutor goes on without LanguageTool
        reason = str(exc) if isinstance(exc, GrammarUnavailableError) else type(exc).__name__
        log.warning(
            "grammar checker unavailable: PARLE keeps its own rules", extra={"reason": reason}
        )
        return server.checker() if server.external else None
    return server.checker()


def build_chat(settings: Settings) -> OpenAIChatModel:
    """The client of the OpenAI-compatible LLM server at `PARLE_LLM_URL`."""
    return OpenAIChatModel(
        settings.llm_url,
        max_tokens=settings.llm_max_tokens,
        temperature=settings.llm_temperature,
        timeout_s=settings.llm_request_timeout_s,
        api_key=settings.llm_api_key or None,
    )


class ParleRuntime:
    """The loaded engines, the LLM server and the turn pipeline of one PARLE process.

    `async with ParleRuntime(settings) as runtime:` resolves and loads everything (STT and TTS
    load in parallel while the LLM server starts) and stops what it started on exit.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.llm_server: LlmServer | None = None
        self.chat: OpenAIChatModel | None = None
        self.transcriber: Transcriber | None = None
        self.synthesizer: Synthesizer | None = None
        self.estimator: LevelEstimator | None = None
        self.grammar_server: LanguageToolServer | None = None
        self.grammar: GrammarChecker | None = None
        self.pipeline: TurnPipeline | None = None

    async def start(self) -> TurnPipeline:
        settings = self.settings
        gguf = None
        if settings.llm_backend == "llamacpp":
            gguf = require(llm_spec(settings), settings).path
        self.llm_server = LlmServer(settings, gguf=gguf)
        self.transcriber = build_transcriber(settings)
        self.synthesizer = build_synthesizer(settings)
        self.estimator = build_estimator(settings)
        self.grammar_server = build_grammar_server(settings)
        _, _, _, _, self.grammar = await asyncio.gather(
            self.llm_server.start(),
            asyncio.to_thread(self.transcriber.load),
            asyncio.to_thread(self.synthesizer.load),
            asyncio.to_thread(self.estimator.load),
            start_grammar(self.grammar_server),
        )
        self.chat = build_chat(settings)
        await self._warm_up_llm()
        self.pipeline = build_pipeline(
            settings,
            self.transcriber,
            self.chat,
            self.synthesizer,
            estimator=self.estimator,
            grammar=self.grammar,
        )
        return self.pipeline

    async def _warm_up_llm(self) -> None:
        """One tiny request: the server loads its weights and caches the system prompt."""
        assert self.chat is not None
        messages = build_messages([], "Olá!", level=self.settings.level)
        async for _ in self.chat.stream(messages, max_tokens=1):
            pass

    async def stop(self) -> None:
        for engine in (self.synthesizer, self.transcriber):
            if engine is not None:
                await asyncio.to_thread(engine.close)
        if self.chat is not None:
            await self.chat.aclose()
        if self.grammar is not None:
            await self.grammar.aclose()
        if self.grammar_server is not None:
            await self.grammar_server.stop()
        if self.llm_server is not None:
            await self.llm_server.stop()

    async def __aenter__(self) -> ParleRuntime:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
