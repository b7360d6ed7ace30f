"""Builds the active profile's engines from settings, loads them once, and owns their life."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import TracebackType

from parle.config import Settings
from parle.engines.base import ChatModel, Synthesizer, Transcriber
from parle.engines.chat import OpenAIChatModel
from parle.engines.kokoro import KokoroSynthesizer
from parle.engines.kokoro_torch import KokoroTorchSynthesizer
from parle.engines.llm_server import LlmServer
from parle.engines.qwen3_tts import Qwen3TtsSynthesizer
from parle.engines.whisper import WhisperTranscriber
from parle.engines.whisper_hf import HfWhisperTranscriber
from parle.errors import ParleError
from parle.models import (
    ModelNotFoundError,
    assemble_shipped,
    classifier_spec,
    find_file,
    llm_spec,
    require,
    stt_spec,
    tts_specs,
)
from parle.scheduler import ComputeGate
from parle.sessions import SessionStore
from parle.turn import TurnPipeline
from parle.tutor.levels import LevelEstimator, LexicalLevelEstimator
from parle.tutor.prompts import build_messages


class UnsupportedEngineError(ParleError):
    """The profile asks for an engine this build of PARLE cannot run here."""

    code = "unsupported_engine"


def build_transcriber(settings: Settings) -> WhisperTranscriber | HfWhisperTranscriber:
    """The profile's Whisper (not loaded yet), on the configured backend."""
    model = require(stt_spec(settings), settings)
    if settings.stt_backend == "transformers":
        return HfWhisperTranscriber(
            model.path,
            device=settings.stt_device,
            dtype=_torch_dtype(settings.stt_compute_type, settings.stt_device),
            language=settings.stt_language,
            min_speech_ms=settings.stt_min_speech_ms,
            batch_window_s=settings.stt_batch_window_ms / 1000,
            max_batch=settings.stt_max_batch,
        )
    return WhisperTranscriber(
        model.path,
        device=settings.stt_device,
        compute_type=settings.stt_compute_type,
        language=settings.stt_language,
        beam_size=settings.stt_beam_size,
        threads=settings.stt_threads,
        no_speech_threshold=settings.stt_no_speech_threshold,
        max_compression_ratio=settings.stt_max_compression_ratio,
        min_speech_ms=settings.stt_min_speech_ms,
    )


def _torch_dtype(compute_type: str, device: str) -> str:
    """CTranslate2's compute types as a torch dtype (int8 kinds have no torch twin here)."""
    if compute_type in ("float16", "bfloat16", "float32"):
        return compute_type
    return "float32" if device == "cpu" else "float16"


AnySynthesizer = KokoroSynthesizer | KokoroTorchSynthesizer | Qwen3TtsSynthesizer


def build_synthesizer(settings: Settings) -> AnySynthesizer:
    """The profile's TTS (not loaded yet)."""
    if settings.tts_engine == "kokoro-torch":
        (model_spec,) = tts_specs(settings)
        return KokoroTorchSynthesizer(
            require(model_spec, settings).folder,
            voice=settings.tts_voice,
            device=settings.tts_device,
            speed=settings.tts_speed,
        )
    if settings.tts_engine == "qwen3":
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
        )
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


def build_estimator(settings: Settings) -> LevelEstimator:
    """The profile's CEFR level estimator (not loaded yet)."""
    if settings.level_estimator == "mdeberta":
        from parle.tutor.mdeberta import MdebertaLevelEstimator

        model = require(classifier_spec(settings), settings)
        return MdebertaLevelEstimator(model.path, device=settings.classifier_device)
    return LexicalLevelEstimator()


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
    )


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
        self.transcriber: WhisperTranscriber | HfWhisperTranscriber | None = None
        self.synthesizer: AnySynthesizer | None = None
        self.estimator: LevelEstimator | None = None
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
        await asyncio.gather(
            self.llm_server.start(),
            asyncio.to_thread(self.transcriber.load),
            asyncio.to_thread(self.synthesizer.load),
            asyncio.to_thread(self.estimator.load),
        )
        self.chat = build_chat(settings)
        await self._warm_up_llm()
        self.pipeline = build_pipeline(
            settings, self.transcriber, self.chat, self.synthesizer, estimator=self.estimator
        )
        return self.pipeline

    async def _warm_up_llm(self) -> None:
        """One tiny request: the server loads its weights and caches the system prompt."""
        assert self.chat is not None
        messages = build_messages([], "Olá!", level=self.settings.level)
        async for _ in self.chat.stream(messages, max_tokens=1):
            pass

    async def stop(self) -> None:
        if isinstance(self.synthesizer, Qwen3TtsSynthesizer):
            await asyncio.to_thread(self.synthesizer.close)
        if self.chat is not None:
            await self.chat.aclose()
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
