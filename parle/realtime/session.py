"""One `/v1/realtime` connection: server-side turn-taking, incremental STT and speculative
replies over PARLE's shared `TurnPipeline` (docs/protocols.md, section 9).

Audio arrives in small appends. Silero VAD runs on each 32 ms window as it comes (off the
event loop); while the learner speaks, the turn so far is transcribed every
`partial_interval_ms` of new speech (`...transcription.delta`). When the speech stops for
`speculation_ms`, the reply starts at once, speculatively: the final transcript, the LLM and
the first TTS piece run while the endpointing silence is still being waited out, and what they
produce is held. When the silence reaches the endpointing delay the turn is confirmed and the
held events go out; if the learner speaks again first, the speculative reply is cancelled (its
LLM stream and TTS stop) and forgotten, and the turn goes on.

A transcription session (`session.type` `"transcription"`, or `?intent=transcription`) is the
same turn-taking with no replies: the LiveKit agent's streaming STT. At the pause its final
transcript is drafted at once (`parle.input_audio_transcription.draft` when it is ready), and
sent as `...completed` when the silence reaches the endpointing delay or the client commits.

Each reply works on a fork of the session's memory, adopted when the reply ends: a discarded
speculation leaves no trace (not in the history, not in the level tracker), and a reply cut
short (barge-in, `response.cancel`) is remembered only as far as the learner heard it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import copy
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np
from pydantic import ValidationError

from parle import wire
from parle.audio import STT_SAMPLE_RATE, FloatAudio
from parle.engines.base import Transcript
from parle.errors import ParleError
from parle.realtime import events as ev
from parle.realtime.audio import AudioFormat, InputDecoder, OutputEncoder
from parle.realtime.vad import Segmenter, SegmenterConfig, StreamingVad, VadEvent
from parle.sessions import SessionMemory
from parle.tenants import DEFAULT_TENANT
from parle.turn import (
    MAX_TYPED_CHARS,
    AudioEvent,
    CompleteEvent,
    CorrectionEvent,
    LevelEvent,
    ResponseDeltaEvent,
    ResponseEvent,
    TurnOptions,
    TurnPipeline,
    TurnTimings,
)
from parle.tutor.policy import TutorPolicy
from parle.tutor.scenarios import UnknownScenarioError, get_scenario

log = logging.getLogger(__name__)

Event = dict[str, Any]

# How the socket of a client that stopped reading is closed: policy violation (a client must
# read what it asked for), with a reason a person can read in the client's log.
CLOSE_NOT_READING = 1008
NOT_READING = "client not reading: too many events pending"


class Door(Protocol):
    """What the server gives a session: admission and metrics, as for every other door."""

    def admit(
        self, quiet_cancel: Callable[[], bool], *, transcription: bool = False
    ) -> contextlib.AbstractAsyncContextManager[None]:
        """One reply's admission (turn gate, time limit, failures counted), or one final
        transcript's (`transcription`); raises a `ParleError` when refused. A cancellation is
        not counted when `quiet_cancel()`."""
        ...

    def observe_turn(self, timings: TurnTimings) -> None: ...

    def observe_speculation(self, outcome: str) -> None:
        """`started`, `kept` or `discarded`."""
        ...


@dataclass(frozen=True)
class RealtimeConfig:
    level: str = "A2"
    language: str | None = None
    speculation_ms: int = 200
    partial_interval_ms: int = 600
    events_per_s: int = 200
    max_event_bytes: int = 10 * 1024 * 1024
    max_audio_seconds: float = 60.0
    min_audio_seconds: float = 0.2
    # Events a client may leave unread (JSON characters, about bytes) before the session ends:
    # past it, the client has stopped reading, and what it asks for only piles up in memory.
    # At least a whole reply's audio: a kept speculation's events are released at once.
    max_outbox_bytes: int = 10 * 1024 * 1024


@dataclass
class TurnDetection:
    threshold: float = 0.5
    prefix_padding_ms: int = 300
    silence_duration_ms: int | None = None  # None: the level's endpointing delay
    create_response: bool = True
    interrupt_response: bool = True


class _AudioBuffer:
    """The session's 16 kHz input since `start` (a sample index of the session's stream)."""

    def __init__(self) -> None:
        self.start = 0
        self._chunks: list[FloatAudio] = []
        self.end = 0

    def append(self, samples: FloatAudio) -> None:
        if samples.size:
            self._chunks.append(samples)
            self.end += samples.size

    def since(self, start: int, end: int | None = None) -> FloatAudio:
        whole = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.float32)
        self._chunks = [whole] if whole.size else []
        lo = max(0, start - self.start)
        hi = (end if end is not None else self.end) - self.start
        return whole[lo : max(lo, hi)]

    def keep_from(self, start: int) -> None:
        """Forget what came before `start`."""
        start = min(max(start, self.start), self.end)
        kept = self.since(start)
        self._chunks = [kept] if kept.size else []
        self.start = start

    def clear(self) -> None:
        self.keep_from(self.end)


@dataclass
class _Reply:
    id: str
    item_id: str  # the assistant item
    user_item_id: str | None
    memory: SessionMemory
    confirmed: bool
    respond: bool = True  # False: transcribe the turn only (manual turns; create_response off)
    held: list[Event] = field(default_factory=list)
    task: asyncio.Task[None] | None = None
    discarded: bool = False
    status: str = "in_progress"
    created: bool = False  # response.created emitted (held or sent)
    user_text: str = ""
    text: str = ""
    pieces: list[tuple[float, str]] = field(default_factory=list)  # (offset s, spoken text)
    audio_s: float = 0.0
    first_audio_at: float | None = None  # when its first audio went out
    speech_end_at: float | None = None  # when the learner stopped speaking (wall clock)
    timings: TurnTimings | None = None
    encoder: OutputEncoder | None = None
    last_piece: str | None = None
    finished: bool = False  # its work is over (a speculation may finish before it is kept)


def fork_memory(memory: SessionMemory) -> SessionMemory:
    """A copy of a session's memory a reply may change freely."""
    fork = SessionMemory(memory.max_turns)
    adopt_memory(fork, memory)
    return fork


def adopt_memory(memory: SessionMemory, source: SessionMemory) -> None:
    """Make `memory` hold what `source` holds (history, level tracker, notes, the next
    reply's correction hint)."""
    messages = source.messages
    memory.clear()
    for user, assistant in zip(messages[::2], messages[1::2], strict=False):
        memory.add_turn(user["content"], assistant["content"])
    memory.level = copy.deepcopy(source.level)
    memory.notes = dict(source.notes)
    memory.pending_hint = source.pending_hint


def replace_last_reply(memory: SessionMemory, user_text: str, reply: str) -> bool:
    """Make the last exchange `user_text` -> `reply` (dropped when `reply` is empty); False
    when the last exchange is not that learner's."""
    messages = memory.messages
    if len(messages) < 2 or messages[-2]["content"] != user_text:
        return False
    memory.clear()
    for user, assistant in zip(messages[:-2:2], messages[1:-2:2], strict=False):
        memory.add_turn(user["content"], assistant["content"])
    if reply.strip():
        memory.add_turn(user_text, reply.strip())
    return True


class RealtimeSession:
    """The state machine of one realtime connection; transport-free (`send` writes one JSON
    event's text, `door` admits replies and counts them, `hang_up(code, reason)` ends the
    connection: the client stopped reading)."""

    def __init__(
        self,
        pipeline: TurnPipeline,
        door: Door,
        send: Callable[[str], Awaitable[None]],
        *,
        memory: SessionMemory,
        session_id: str,
        config: RealtimeConfig,
        transcription: bool = False,
        tenant: str = DEFAULT_TENANT,
        hang_up: Callable[[int, str], None],
    ) -> None:
        self.pipeline = pipeline
        self.door = door
        self._send = send
        self._hang_up = hang_up
        self.memory = memory
        self.session_id = session_id
        self.config = config
        self.options = TurnOptions(level=None, language=config.language, tenant=tenant)
        self.input_format = AudioFormat()
        self.output_format = AudioFormat()
        self.turn_detection: TurnDetection | None = TurnDetection()
        self._decoder = InputDecoder(self.input_format)
        self._vad: StreamingVad | None = None
        self._segmenter = Segmenter(self._segmenter_config())
        self._buffer = _AudioBuffer()
        self._origin = 0  # where the VAD's stream began, in the session's samples
        self._turn_start: int | None = None  # where the learner's turn began (samples)
        self._item_id: str | None = None  # the learner's item being spoken
        self._last_item_id: str | None = None
        self._pending_text: list[str] = []
        self._transcribing: asyncio.Task[None] | None = None
        self.reply: _Reply | None = None  # the reply in progress (speculative or confirmed)
        self._last_reply: _Reply | None = None  # the last confirmed reply, for truncation
        self._partial: asyncio.Task[None] | None = None
        self._partial_at = 0
        self._partial_words: list[str] = []
        self._emitted_words: list[str] = []
        self._too_long_told = False
        # Bounded by `config.max_outbox_bytes` (the JSON text it holds), not by count: an
        # audio delta can be a thousand times a transcript delta.
        self._outbox: asyncio.Queue[str | None] = asyncio.Queue()
        self._outbox_bytes = 0
        self._not_reading = False
        self._writer: asyncio.Task[None] | None = None
        self.closed = False
        self.transcription = transcription  # a transcription session: no replies
        self._draft: asyncio.Task[Transcript] | None = None  # the turn's transcript at a pause
        self._tokens = float(2 * config.events_per_s)
        self._tokens_at = time.monotonic()
        self._flood_told_at = 0.0

    # -- life -------------------------------------------------------------------------------

    async def start(self) -> None:
        self._writer = asyncio.create_task(self._write())
        self._emit(ev.server_event("session.created", session=self._session_object()))

    async def close(self) -> None:
        self.closed = True
        await self._discard_speculation()
        self._drop_draft()
        if self.reply is not None:
            await self._cancel_reply(self.reply)
        for task in (self._partial, self._transcribing):
            if task is not None:
                task.cancel()
        self._outbox.put_nowait(None)
        if self._writer is not None:
            if not self._not_reading:  # what is queued may still go out, for a second
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait([self._writer], timeout=1.0)
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait([self._writer])

    def _emit(self, event: Event) -> None:
        if self.closed and event.get("type") != "session.created":
            return
        if self._outbox_bytes > self.config.max_outbox_bytes:
            self._stop_not_reading()
            return
        text = json.dumps(event, ensure_ascii=False)
        self._outbox_bytes += len(text)
        self._outbox.put_nowait(text)

    def _stop_not_reading(self) -> None:
        """The client left `max_outbox_bytes` unread: it has stopped reading. Nothing more is
        sent or started, and the connection is ended (`CLOSE_NOT_READING`)."""
        self.closed = True
        self._not_reading = True
        log.info(
            "realtime client not reading: closed",
            extra={"session_id": self.session_id, "unread_bytes": self._outbox_bytes},
        )
        self._hang_up(CLOSE_NOT_READING, NOT_READING)

    async def _write(self) -> None:
        while (text := await self._outbox.get()) is not None:
            try:
                await self._send(text)
            except Exception:
                self.closed = True  # the client is gone: the route sees the disconnect
                return
            self._outbox_bytes -= len(text)

    # -- client events ----------------------------------------------------------------------

    async def handle(self, raw: str | bytes) -> None:
        """One client message (a WebSocket frame)."""
        if len(raw) > self.config.max_event_bytes:
            limit = self.config.max_event_bytes // (1024 * 1024)
            self._error("too_large", f"The event is too large (the limit is {limit} MB).")
            return
        if not self._allow():
            return
        if isinstance(raw, bytes):
            self._error("invalid_event", "Send events as JSON text messages.")
            return
        try:
            event = ev.client_event.validate_json(raw)
        except ValidationError as exc:
            self._error("invalid_event", f"Bad event ({wire.validation_problem(exc)[:200]}).")
            return
        if self.transcription and isinstance(
            event, ev.ItemCreate | ev.ResponseCreate | ev.ResponseCancel | ev.ItemTruncate
        ):
            self._error(
                "not_in_transcription_session",
                f"{event.type} needs a realtime session; this one only transcribes.",
                event_id=event.event_id,
            )
        elif isinstance(event, ev.AudioAppend):
            await self._append(event)
        elif isinstance(event, ev.SessionUpdate):
            await self._update(event)
        elif isinstance(event, ev.AudioCommit):
            await self._commit(event)
        elif isinstance(event, ev.AudioClear):
            await self._clear()
        elif isinstance(event, ev.ItemCreate):
            self._item_create(event)
        elif isinstance(event, ev.ResponseCreate):
            await self._response_create(event)
        elif isinstance(event, ev.ResponseCancel):
            await self._response_cancel(event)
        elif isinstance(event, ev.ItemTruncate):
            self._truncate_item(event)

    def _allow(self) -> bool:
        """A token bucket over client events: a flood is answered, not served."""
        now = time.monotonic()
        rate = self.config.events_per_s
        self._tokens = min(2.0 * rate, self._tokens + (now - self._tokens_at) * rate)
        self._tokens_at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        if now - self._flood_told_at >= 1.0:
            self._flood_told_at = now
            self._error("rate_limited", f"Too many events (the limit is {rate} a second).")
        return False

    def _error(self, code: str, message: str, *, event_id: str | None = None) -> None:
        self._emit(ev.error_event(code, message, event_id=event_id))

    async def _update(self, event: ev.SessionUpdate) -> None:
        session = event.session
        options = self.options
        detection = self.turn_detection
        input_format, output_format = self.input_format, self.output_format
        audio_in = session.audio.input if session.audio else None
        audio_out = session.audio.output if session.audio else None
        try:
            if audio_in is not None:
                if audio_in.format is not None:
                    input_format = _format(audio_in.format)
                if "turn_detection" in audio_in.model_fields_set:
                    td = audio_in.turn_detection
                    detection = None if td is None else _detection(td, detection)
                if audio_in.transcription is not None and audio_in.transcription.language:
                    options = replace(options, language=self._language(audio_in.transcription))
            if audio_out is not None:
                if audio_out.format is not None:
                    output_format = _format(audio_out.format)
                if audio_out.voice is not None:
                    voices = self.pipeline.synthesizer.voices
                    if voices and audio_out.voice not in voices:
                        raise _Refused(
                            "bad_voice", f"Unknown voice; available: {', '.join(voices)}."
                        )
                    options = replace(options, voice=audio_out.voice)
                if audio_out.speed is not None:
                    options = replace(options, speed=audio_out.speed)
            if session.parle is not None:
                parle = session.parle
                if parle.level is not None:
                    options = replace(options, level=parle.level.upper())
                if "learner_id" in parle.model_fields_set:
                    options = replace(options, learner_id=parle.learner_id)
                if "scenario" in parle.model_fields_set:
                    # Known now, as the other doors check it: not at every reply, each failing.
                    scenario = get_scenario(parle.scenario).id if parle.scenario else None
                    options = replace(options, scenario=scenario)
        except (_Refused, UnknownScenarioError) as exc:
            self._error(exc.code, str(exc), event_id=event.event_id)
            return
        transcription = self.transcription
        if session.type is not None:
            transcription = session.type == "transcription"
        restart = (
            input_format != self.input_format
            or (detection is None) != (self.turn_detection is None)
            or transcription != self.transcription
        )
        self.transcription = transcription
        self.options, self.turn_detection = options, detection
        self.input_format, self.output_format = input_format, output_format
        if restart:  # a new stream: what was buffered in the old format or mode goes
            await self._discard_speculation()
            if self.reply is not None:
                await self._cancel_reply(self.reply)
            self._decoder = InputDecoder(input_format)
            self._reset_input()
        self._segmenter.config = self._segmenter_config()
        self._emit(ev.server_event("session.updated", session=self._session_object()))

    def _language(self, transcription: ev.TranscriptionIn) -> str:
        code = (transcription.language or "").replace("_", "-").split("-")[0].lower()
        languages = self.pipeline.transcriber.languages
        if not code or (languages and code not in languages):
            raise _Refused("bad_language", "language: speech recognition does not know it.")
        return code

    async def _append(self, event: ev.AudioAppend) -> None:
        try:
            data = base64.b64decode(event.audio, validate=True)
        except (binascii.Error, ValueError):
            self._error("bad_audio", "audio must be base64.", event_id=event.event_id)
            return
        samples = self._decoder(data)
        if not samples.size:
            return
        if self.turn_detection is None:
            self._append_manual(samples)
            return
        if self._vad is None:
            self._vad = await asyncio.to_thread(StreamingVad)
        self._buffer.append(samples)
        probabilities = await asyncio.to_thread(self._vad, samples)
        for vad_event in self._segmenter.feed(probabilities):
            await self._on_vad(VadEvent(vad_event.kind, vad_event.sample + self._origin))
        if self._turn_start is None:
            # Before speech, only the prefix padding (and the windows a start needs) is kept.
            keep = (self.turn_detection.prefix_padding_ms + 200) * STT_SAMPLE_RATE // 1000
            if self._buffer.end - self._buffer.start > 2 * keep:
                self._buffer.keep_from(self._buffer.end - keep)
        elif (self.reply is None or self.reply.confirmed) and self._draft is None:
            self._maybe_partial()  # none past a pause: the turn's transcript is under way

    def _append_manual(self, samples: FloatAudio) -> None:
        if self._item_id is None:
            self._item_id = ev.new_id("item")
            self._turn_start = self._buffer.end
        held = self._buffer.end - self._buffer.start
        if held + samples.size > self.config.max_audio_seconds * STT_SAMPLE_RATE:
            if not self._too_long_told:
                self._too_long_told = True
                seconds = f"{self.config.max_audio_seconds:g}"
                self._error("too_long", f"The audio buffer is full ({seconds} s); commit it.")
            return
        self._buffer.append(samples)

    def _reset_input(self) -> None:
        """Forget the buffered input; the VAD starts a new stream where it ends."""
        self._buffer.clear()
        self._origin = self._buffer.end
        self._segmenter = Segmenter(self._segmenter_config())
        self._vad = None
        self._turn_start = None
        self._item_id = None
        self._too_long_told = False
        self._partial_words, self._emitted_words = [], []
        self._drop_draft()

    async def _commit(self, event: ev.AudioCommit) -> None:
        await self._discard_speculation()
        audio = self._buffer.since(self._turn_start) if self._turn_start is not None else None
        if audio is None or audio.size < self.config.min_audio_seconds * STT_SAMPLE_RATE:
            self._error(
                "input_audio_buffer_commit_empty",
                f"Commit needs at least {self.config.min_audio_seconds * 1000:.0f} ms of audio.",
                event_id=event.event_id,
            )
            return
        item_id = self._item_id or ev.new_id("item")
        draft = self._take_draft()
        self._commit_events(item_id)
        self._reset_input()
        self._transcribe_only(item_id, audio, draft)

    async def _clear(self) -> None:
        await self._discard_speculation()
        self._reset_input()
        self._emit(ev.server_event("input_audio_buffer.cleared"))

    def _item_create(self, event: ev.ItemCreate) -> None:
        text = " ".join(part.text.strip() for part in event.item.content).strip()
        if not self._add_pending(text, event_id=event.event_id):
            return
        item_id = ev.new_id("item")
        item = _user_item(item_id, [{"type": "input_text", "text": text}])
        self._emit(
            ev.server_event(
                "conversation.item.added", previous_item_id=self._last_item_id, item=item
            )
        )
        self._last_item_id = item_id

    def _add_pending(self, text: str, *, event_id: str | None = None) -> bool:
        """Add `text` to the learner's words awaiting a response: together they are one
        turn, bounded as a typed turn is at every door; past that, refused (`text_too_long`)."""
        length = sum(len(pending) + 1 for pending in self._pending_text) + len(text)
        if length > MAX_TYPED_CHARS:
            self._error(
                "text_too_long",
                f"The turn is too long (at most {MAX_TYPED_CHARS} characters awaiting a "
                "response); send response.create first.",
                event_id=event_id,
            )
            return False
        self._pending_text.append(text)
        return True

    async def _response_create(self, event: ev.ResponseCreate) -> None:
        await self._discard_speculation()
        if self.reply is not None and self.reply.confirmed and self.reply.respond:
            self._error(
                "conversation_already_has_active_response",
                "A response is in progress; cancel it first.",
                event_id=event.event_id,
            )
            return
        reply = self._new_reply(None, confirmed=True)
        reply.task = asyncio.create_task(self._run_reply(reply, None, self._transcribing))

    async def _response_cancel(self, event: ev.ResponseCancel) -> None:
        reply = self.reply
        if reply is None or not reply.confirmed or not reply.respond:
            self._error(
                "response_cancel_not_active", "No response is in progress.", event_id=event.event_id
            )
            return
        await self._cancel_reply(reply)

    def _truncate_item(self, event: ev.ItemTruncate) -> None:
        reply = self._last_reply
        if reply is None or reply.item_id != event.item_id:
            self._error("item_not_found", "No such assistant item.", event_id=event.event_id)
            return
        self._remember_spoken(reply, event.audio_end_ms / 1000)
        self._emit(
            ev.server_event(
                "conversation.item.truncated",
                item_id=reply.item_id,
                content_index=0,
                audio_end_ms=event.audio_end_ms,
            )
        )

    # -- turn-taking ------------------------------------------------------------------------

    def _segmenter_config(self) -> SegmenterConfig:
        td = self.turn_detection or TurnDetection()
        silence = td.silence_duration_ms
        if silence is None:
            silence = round(TutorPolicy().settings(self._level()).min_endpointing_delay_s * 1000)
        return SegmenterConfig(
            threshold=td.threshold,
            silence_ms=silence,
            speculation_ms=min(self.config.speculation_ms, silence),
            max_turn_ms=int(self.config.max_audio_seconds * 1000),
        )

    def _level(self) -> str:
        tracker = self.memory.level
        if tracker is not None:
            return tracker.level
        return self.options.level or self.config.level

    def _ms(self, sample: int) -> int:
        return sample * 1000 // STT_SAMPLE_RATE

    async def _on_vad(self, event: VadEvent) -> None:
        td = self.turn_detection
        assert td is not None
        if event.kind == "start":
            self._segmenter.config = self._segmenter_config()  # the level may have moved
            prefix = td.prefix_padding_ms * STT_SAMPLE_RATE // 1000
            self._turn_start = max(self._buffer.start, event.sample - prefix)
            self._buffer.keep_from(self._turn_start)
            self._item_id = ev.new_id("item")
            self._partial_at = event.sample
            self._emit(
                ev.server_event(
                    "input_audio_buffer.speech_started",
                    audio_start_ms=self._ms(event.sample),
                    item_id=self._item_id,
                )
            )
            if td.interrupt_response and not self.transcription:
                await self._barge_in()
        elif event.kind == "pause" and self._turn_start is not None:
            if self.transcription or not td.create_response:
                self._start_draft()
            elif self.reply is None or not self.reply.confirmed:
                self._speculate(event.sample)
        elif event.kind == "resume":
            await self._discard_speculation()
            self._drop_draft()
        elif event.kind == "end" and self._turn_start is not None:
            await self._end_turn(event.sample)

    def _speculate(self, speech_end: int) -> None:
        """Start the reply to the turn so far; its events are held until the turn ends."""
        assert self._turn_start is not None
        audio = self._buffer.since(self._turn_start)
        reply = self._new_reply(self._item_id, confirmed=False)
        reply.speech_end_at = self._wall(speech_end)
        self.door.observe_speculation("started")
        reply.task = asyncio.create_task(self._run_reply(reply, audio, None))

    async def _discard_speculation(self) -> None:
        reply = self.reply
        if reply is None or reply.confirmed:
            return
        reply.discarded = True
        self.reply = None
        self.door.observe_speculation("discarded")
        if reply.task is not None:
            reply.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait([reply.task])

    def _start_draft(self) -> None:
        """A turn that will not be answered now: its transcript starts at the pause, so that
        it is ready (or nearly) when the turn is committed."""
        assert self._turn_start is not None and self._item_id is not None
        self._drop_draft()
        item_id = self._item_id
        draft = asyncio.create_task(self._transcribe(self._buffer.since(self._turn_start)))
        self._draft = draft

        def ready(task: asyncio.Task[Transcript]) -> None:
            if task.cancelled() or task.exception() is not None:
                return
            if self.transcription and self._draft is task and self._item_id == item_id:
                self._emit(
                    ev.server_event(
                        "parle.input_audio_transcription.draft",
                        item_id=item_id,
                        content_index=0,
                        transcript=task.result().text,
                    )
                )

        draft.add_done_callback(ready)

    def _take_draft(self) -> asyncio.Task[Transcript] | None:
        """The draft of the turn being committed (it becomes that turn's transcript)."""
        draft, self._draft = self._draft, None
        return draft

    def _drop_draft(self) -> None:
        """The learner went on (or the input was dropped): the draft is of nothing."""
        draft, self._draft = self._draft, None
        if draft is not None and not draft.done():
            draft.cancel()  # the decode itself runs to its end in its thread, unread

    async def _end_turn(self, speech_end: int) -> None:
        """The endpointing silence is over: the turn is the learner's, answered."""
        td = self.turn_detection
        assert td is not None and self._turn_start is not None and self._item_id is not None
        item_id = self._item_id
        audio = self._buffer.since(self._turn_start, speech_end + STT_SAMPLE_RATE // 4)
        self._emit(
            ev.server_event(
                "input_audio_buffer.speech_stopped",
                audio_end_ms=self._ms(speech_end),
                item_id=item_id,
            )
        )
        self._commit_events(item_id)
        speculative = self.reply if self.reply is not None and not self.reply.confirmed else None
        draft = self._take_draft()
        self._turn_start = None
        self._item_id = None
        self._partial_words, self._emitted_words = [], []
        if self._partial is not None:
            self._partial.cancel()
        if speculative is not None and speculative.user_item_id == item_id:
            self.door.observe_speculation("kept")
            self._confirm(speculative)
        elif (
            td.create_response
            and not self.transcription
            and (self.reply is None or not self.reply.confirmed)
        ):
            reply = self._new_reply(item_id, confirmed=True)
            reply.speech_end_at = self._wall(speech_end)
            reply.task = asyncio.create_task(self._run_reply(reply, audio, None))
        else:
            self._transcribe_only(item_id, audio, draft)

    def _commit_events(self, item_id: str) -> None:
        self._emit(
            ev.server_event(
                "input_audio_buffer.committed", previous_item_id=self._last_item_id, item_id=item_id
            )
        )
        item = _user_item(item_id, [{"type": "input_audio", "transcript": None}])
        self._emit(
            ev.server_event(
                "conversation.item.added", previous_item_id=self._last_item_id, item=item
            )
        )
        self._last_item_id = item_id

    def _wall(self, sample: int) -> float:
        """When the audio at `sample` arrived, taking the client to stream at real time."""
        return time.perf_counter() - max(0, self._buffer.end - sample) / STT_SAMPLE_RATE

    async def _barge_in(self) -> None:
        """The learner speaks over the tutor: the reply stops, remembered as far as heard."""
        reply = self.reply
        if reply is not None and reply.confirmed and reply.respond:
            await self._cancel_reply(reply)
        elif (last := self._last_reply) is not None and last.first_audio_at is not None:
            played = time.perf_counter() - last.first_audio_at
            if played < last.audio_s:  # its audio was still playing
                self._remember_spoken(last, played)

    # -- partial transcripts ----------------------------------------------------------------

    def _maybe_partial(self) -> None:
        if self._turn_start is None or self._item_id is None:
            return
        if self._partial is not None and not self._partial.done():
            return
        interval = self.config.partial_interval_ms * STT_SAMPLE_RATE // 1000
        if self._buffer.end - self._partial_at < interval:
            return
        self._partial_at = self._buffer.end
        audio = self._buffer.since(self._turn_start)
        self._partial = asyncio.create_task(self._run_partial(self._item_id, audio))

    async def _run_partial(self, item_id: str, audio: FloatAudio) -> None:
        try:
            transcript = await self._transcribe(audio)
        except ParleError:
            return  # a partial is a courtesy; the final transcript reports failures
        if item_id != self._item_id:
            return
        words = transcript.text.split()
        # Only words two partials agree on are sent: deltas are never taken back.
        stable: list[str] = []
        for new, old in zip(words, self._partial_words, strict=False):
            if new != old:
                break
            stable.append(new)
        self._partial_words = words
        sent = self._emitted_words
        if len(stable) > len(sent) and stable[: len(sent)] == sent:
            delta = (" " if sent else "") + " ".join(stable[len(sent) :])
            self._emitted_words = stable
            self._emit(
                ev.server_event(
                    "conversation.item.input_audio_transcription.delta",
                    item_id=item_id,
                    content_index=0,
                    delta=delta,
                )
            )

    async def _transcribe(self, audio: FloatAudio) -> Transcript:
        """Speech recognition with the encoder window fitted to the clip (a turn is decoded
        several times while it is spoken: each must be cheap)."""
        return await self.pipeline.transcribe(audio, language=self.options.language, fitted=True)

    def _transcribe_only(
        self, item_id: str, audio: FloatAudio, draft: asyncio.Task[Transcript] | None = None
    ) -> None:
        """A committed turn that is not answered now: its transcript (`draft`'s, when one was
        started at the pause) joins the pending text."""
        previous = self._transcribing

        async def run() -> None:
            if previous is not None:
                with contextlib.suppress(Exception):
                    await previous
            try:
                async with self.door.admit(lambda: self.closed, transcription=True):
                    transcript = await (draft or self._transcribe(audio))
            except ParleError as exc:
                self._emit(_failure_event(item_id, exc))
                return
            self._emit(_transcription_completed(item_id, transcript.text))
            if transcript.text and not self.transcription:
                self._add_pending(transcript.text)

        self._transcribing = asyncio.create_task(run())

    # -- replies ----------------------------------------------------------------------------

    def _new_reply(self, user_item_id: str | None, *, confirmed: bool) -> _Reply:
        reply = _Reply(
            id=ev.new_id("resp"),
            item_id=ev.new_id("item"),
            user_item_id=user_item_id,
            memory=fork_memory(self.memory),
            confirmed=confirmed,
        )
        self.reply = reply
        return reply

    def _confirm(self, reply: _Reply) -> None:
        reply.confirmed = True
        for event in reply.held:
            self._release(reply, event)
        reply.held.clear()
        if reply.finished:
            self._settle(reply)

    def _out(self, reply: _Reply, event: Event) -> None:
        if reply.confirmed:
            self._release(reply, event)
        else:
            reply.held.append(event)

    def _release(self, reply: _Reply, event: Event) -> None:
        if event["type"] == "response.output_audio.delta" and reply.first_audio_at is None:
            reply.first_audio_at = time.perf_counter()
        self._emit(event)

    async def _cancel_reply(self, reply: _Reply) -> None:
        reply.status = "cancelled"
        if reply.task is not None and not reply.task.done():
            reply.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait([reply.task])
        heard = time.perf_counter() - reply.first_audio_at if reply.first_audio_at else 0.0
        self._remember_spoken(reply, heard)

    def _remember_spoken(self, reply: _Reply, played_s: float) -> None:
        """Keep in memory only the pieces of `reply` that had begun playing at `played_s`."""
        spoken = " ".join(text for offset, text in reply.pieces if offset < played_s)
        if replace_last_reply(self.memory, reply.user_text, spoken):
            log.debug("reply truncated to what was heard", extra={"played_s": played_s})

    async def _run_reply(
        self, reply: _Reply, audio: FloatAudio | None, after: asyncio.Task[None] | None
    ) -> None:
        started = time.perf_counter()
        stt_ms = 0.0
        try:
            async with self.door.admit(lambda: reply.discarded):
                if audio is not None:
                    transcript = await self._transcribe(audio)
                    stt_ms = round((time.perf_counter() - started) * 1000, 1)
                    reply.user_text = transcript.text
                    assert reply.user_item_id is not None
                    self._out(reply, _transcription_completed(reply.user_item_id, transcript.text))
                else:
                    if after is not None:
                        with contextlib.suppress(Exception):
                            await after
                    reply.user_text = " ".join(self._pending_text).strip()
                    self._pending_text.clear()
                if not reply.user_text:
                    reply.respond = False  # nothing was said: nothing to answer
                    return
                await self._respond(reply, started, stt_ms)
        except asyncio.CancelledError:
            raise
        except ParleError as exc:
            reply.status = "failed"
            if not reply.created and audio is not None and reply.user_item_id:
                self._out(reply, _failure_event(reply.user_item_id, exc))
            self._out(reply, ev.error_event(_code(exc), str(exc)))
        except Exception:
            log.exception("realtime reply failed")
            reply.status = "failed"
            self._out(reply, ev.error_event("internal", "Internal error; the reply was stopped."))
        finally:
            self._finish(reply)

    async def _respond(self, reply: _Reply, started: float, stt_ms: float) -> None:
        reply.created = True
        reply.encoder = OutputEncoder(self.output_format, self.pipeline.synthesizer.sample_rate)
        self._out(reply, ev.server_event("response.created", response=self._response(reply)))
        options = replace(self.options, level=self.options.level)
        events = self.pipeline.run_text(
            reply.user_text, session=reply.memory, options=options, started_at=started
        )
        async with contextlib.aclosing(events) as stream:
            async for event in stream:
                self._on_turn_event(reply, event, stt_ms)

    def _on_turn_event(self, reply: _Reply, event: object, stt_ms: float) -> None:
        common = {"response_id": reply.id, "item_id": reply.item_id, "output_index": 0}
        if isinstance(event, AudioEvent):
            assert reply.encoder is not None
            data = reply.encoder(event.chunk.pcm)
            if event.text is not reply.last_piece:
                reply.last_piece = event.text
                reply.pieces.append((reply.audio_s, event.text))
            reply.audio_s += reply.encoder.duration_s(data)
            delta = base64.b64encode(data).decode("ascii")
            self._out(
                reply,
                ev.server_event(
                    "response.output_audio.delta", **common, content_index=0, delta=delta
                ),
            )
        elif isinstance(event, ResponseDeltaEvent):
            self._out(
                reply,
                ev.server_event(
                    "response.output_audio_transcript.delta",
                    **common,
                    content_index=0,
                    delta=event.delta,
                ),
            )
        elif isinstance(event, ResponseEvent):
            reply.text = event.text
        elif isinstance(event, LevelEvent):
            self._out(
                reply,
                ev.server_event(
                    "parle.level", level=event.level, estimate=event.estimate, scores=event.scores
                ),
            )
        elif isinstance(event, CorrectionEvent):
            c = event.correction
            self._out(
                reply,
                ev.server_event(
                    "parle.correction",
                    response_id=reply.id,
                    original=c.original,
                    corrected=c.corrected,
                    explanation=c.explanation,
                    kind=c.kind,
                ),
            )
        elif isinstance(event, CompleteEvent):
            reply.status = "completed"
            reply.timings = event.timings
            reply.timings.stt_ms = stt_ms

    def _finish(self, reply: _Reply) -> None:
        """A reply's work is over: its last audio events; settled now, or when it is kept."""
        reply.finished = True
        if reply.discarded:
            return
        if reply.status == "in_progress":
            reply.status = "cancelled"
        if reply.created and reply.status == "completed":
            common = {"response_id": reply.id, "item_id": reply.item_id, "output_index": 0}
            transcript = ev.server_event(
                "response.output_audio_transcript.done", **common, content_index=0,
                transcript=reply.text,
            )  # fmt: skip
            self._out(reply, transcript)
            done = ev.server_event("response.output_audio.done", **common, content_index=0)
            self._out(reply, done)
        if reply.confirmed:
            self._settle(reply)

    def _settle(self, reply: _Reply) -> None:
        """A kept reply is over: `response.done`, counted, and its memory adopted."""
        if self.reply is reply:
            self.reply = None
        if reply.respond and reply.user_text:
            adopt_memory(self.memory, reply.memory)
            self._last_reply = reply
        if reply.created:
            self._emit(ev.server_event("response.done", response=self._response(reply)))
            if reply.status == "completed":
                self.door.observe_turn(self._door_timings(reply))

    def _door_timings(self, reply: _Reply) -> TurnTimings:
        timings = replace(reply.timings) if reply.timings else TurnTimings()
        if reply.speech_end_at is not None and reply.first_audio_at is not None:
            timings.ttfa_ms = round((reply.first_audio_at - reply.speech_end_at) * 1000, 1)
        return timings

    def _response(self, reply: _Reply) -> dict[str, Any]:
        done = reply.status != "in_progress"
        spoken = reply.text
        if reply.status == "cancelled":
            played = time.perf_counter() - reply.first_audio_at if reply.first_audio_at else 0.0
            spoken = " ".join(text for offset, text in reply.pieces if offset < played)
        output = []
        if done and reply.created:
            output.append(
                {
                    "id": reply.item_id,
                    "object": "realtime.item",
                    "type": "message",
                    "role": "assistant",
                    "status": "completed" if reply.status == "completed" else "incomplete",
                    "content": [{"type": "output_audio", "transcript": spoken}],
                }
            )
        body: dict[str, Any] = {
            "object": "realtime.response",
            "id": reply.id,
            "status": reply.status,
            "status_details": None,
            "output": output,
            "output_modalities": ["audio"],
            "audio": {"output": {"format": self.output_format.as_dict(), "voice": self._voice()}},
        }
        if reply.status == "cancelled":
            body["status_details"] = {"type": "cancelled", "reason": "turn_detected"}
        if done:
            timings = self._door_timings(reply).as_dict()
            body["parle"] = {
                "timings": {**timings, "speech_end_to_audio_ms": timings.get("ttfa_ms")},
                "speculative": reply.speech_end_at is not None,
            }
        return body

    def _voice(self) -> str | None:
        voices = self.pipeline.synthesizer.voices
        return self.options.voice or (voices[0] if voices else None)

    def _session_object(self) -> dict[str, Any]:
        td = self.turn_detection
        detection: dict[str, Any] | None = None
        if td is not None:
            config = self._segmenter_config()
            detection = {
                "type": "server_vad",
                "threshold": td.threshold,
                "prefix_padding_ms": td.prefix_padding_ms,
                "silence_duration_ms": config.silence_ms,
                "create_response": td.create_response,
                "interrupt_response": td.interrupt_response,
                "idle_timeout_ms": None,
            }
        return {
            "type": "transcription" if self.transcription else "realtime",
            "object": "realtime.session",
            "id": self.session_id,
            "model": "parle",
            "output_modalities": ["audio"],
            "instructions": "",
            "audio": {
                "input": {
                    "format": self.input_format.as_dict(),
                    "turn_detection": detection,
                    "transcription": {"model": "whisper", "language": self.options.language},
                    "noise_reduction": None,
                },
                "output": {
                    "format": self.output_format.as_dict(),
                    "voice": self._voice(),
                    "speed": self.options.speed or 1.0,
                },
            },
            "parle": {
                "level": self._level(),
                "learner_id": self.options.learner_id,
                "scenario": self.options.scenario,
                "voices": self.pipeline.synthesizer.voices,
            },
        }


class _Refused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _format(fmt: ev.FormatIn) -> AudioFormat:
    if fmt.type == "audio/pcm":
        rate = fmt.rate or 24_000
        if rate not in (24_000, 16_000):
            raise _Refused("unsupported_format", "audio/pcm is taken at 24000 or 16000 Hz.")
        return AudioFormat("audio/pcm", rate)
    if fmt.rate not in (None, 8000):
        raise _Refused("unsupported_format", f"{fmt.type} is 8000 Hz.")
    return AudioFormat(fmt.type, 8000)


def _detection(td: ev.TurnDetectionIn, current: TurnDetection | None) -> TurnDetection:
    base = current or TurnDetection()
    return TurnDetection(
        threshold=td.threshold if td.threshold is not None else base.threshold,
        prefix_padding_ms=(
            td.prefix_padding_ms if td.prefix_padding_ms is not None else base.prefix_padding_ms
        ),
        silence_duration_ms=(
            td.silence_duration_ms
            if "silence_duration_ms" in td.model_fields_set
            else base.silence_duration_ms
        ),
        create_response=(
            td.create_response if td.create_response is not None else base.create_response
        ),
        interrupt_response=(
            td.interrupt_response if td.interrupt_response is not None else base.interrupt_response
        ),
    )


def _user_item(item_id: str, content: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": item_id,
        "object": "realtime.item",
        "type": "message",
        "role": "user",
        "status": "completed",
        "content": content,
    }


def _transcription_completed(item_id: str, text: str) -> Event:
    return ev.server_event(
        "conversation.item.input_audio_transcription.completed",
        item_id=item_id,
        content_index=0,
        transcript=text,
    )


def _failure_event(item_id: str, exc: ParleError) -> Event:
    return ev.server_event(
        "conversation.item.input_audio_transcription.failed",
        item_id=item_id,
        content_index=0,
        error={"type": "server_error", "code": _code(exc), "message": str(exc)},
    )


def _code(exc: ParleError) -> str:
    reason = getattr(exc, "reason", None)
    return reason if isinstance(reason, str) else exc.code
