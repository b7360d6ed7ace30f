"""Streaming text to speech with Qwen3-TTS 12 Hz CustomVoice (the `gpu` profile's voice).

One scheduler thread owns the model. Every active stream holds a row of a shared decoding
state (KV cache, last hidden state, position, frames made), so all streams advance together:
each step makes one 80 ms codec frame for every stream in one batched talker pass and one
batched code-predictor pass, however long ago each stream started. New streams are read
(prefilled) at the next step boundary, those that arrived together in one pass, and join;
a lone stream waits for nothing.

The step has fixed shapes (a batch size from a few buckets, attention over every cached
position) and never waits for the device: on CUDA each bucket's step is one captured graph
replayed per frame, since an eager step is ~4,000 small kernels issued from Python and the
GPU would wait on the host. End-of-speech is read back only when a chunk is due. Frames are
decoded to audio in small chunks with left context as they come, so a piece's first audio
leaves after `first_chunk_frames` frames instead of after its last.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import queue
import threading
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from parle.audio import AudioChunk, float_to_pcm16
from parle.engines.kokoro import pick_voice
from parle.engines.qwen3_tts_model import (
    SAMPLE_RATE,
    DecodeState,
    Sampling,
    SpeechCodec,
    StepGraphs,
    Talker,
    codec_decoder_config,
    talker_config,
)
from parle.errors import (
    EngineError,
    EngineFailedError,
    EngineInputError,
    EngineUnavailableError,
)
from parle.microbatch import batch_sizes
from parle.timestretch import TimeStretcher

log = logging.getLogger(__name__)

_ROLE = "<|im_start|>assistant\n"
_DONE = object()


@dataclass
class _Stream:
    """One piece being spoken: its cache row, how far it is, what it has been sent."""

    role_ids: list[int]
    body_ids: list[int]
    speaker: str
    deliver: Callable[[Any], None]
    cancelled: threading.Event = field(default_factory=threading.Event)
    row: int = -1
    max_frames: int = 0
    steps: int = 0  # steps since it joined: an upper bound of the frames it has made
    made: int = 0  # frames made, as last read from the device
    sent: int = 0  # frames sent as audio


class Qwen3TtsSynthesizer:
    """Qwen3-TTS 12 Hz CustomVoice behind the `Synthesizer` protocol, streamed.

    `model_dir` is laid out as the hub's `Qwen/Qwen3-TTS-12Hz-0.6B-CustomVoice`:
    `config.json`, `model.safetensors`, the text tokenizer, and `speech_tokenizer/`
    (`config.json`, `model.safetensors`). `voice` is one of the built-in speakers
    (`speakers`); `language` one of the config's languages. The model has no speed control:
    a requested speed time-stretches its audio. `cuda_graphs` (default: on CUDA) replays each
    batch size's step as a captured graph; off, the same fixed-shape step runs eagerly.
    """

    sample_rate = SAMPLE_RATE

    def __init__(
        self,
        model_dir: Path | str,
        *,
        speaker: str = "serena",
        language: str = "portuguese",
        device: str = "cuda",
        dtype: str | None = None,
        max_streams: int = 32,
        max_positions: int = 768,
        first_chunk_frames: int = 2,
        chunk_frames: int = 8,
        left_context_frames: int = 25,
        sampling: Sampling | None = None,
        text_in_prompt: bool = True,
        max_frames_per_char: float = 2.0,
        seed: int | None = None,
        cuda_graphs: bool | None = None,
    ) -> None:
        self.model_dir = Path(model_dir)
        self.speaker = speaker.lower()
        self.language = language.lower()
        self.device = device
        self.dtype = dtype or ("float32" if device == "cpu" else "bfloat16")
        self.max_streams = max_streams
        self.max_positions = max_positions
        self.first_chunk_frames = first_chunk_frames
        self.chunk_frames = chunk_frames
        self.left_context_frames = left_context_frames
        self.sampling = sampling or Sampling()
        self.text_in_prompt = text_in_prompt
        self.max_frames_per_char = max_frames_per_char
        self.seed = seed
        self.cuda_graphs = device.startswith("cuda") if cuda_graphs is None else cuda_graphs
        # Batched decode steps run and the frames they made; codec decoder passes and the
        # chunks they sent; the streams in flight now.
        self.steps = 0
        self.stream_steps = 0
        self.decoder_passes = 0
        self.chunks_sent = 0
        self.active_streams = 0
        self._talker: Any = None
        self._codec: Any = None
        self._tokenizer: Any = None
        self._state: DecodeState | None = None
        self._graphs: StepGraphs | None = None
        self._sizes = batch_sizes(max_streams)
        self._generator: Any = None
        self._tts_pad: Any = None  # the text track's padding, added once a piece's text is read
        self._role_ids: list[int] = []  # "<|im_start|>assistant\n", tokenized once
        self._inbox: queue.Queue[_Stream | None] = queue.Queue()
        self._thread: threading.Thread | None = None

    @property
    def speakers(self) -> list[str]:
        """The model's built-in speakers."""
        return sorted(self._talker.cfg.speakers) if self._talker is not None else []

    @property
    def voices(self) -> list[str]:
        return self.speakers

    def load(self) -> None:
        """Load talker, codec decoder and tokenizer onto the device; start the scheduler;
        then a warm-up piece."""
        import torch
        from transformers import AutoTokenizer, PretrainedConfig

        raw = json.loads((self.model_dir / "config.json").read_text())
        codec_raw = json.loads((self.model_dir / "speech_tokenizer" / "config.json").read_text())
        cfg = talker_config(raw)
        if self.language not in cfg.languages:
            known = ", ".join(sorted(cfg.languages))
            raise EngineUnavailableError(
                f"language {self.language!r} is not one of the model's: {known}"
            )
        if self.speaker not in cfg.speakers:
            known = ", ".join(sorted(cfg.speakers))
            raise EngineUnavailableError(
                f"speaker {self.speaker!r} is not one of the model's: {known}"
            )
        dtype = getattr(torch, self.dtype)
        if self.device.startswith("cuda"):
            # cuDNN's attention rebuilds its plan whenever the KV length changes, i.e. at
            # every decode step; the other SDPA kernels do not.
            torch.backends.cuda.enable_cudnn_sdp(False)
        with torch.device("meta"):
            talker = Talker(cfg)
            codec = SpeechCodec(codec_decoder_config(codec_raw))
        _load_weights(talker, _read_safetensors(self.model_dir, "model"), prefix="talker.")
        _load_weights(
            codec,
            _read_safetensors(self.model_dir / "speech_tokenizer", "model"),
            prefix="",
            only="decoder.",
            skip=(".rvq_first.input_proj.", ".rvq_rest.input_proj."),  # the encoder's side
        )
        self._talker = talker.to(self.device, dtype).eval()
        # The codec decoder stays in float32 (0.2 B parameters, 0.8 GB): its output is the
        # audio itself, and bf16 there has not been listened to.
        self._codec = codec.to(self.device, torch.float32).eval()
        # An empty config: the folder's config.json is the TTS model's, not a text model's.
        self._tokenizer = AutoTokenizer.from_pretrained(self.model_dir, config=PretrainedConfig())
        self._role_ids = self._tokenizer(_ROLE, add_special_tokens=False)["input_ids"]
        self._generator = torch.Generator(device=self.device)
        if self.seed is not None:
            self._generator.manual_seed(self.seed)
        with torch.inference_mode():
            pad_id = torch.tensor([cfg.text_ids["tts_pad_token_id"]], device=self.device)
            self._tts_pad = self._talker.text_embed(pad_id)[0]
            self._state = DecodeState(
                cfg,
                self.max_streams,
                self.max_positions,
                # Read in the prompt, the text leaves only the padding to add frame by frame.
                text_len=1 if self.text_in_prompt else self.max_positions,
                dtype=dtype,
                device=self.device,
            )
            if self.cuda_graphs:
                self._graphs = StepGraphs(self._advance, self._sizes, self._generator)
                self._state.reset()
        self._thread = threading.Thread(target=self._run, name="qwen3-tts", daemon=True)
        self._thread.start()
        self.synthesize_sync("Olá.")
        log.info(
            "qwen3-tts loaded",
            extra={
                "device": self.device,
                "dtype": self.dtype,
                "speakers": len(cfg.speakers),
                "cuda_graphs": self.cuda_graphs,
            },
        )

    def close(self) -> None:
        """Stop the scheduler; streams still running end with an error."""
        if self._thread is not None:
            self._inbox.put(None)
            self._thread.join(timeout=10)
            self._thread = None

    def resolve_voice(self, voice: str | None) -> str:
        return pick_voice(self.speakers, voice.lower() if voice else None, self.speaker)

    # requests ---------------------------------------------------------------------------

    def _submit(
        self, text: str, voice: str | None, deliver: Callable[[Any], None]
    ) -> _Stream | None:
        if self._thread is None:
            raise EngineUnavailableError("The speech engine is not loaded (or was closed).")
        speaker = self.resolve_voice(voice)
        if not any(ch.isalnum() for ch in text):
            return None  # punctuation alone: nothing to say
        body = self._tokenizer(text.strip(), add_special_tokens=False)["input_ids"]
        # Runaway guard (a model that never says end-of-speech): speech takes ~0.8 frames
        # (64 ms) per character.
        max_frames = 25 + int(self.max_frames_per_char * len(text))
        prompt_len = len(self._role_ids) + len(body) + 8
        if prompt_len + max_frames > self.max_positions:
            max_frames = self.max_positions - prompt_len - 1
            if max_frames < 8:
                raise EngineInputError(
                    f"Text too long for one piece ({len(body)} tokens; "
                    "raise PARLE_QWEN3_MAX_POSITIONS)"
                )
        stream = _Stream(self._role_ids, body, speaker, deliver, max_frames=max_frames)
        self._inbox.put(stream)
        return stream

    def synthesize_sync(self, text: str, *, voice: str | None = None) -> list[AudioChunk]:
        """All of `text`'s audio chunks (blocking; for warm-up, tests and benchmarks)."""
        box: queue.Queue[Any] = queue.Queue()
        if self._submit(text, voice, box.put) is None:
            return []
        chunks = []
        while (item := box.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            chunks.append(AudioChunk(float_to_pcm16(item), SAMPLE_RATE))
        return chunks

    async def synthesize(
        self, text: str, *, voice: str | None = None, speed: float | None = None
    ) -> AsyncGenerator[AudioChunk, None]:
        """Yield `text`'s audio chunk by chunk as the scheduler makes it. Leaving early (the
        turn was cancelled or the learner barged in) frees the stream at the next step. The
        model has no speed control: another `speed` than 1 is a time-stretch of its audio
        (pitch unchanged), so the tutor can still slow down for beginners."""
        loop = asyncio.get_running_loop()
        inbox: asyncio.Queue[Any] = asyncio.Queue()

        def deliver(item: Any) -> None:
            # RuntimeError: the caller's event loop is gone, nobody is listening.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(inbox.put_nowait, item)

        stream = self._submit(text, voice, deliver)
        if stream is None:
            return
        stretcher = TimeStretcher(speed, SAMPLE_RATE) if speed and abs(speed - 1) > 0.01 else None
        try:
            while (item := await inbox.get()) is not _DONE:
                if isinstance(item, BaseException):
                    raise item
                if stretcher is not None:
                    item = await asyncio.to_thread(stretcher.push, item)
                if len(item):
                    yield AudioChunk(float_to_pcm16(item), SAMPLE_RATE)
            if stretcher is not None and len(rest := stretcher.flush()):
                yield AudioChunk(float_to_pcm16(rest), SAMPLE_RATE)
        finally:
            stream.cancelled.set()

    # the scheduler thread --------------------------------------------------------------------

    def _run(self) -> None:
        import torch

        active: dict[int, _Stream] = {}  # by row
        waiting: list[_Stream] = []
        with torch.inference_mode():
            while True:
                try:
                    if not active and not waiting:
                        incoming = self._inbox.get()
                        if incoming is None:
                            return
                        waiting.append(incoming)
                    while not self._inbox.empty():
                        incoming = self._inbox.get_nowait()
                        if incoming is None:
                            self._fail([*active.values(), *waiting], EngineUnavailableError(
                                "The speech engine was closed."))  # fmt: skip
                            return
                        waiting.append(incoming)
                    for stream in [s for s in waiting if s.cancelled.is_set()]:
                        waiting.remove(stream)
                        stream.deliver(_DONE)
                    for stream in [s for s in active.values() if s.cancelled.is_set()]:
                        self._finish(stream, active)
                    joining = []
                    while waiting and len(active) < self.max_streams:
                        stream = waiting.pop(0)
                        # The lowest free row keeps the batch, which covers rows 0..top, small.
                        stream.row = min(set(range(self.max_streams)) - set(active))
                        active[stream.row] = stream
                        joining.append(stream)
                    if joining:
                        self._prefill(joining)
                    if active:
                        self._step(active)
                    self.active_streams = len(active)
                except Exception as exc:
                    log.exception("qwen3-tts step failed")
                    self._fail(list(active.values()), exc)
                    active.clear()
                    if self._state is not None:
                        self._state.reset()
                    self.active_streams = 0

    def _prefill(self, streams: list[_Stream]) -> None:
        """Read the new streams' prompts, together: one pass however many arrived at once."""
        assert self._state is not None
        prompts = [
            self._talker.prompt(
                stream.role_ids,
                stream.body_ids,
                self.language,
                stream.speaker,
                text_in_prompt=self.text_in_prompt,
            )
            for stream in streams
        ]
        rows = [stream.row for stream in streams]
        hidden = self._talker.prefill_rows(
            [embeds for embeds, _ in prompts], self._state.cache, rows
        )
        for i, (stream, (embeds, trailing)) in enumerate(zip(streams, prompts, strict=True)):
            self._state.start(stream.row, hidden[i], embeds.shape[0], trailing, stream.max_frames)

    def _advance(self, batch: int) -> None:
        assert self._state is not None
        self._talker.advance(self._state, batch, self.sampling, self._generator, self._tts_pad)

    def _step(self, active: dict[int, _Stream]) -> None:
        """One frame for every active stream, in one batched pass; then the chunks due."""
        top = max(active) + 1
        batch = next(size for size in self._sizes if size >= top)
        if self._graphs is not None:
            self._graphs.run(batch)
        else:
            self._advance(batch)
        self.steps += 1
        for stream in active.values():
            stream.steps += 1
        # After its first chunk, every stream sends at the same global steps, so steady
        # streams' chunks have one shape and share a decoder pass (a decoder call costs about
        # the same for 1 frame or 30: it is launch-bound on a GPU).
        boundary = self.steps % self.chunk_frames == 0
        due = [
            stream
            for stream in active.values()
            if stream.steps >= stream.max_frames
            or (boundary if stream.sent else stream.steps == self.first_chunk_frames)
        ]
        if due:
            self._emit(due, active)

    def _emit(self, streams: list[_Stream], active: dict[int, _Stream]) -> None:
        """Read how far `streams` are (one device sync), send what they made as audio, and
        finish those that ended. Chunks of one shape share one decoder pass."""
        import torch

        assert self._state is not None
        rows = torch.tensor([stream.row for stream in streams], device=self.device)
        made, done = torch.stack((self._state.made[rows], self._state.done[rows].long())).tolist()
        groups: dict[tuple[int, int], list[_Stream]] = {}
        for stream, frames in zip(streams, made, strict=True):
            self.stream_steps += frames - stream.made
            stream.made = frames
            if frames > stream.sent:
                start = max(0, stream.sent - self.left_context_frames)
                groups.setdefault((frames - start, stream.sent - start), []).append(stream)
        for (length, context), group in groups.items():
            codes = torch.stack([
                self._state.codes[s.row, s.sent - context : s.sent - context + length].T
                for s in group
            ])  # fmt: skip
            audio = self._codec.decoder.decode_chunk(codes, context).float().cpu().numpy()
            self.decoder_passes += 1
            self.chunks_sent += len(group)
            for stream, samples in zip(group, audio, strict=True):
                stream.sent = stream.made
                stream.deliver(np.asarray(samples, dtype=np.float32))
        for stream, ended in zip(streams, done, strict=True):
            if ended:
                self._finish(stream, active)

    def _finish(self, stream: _Stream, active: dict[int, _Stream]) -> None:
        assert self._state is not None
        if active.get(stream.row) is stream:
            del active[stream.row]
            self._state.stop(stream.row)
        stream.deliver(_DONE)

    def _fail(self, streams: list[_Stream], exc: BaseException) -> None:
        error = exc if isinstance(exc, EngineError) else EngineFailedError(
            f"Speech synthesis failed ({type(exc).__name__}).", stage="tts")  # fmt: skip
        for stream in streams:
            stream.deliver(error)


def _read_safetensors(folder: Path, stem: str) -> dict[str, Any]:
    """A checkpoint's tensors: `<stem>.safetensors` or the shards its index names."""
    from safetensors.torch import load_file

    single = folder / f"{stem}.safetensors"
    if single.is_file():
        return load_file(single)
    index = folder / f"{stem}.safetensors.index.json"
    if not index.is_file():
        raise FileNotFoundError(f"no {single.name} (or sharded index) in {folder}")
    shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
    tensors: dict[str, Any] = {}
    for shard in shards:
        tensors.update(load_file(folder / shard))
    return tensors


def _load_weights(
    module: Any,
    tensors: dict[str, Any],
    *,
    prefix: str,
    only: str = "",
    skip: tuple[str, ...] = (),
) -> None:
    """Put `tensors` (names under `prefix`) into `module`; every parameter must be given."""
    wanted = {
        name[len(prefix) :]: value
        for name, value in tensors.items()
        if name.startswith(prefix) and name[len(prefix) :].startswith(only)
        and not any(part in name for part in skip)
    }  # fmt: skip
    missing, unexpected = module.load_state_dict(wanted, strict=False, assign=True)
    if missing or unexpected:
        raise ValueError(
            f"checkpoint does not fit {type(module).__name__}: "
            f"missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
            f"unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}"
        )
