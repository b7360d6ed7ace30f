"""Streaming text to speech with Qwen3-TTS 12 Hz CustomVoice (the `gpu` profile's voice).

One scheduler thread owns the model. Every active stream holds a row of a shared KV cache,
so all streams advance together: each step makes one 80 ms codec frame for every stream in
one batched talker pass and one batched code-predictor pass, however long ago each stream
started. A new stream is read (prefilled) alone at the next step boundary and then joins;
a lone stream waits for nothing. Frames are decoded to audio in small chunks with left
context as they come, so a piece's first audio leaves after `first_chunk_frames` frames
instead of after its last.
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
    KvCache,
    Sampling,
    SpeechCodec,
    Talker,
    codec_decoder_config,
    talker_config,
)
from parle.errors import EngineInputError, EngineUnavailableError
from parle.timestretch import TimeStretcher

log = logging.getLogger(__name__)

_ROLE = "<|im_start|>assistant\n"
_DONE = object()


@dataclass
class _Stream:
    """One piece being spoken: its cache row, where it is, what it still owes."""

    role_ids: list[int]
    body_ids: list[int]
    speaker: str
    deliver: Callable[[Any], None]
    cancelled: threading.Event = field(default_factory=threading.Event)
    row: int = -1
    position: int = 0
    made: int = 0  # frames made so far
    max_frames: int = 0
    trailing: Any = None
    hidden: Any = None
    codes: list[Any] = field(default_factory=list)  # the unsent frames and their left context
    unsent: int = 0


class Qwen3TtsSynthesizer:
    """Qwen3-TTS 12 Hz CustomVoice behind the `Synthesizer` protocol, streamed.

    `model_dir` is laid out as the hub's `Qwen/Qwen3-TTS-12Hz-0.6B-CustomVoice`:
    `config.json`, `model.safetensors`, the text tokenizer, and `speech_tokenizer/`
    (`config.json`, `model.safetensors`). `voice` is one of the built-in speakers
    (`speakers`); `language` one of the config's languages. The model has no speed control:
    a requested speed time-stretches its audio.
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
        self._cache: Any = None
        self._seen: Any = None  # (rows, vocab): the codes 0 each row has said (repetition penalty)
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
        with torch.inference_mode():
            pad_id = torch.tensor([cfg.text_ids["tts_pad_token_id"]], device=self.device)
            self._tts_pad = self._talker.text_embed(pad_id)[0]
        self._cache = KvCache(
            cfg.stack, self.max_streams, self.max_positions, dtype=dtype, device=self.device
        )
        self._seen = torch.zeros(
            self.max_streams, cfg.vocab_size, dtype=torch.bool, device=self.device
        )
        self._generator = torch.Generator(device=self.device)
        if self.seed is not None:
            self._generator.manual_seed(self.seed)
        self._thread = threading.Thread(target=self._run, name="qwen3-tts", daemon=True)
        self._thread.start()
        self.synthesize_sync("Olá.")
        log.info(
            "qwen3-tts loaded",
            extra={"device": self.device, "dtype": self.dtype, "speakers": len(cfg.speakers)},
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

        active: list[_Stream] = []
        waiting: list[_Stream] = []
        free_rows = list(range(self.max_streams))
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
                            self._fail(active + waiting, RuntimeError("the TTS engine stopped"))
                            return
                        waiting.append(incoming)
                    for stream in [s for s in active + waiting if s.cancelled.is_set()]:
                        self._finish(stream, active, waiting, free_rows)
                    while waiting and free_rows:
                        stream = waiting.pop(0)
                        stream.row = free_rows.pop(0)
                        active.append(stream)
                        self._prefill(stream)
                    if active:
                        self._step(active, waiting, free_rows)
                    self.active_streams = len(active)
                except Exception as exc:
                    log.exception("qwen3-tts step failed")
                    self._fail(active, exc)
                    free_rows[:] = range(self.max_streams)
                    active.clear()
                    self.active_streams = 0

    def _prefill(self, stream: _Stream) -> None:

        talker = self._talker
        embeds, trailing = talker.prompt(
            stream.role_ids,
            stream.body_ids,
            self.language,
            stream.speaker,
            text_in_prompt=self.text_in_prompt,
        )
        stream.hidden = talker.prefill(embeds, self._cache, stream.row)
        stream.trailing = trailing
        stream.position = embeds.shape[0]
        self._seen[stream.row] = False

    def _step(self, active: list[_Stream], waiting: list[_Stream], free_rows: list[int]) -> None:
        """One frame for every active stream, in one batched pass."""
        import torch

        talker = self._talker
        device = self._cache.keys[0].device
        hidden = torch.cat([s.hidden for s in active])
        all_rows = torch.tensor([s.row for s in active], device=device)
        seen = self._seen[all_rows]
        allow_eos = torch.tensor([s.made >= 2 for s in active], device=device)
        code0 = talker.first_codes(hidden, seen, allow_eos, self.sampling, self._generator)
        eos = talker.cfg.codec_ids["codec_eos_token_id"]
        ended = (code0 == eos).tolist()
        going = [i for i, stream in enumerate(active) if not ended[i]]
        self.steps += 1
        self.stream_steps += len(active)
        if going:
            index = torch.tensor(going, device=device)
            frames, summed = talker.frame(
                hidden[index], code0[index], self.sampling, self._generator
            )
            texts = []
            for j, i in enumerate(going):
                stream = active[i]
                stream.codes.append(frames[j])
                stream.unsent += 1
                step = stream.made
                stream.made += 1
                # The text still to read joins frame by frame, then padding.
                has_text = step < stream.trailing.shape[0]
                texts.append(stream.trailing[step] if has_text else self._tts_pad)
            rows = all_rows[index]
            self._seen[rows, code0[index]] = True
            positions = torch.tensor([active[i].position for i in going], device=device)
            new_hidden = talker.decode_step(
                summed + torch.stack(texts), self._cache, rows, positions
            )
            for j, i in enumerate(going):
                active[i].hidden = new_hidden[j : j + 1]
                active[i].position += 1
        finished = [s for i, s in enumerate(active) if ended[i] or s.made >= s.max_frames]
        self._emit([s for s in active if s not in finished], final=False)
        self._emit(finished, final=True)
        for stream in finished:
            self._finish(stream, active, waiting, free_rows)

    def _emit(self, streams: list[_Stream], *, final: bool) -> None:
        """Decode and send the frames that a chunk boundary (or the end) makes ready. Streams
        whose chunks have the same shape share one decoder pass."""
        import torch

        # After its first chunk, every stream sends at the same global steps, so steady
        # streams' chunks have one shape and share a pass (a decoder call costs about the
        # same for 1 frame or 30: it is launch-bound on a GPU).
        boundary = self.steps % self.chunk_frames == 0
        groups: dict[tuple[int, int], list[_Stream]] = {}
        for stream in streams:
            first = stream.unsent == stream.made
            due = stream.unsent >= self.first_chunk_frames if first else boundary
            if stream.unsent and (due or final):
                groups.setdefault((len(stream.codes), stream.unsent), []).append(stream)
        for (length, unsent), group in groups.items():
            codes = torch.stack([torch.stack(stream.codes).T for stream in group])
            audio = self._codec.decoder.decode_chunk(codes, length - unsent).float().cpu().numpy()
            self.decoder_passes += 1
            self.chunks_sent += len(group)
            for stream, samples in zip(group, audio, strict=True):
                stream.unsent = 0
                keep = self.left_context_frames
                stream.codes = stream.codes[-keep:] if keep else []
                stream.deliver(np.asarray(samples, dtype=np.float32))

    def _finish(
        self, stream: _Stream, active: list[_Stream], waiting: list[_Stream], free_rows: list[int]
    ) -> None:
        if stream in waiting:
            waiting.remove(stream)
        if stream in active:
            active.remove(stream)
            free_rows.append(stream.row)
        stream.deliver(_DONE)

    def _fail(self, streams: list[_Stream], exc: BaseException) -> None:
        for stream in streams:
            stream.deliver(RuntimeError(f"speech synthesis failed: {exc}"))


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
