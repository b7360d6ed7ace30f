"""One conversational turn, streamed end to end:

    audio -> decode (16 kHz mono) -> STT -> LLM stream -> SentenceCutter -> TTS stream -> audio

TTS starts on the first piece while the LLM is still writing, and audio leaves as soon as it
exists. Closing the event iterator (barge-in, a client gone) cancels the LLM request and the
TTS work at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import replace

from parle import lessons
from parle.audio import AudioChunk, FloatAudio, decode_audio
from parle.cutter import SentenceCutter, clean_for_speech
from parle.engines.base import (
    ChatMessage,
    ChatModel,
    GrammarChecker,
    Synthesizer,
    Transcriber,
    Transcript,
)
from parle.errors import EngineFailedError, EngineTimeoutError, LlmContextError, ParleError
from parle.events import (
    AudioEvent,
    CommandEvent,
    CompleteEvent,
    CorrectionEvent,
    LevelEvent,
    ResponseDeltaEvent,
    ResponseEvent,
    Stage,
    StageEvent,
    TranscriptEvent,
    TurnEvent,
    TurnOptions,
    TurnState,
    TurnTimings,
    elapsed_ms,
)
from parle.recording import LearnerRecorder, TurnRecord
from parle.scheduler import LATER, URGENT, ComputeGate
from parle.sessions import SessionMemory, SessionStore
from parle.tenants import store_key
from parle.tutor import learner_errors
from parle.tutor.corrections import Correction, SideChannelSplitter, parse_correction
from parle.tutor.grammar import CheckerHealth, checker_findings, choose, combine, correction_hint
from parle.tutor.levels import LevelEstimator, LevelTracker
from parle.tutor.policy import TutorPolicy
from parle.tutor.prompts import Region

__all__ = [
    "AudioEvent",
    "CommandEvent",
    "CompleteEvent",
    "CorrectionEvent",
    "LevelEvent",
    "ResponseDeltaEvent",
    "ResponseEvent",
    "Stage",
    "StageEvent",
    "TranscriptEvent",
    "TurnEvent",
    "TurnOptions",
    "TurnPipeline",
    "TurnState",
    "TurnTimings",
]

log = logging.getLogger(__name__)

# A typed turn's text, in characters, at every door (the WebSocket's `text`, a realtime
# session's items awaiting their response): a typed turn is a learner's utterance, not a
# document, and the level estimate and the LLM's prompt grow with it.
MAX_TYPED_CHARS = 2000


class _Finished:
    """Marks the end of one producer task in the event queue."""


_FINISHED = _Finished()


class TurnPipeline:
    """Runs turns on shared, loaded engines; memory is per session id."""

    def __init__(
        self,
        transcriber: Transcriber,
        chat: ChatModel,
        synthesizer: Synthesizer,
        *,
        sessions: SessionStore | None = None,
        level: str = "A2",
        max_audio_seconds: float = 60.0,
        min_audio_seconds: float = 0.2,
        max_audio_bytes: int | None = None,
        first_piece_min_chars: int = 18,
        first_piece_max_words: int = 3,
        stt_timeout_s: float = 30.0,
        compute: ComputeGate | None = None,
        estimator: LevelEstimator | None = None,
        region: Region = "BR",
        recorder: LearnerRecorder | None = None,
        grammar: GrammarChecker | None = None,
        rules: bool = True,
    ) -> None:
        self.transcriber = transcriber
        self.chat = chat
        self.synthesizer = synthesizer
        self.sessions = sessions if sessions is not None else SessionStore()
        self.level = level
        self.max_audio_seconds = max_audio_seconds
        self.min_audio_seconds = min_audio_seconds
        self.max_audio_bytes = max_audio_bytes
        self.first_piece_min_chars = first_piece_min_chars
        self.first_piece_max_words = first_piece_max_words
        self.stt_timeout_s = stt_timeout_s
        self.compute = compute
        self.estimator = estimator
        self.region: Region = region
        self.recorder = recorder  # a known learner's long-term record (parle.recording)
        # Errors in the learner's words (parle.tutor.grammar): the checker (LanguageTool) runs
        # while the LLM writes; PARLE's own rules (`rules`) take microseconds, before it.
        self.grammar = grammar
        self.grammar_health = CheckerHealth()
        self.rules = rules

    def level_tracker(self, memory: SessionMemory, start: str | None) -> LevelTracker:
        """The session's level tracker; a client-given level (re)starts it there."""
        tracker = memory.level
        if tracker is None:
            tracker = memory.level = LevelTracker(start or self.level)
        elif start is not None and start.upper() != tracker.start:
            tracker.reset(start)
        return tracker

    def _compute(self, priority: int) -> contextlib.AbstractAsyncContextManager[None]:
        return self.compute.slot(priority) if self.compute else contextlib.nullcontext()

    async def decode(self, data: bytes) -> FloatAudio:
        """Client audio bytes to 16 kHz mono; raises `AudioInputError` on unusable input."""
        return await asyncio.to_thread(
            decode_audio,
            data,
            max_seconds=self.max_audio_seconds,
            min_seconds=self.min_audio_seconds,
            max_bytes=self.max_audio_bytes,
        )

    async def transcribe(
        self, samples: FloatAudio, *, language: str | None = None, fitted: bool = False
    ) -> Transcript:
        """Speech recognition as every door gets it: an urgent compute slot, the STT time
        limit, and any engine failure as a typed `EngineError`. `fitted`: the engine's
        window fitted to the clip (`Transcriber.transcribe_fitted`), for repeated decodes."""
        recognize = self.transcriber.transcribe_fitted if fitted else self.transcriber.transcribe
        try:
            async with self._compute(URGENT):
                return await asyncio.wait_for(
                    recognize(samples, language=language), self.stt_timeout_s
                )
        except TimeoutError:
            raise EngineTimeoutError(
                "Speech recognition took too long; please try again."
            ) from None
        except ParleError:
            raise
        except Exception as exc:
            raise _engine_failure("stt", exc) from exc

    async def synthesize(
        self, text: str, *, voice: str | None, speed: float | None, priority: int = LATER
    ) -> AsyncGenerator[AudioChunk, None]:
        """One piece's speech as every door gets it: a compute slot at `priority` and any
        engine failure as a typed `EngineError`."""
        try:
            async with (
                self._compute(priority),
                contextlib.aclosing(
                    self.synthesizer.synthesize(text, voice=voice, speed=speed)
                ) as chunks,
            ):
                async for chunk in chunks:
                    yield chunk
        except ParleError:
            raise
        except Exception as exc:
            raise _engine_failure("tts", exc) from exc

    async def write(
        self, messages: list[ChatMessage], *, max_tokens: int, timings: TurnTimings
    ) -> str:
        """A whole short LLM reply as text (a side request: a translation hint), with its
        first-token and total times in `timings`; the model's failures as typed errors."""
        started = time.perf_counter()
        parts: list[str] = []
        async with contextlib.aclosing(self.chat.stream(messages, max_tokens=max_tokens)) as deltas:
            while (delta := await _next_delta(deltas)) is not None:
                if timings.llm_first_token_ms is None:
                    timings.llm_first_token_ms = elapsed_ms(started)
                parts.append(delta)
        timings.llm_ms = elapsed_ms(started)
        return "".join(parts)

    async def speak_text(
        self, text: str, *, voice: str | None = None, speed: float | None = None
    ) -> AsyncGenerator[AudioChunk, None]:
        """A whole text's speech, piece by piece (the speech API): the first piece is urgent,
        the rest yield to other sessions' first pieces."""
        cutter = SentenceCutter()
        for index, piece in enumerate(cutter.push(text) + cutter.flush()):
            priority = URGENT if index == 0 else LATER
            pieces = self.synthesize(piece, voice=voice, speed=speed, priority=priority)
            async with contextlib.aclosing(pieces):
                async for chunk in pieces:
                    yield chunk

    async def run(
        self,
        audio: bytes | FloatAudio,
        *,
        session: str | SessionMemory = "default",
        options: TurnOptions | None = None,
        started_at: float | None = None,
    ) -> AsyncGenerator[TurnEvent, None]:
        """A whole turn from the learner's audio. Bad audio raises before any event."""
        state = TurnState(started_at if started_at is not None else time.perf_counter())
        options = options or TurnOptions()
        samples = await self.decode(audio) if isinstance(audio, bytes) else audio
        yield StageEvent("stt")
        transcript = await self.transcribe(samples, language=options.language)
        state.timings.stt_ms = elapsed_ms(state.started)
        yield TranscriptEvent(transcript.text, state.timings.stt_ms)
        async with contextlib.aclosing(self._reply(transcript, session, options, state)) as events:
            async for event in events:
                yield event

    async def run_text(
        self,
        text: str,
        *,
        session: str | SessionMemory = "default",
        options: TurnOptions | None = None,
        started_at: float | None = None,
    ) -> AsyncGenerator[TurnEvent, None]:
        """A turn from typed text: no STT stage."""
        state = TurnState(started_at if started_at is not None else time.perf_counter())
        transcript = Transcript(text.strip(), "", 0.0, 1.0)
        reply = self._reply(transcript, session, options or TurnOptions(), state)
        async with contextlib.aclosing(reply) as events:
            async for event in events:
                yield event

    async def _reply(
        self,
        transcript: Transcript,
        session: str | SessionMemory,
        options: TurnOptions,
        state: TurnState,
    ) -> AsyncGenerator[TurnEvent, None]:
        timings = state.timings
        if transcript.is_empty:
            # Silence or noise: nothing to answer, and no LLM call.
            timings.total_ms = elapsed_ms(state.started)
            yield CompleteEvent("", "", timings)
            return
        if isinstance(session, str):
            memory = self.sessions.get(session, tenant=options.tenant)
        else:
            memory = session
        if self.recorder is not None and options.learner_id:
            key = session if isinstance(session, str) else None
            learner = store_key(options.tenant, options.learner_id)
            await self.recorder.session_started(memory, learner, key)
        # Spoken commands and a scenario's opening need no LLM reply.
        special = lessons.intercept(self, transcript.text, memory, options, state)
        if special is not None:
            async with contextlib.aclosing(special) as events:
                async for event in events:
                    yield event
            return
        # The tutor policy (shared with the LiveKit agent) decides what the level steers: the
        # prompt, the reply length, the speaking rate. A client's explicit choice wins.
        policy = TutorPolicy(self.estimator, region=self.region)
        turn = await policy.turn(self.level_tracker(memory, options.level), transcript.text)
        if turn.estimate is not None:
            yield LevelEvent(turn.level, turn.estimate.level, turn.estimate.scores)
        options = replace(
            options,
            level=turn.level,
            max_tokens=options.max_tokens or turn.max_tokens,
            speed=memory.lesson.speed(options.speed or turn.tts_speed),  # and "mais devagar"
        )
        # The learner's errors: PARLE's rules now (this reply may correct one), the checker
        # meanwhile (its error is corrected by the next reply); one error chosen in the end.
        text = transcript.text
        found = learner_errors.find(text, level=turn.level) if self.rules else []
        checking = asyncio.create_task(
            checker_findings(text, self.grammar, self.grammar_health, level=turn.level)
        )
        first = choose(found)
        hint = memory.pending_hint
        memory.pending_hint = None
        if first is not None:
            hint = correction_hint(first, turn.correction)
        messages = turn.messages(
            memory.messages, text, context=list(memory.notes.values()), hint=hint
        )
        yield StageEvent("llm")
        memory.lesson.speaking(options.voice, options.speed)  # its audio, for "repete"
        produce = self._sequential if options.sequential else self._streamed
        # aclosing: a consumer that stops at a `yield` (a client gone) still cancels the
        # LLM and TTS tasks at once, not whenever the abandoned generator is collected.
        try:
            async with contextlib.aclosing(
                self._merge(produce, messages, options, state)
            ) as merged:
                async for event in merged:
                    lessons.observe(memory, event)
                    if isinstance(event, AudioEvent) and timings.ttfa_ms is None:
                        timings.ttfa_ms = elapsed_ms(state.started)
                    yield event
            # The checker has its own time limit (`PARLE_GRAMMAR_TIMEOUT_S`); by now it has
            # usually answered, while the reply was spoken.
            checked = await checking
        except BaseException:
            checking.cancel()
            memory.lesson.spoken(state.response, complete=False)
            # An interrupted reply is kept as far as it was written: the learner heard some.
            if state.response.strip():
                memory.add_turn(text, state.response.strip())
            raise
        chosen = choose(combine(text, found, checked, state.llm_correction))
        correction: Correction | None = None
        if chosen is not None:
            correction = chosen.correction
            event = CorrectionEvent(correction)
            lessons.observe(memory, event)
            yield event
            if chosen.source == "checker":
                memory.pending_hint = correction_hint(chosen, turn.correction, earlier=True)
        # Remembered before `complete` leaves: a client may stop reading right after it.
        memory.add_turn(text, state.response)
        memory.lesson.spoken(state.response, complete=True)
        timings.total_ms = elapsed_ms(state.started)
        if self.recorder is not None and options.learner_id:
            estimate = turn.estimate.level if turn.estimate is not None else None
            self.recorder.turn_finished(memory, TurnRecord(
                text, state.response, turn.level, estimate,
                transcript.duration_s, timings.as_dict(), correction))  # fmt: skip
        yield CompleteEvent(transcript.text, state.response, timings)

    async def _merge(
        self,
        produce: Callable[..., list[Awaitable[None]]],
        messages: list[ChatMessage],
        options: TurnOptions,
        state: TurnState,
    ) -> AsyncGenerator[TurnEvent, None]:
        """Run the producer coroutines as tasks and yield their events in arrival order."""
        queue: asyncio.Queue[TurnEvent | _Finished | BaseException] = asyncio.Queue()

        async def guard(work: Awaitable[None]) -> None:
            try:
                await work
            except asyncio.CancelledError:
                raise
            except BaseException as exc:
                queue.put_nowait(exc)
            finally:
                queue.put_nowait(_FINISHED)

        works = produce(messages, options, state, queue.put_nowait)
        tasks = [asyncio.create_task(guard(work)) for work in works]
        try:
            running = len(tasks)
            while running:
                item = await queue.get()
                if isinstance(item, _Finished):
                    running -= 1
                elif isinstance(item, BaseException):
                    raise item
                else:
                    yield item
        finally:
            # Cancel synchronously, then wait with asyncio.wait, never `await task`: if this
            # consumer is itself being cancelled, `await task` would cancel the task a second
            # time, in the middle of its clean-up (closing the LLM's HTTP stream).
            for task in tasks:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait(tasks)

    def _streamed(
        self,
        messages: list[ChatMessage],
        options: TurnOptions,
        state: TurnState,
        emit: Callable[[TurnEvent], None],
    ) -> list[Awaitable[None]]:
        pieces: asyncio.Queue[str | None] = asyncio.Queue()
        cutter = SentenceCutter(
            first_min_chars=self.first_piece_min_chars,
            first_max_words=self.first_piece_max_words,
        )

        async def write() -> None:
            try:
                await self._generate(messages, options, state, emit, cutter, pieces)
            finally:
                pieces.put_nowait(None)

        async def speak() -> None:
            while (piece := await pieces.get()) is not None:
                await self._speak(piece, options, state, emit)

        return [write(), speak()]

    def _sequential(
        self,
        messages: list[ChatMessage],
        options: TurnOptions,
        state: TurnState,
        emit: Callable[[TurnEvent], None],
    ) -> list[Awaitable[None]]:
        """The old PARLE: the whole reply, then the whole reply's speech (benchmark baseline)."""

        async def whole() -> None:
            await self._generate(messages, options, state, emit, None, None)
            text = clean_for_speech(state.response)
            if text:
                await self._speak(text, options, state, emit)

        return [whole()]

    async def _chat(
        self, messages: list[ChatMessage], *, max_tokens: int | None
    ) -> AsyncGenerator[str, None]:
        """The LLM's reply to `messages`, delta by delta. A prompt over the model's context
        (refused before any text) is sent again without the older half of its history, until
        none is left: a long conversation goes on forgetting its start, rather than failing
        every turn from then on."""
        while True:
            answered = False
            try:
                async with contextlib.aclosing(
                    self.chat.stream(messages, max_tokens=max_tokens)
                ) as deltas:
                    async for delta in deltas:
                        answered = True
                        yield delta
                return
            except LlmContextError:
                shorter = None if answered else _shorter_history(messages)
                if shorter is None:
                    raise
                log.info("llm context full: history shortened", extra={"messages": len(shorter)})
                messages = shorter

    async def _generate(
        self,
        messages: list[ChatMessage],
        options: TurnOptions,
        state: TurnState,
        emit: Callable[[TurnEvent], None],
        cutter: SentenceCutter | None,
        pieces: asyncio.Queue[str | None] | None,
    ) -> None:
        timings = state.timings
        started = time.perf_counter()
        side = SideChannelSplitter()

        def speak_text(text: str) -> None:
            if not text:
                return
            state.response += text
            emit(ResponseDeltaEvent(text))
            if cutter is not None and pieces is not None:
                for piece in cutter.push(text):
                    pieces.put_nowait(piece)

        # Closing the stream closes its HTTP request: the LLM server stops generating.
        async with contextlib.aclosing(
            self._chat(messages, max_tokens=options.max_tokens)
        ) as deltas:
            while (delta := await _next_delta(deltas)) is not None:
                if timings.llm_first_token_ms is None:
                    timings.llm_first_token_ms = elapsed_ms(started)
                speak_text(side.push(delta))
        speak_text(side.flush())
        if cutter is not None and pieces is not None:
            for piece in cutter.flush():
                pieces.put_nowait(piece)
        state.response = state.response.strip()
        timings.llm_ms = elapsed_ms(started)
        emit(ResponseEvent(state.response, timings.llm_ms))
        # Not sent yet: `_reply` weighs it with the checker's and the rules' findings.
        state.llm_correction = parse_correction(side.block)

    async def _speak(
        self,
        text: str,
        options: TurnOptions,
        state: TurnState,
        emit: Callable[[TurnEvent], None],
    ) -> None:
        timings = state.timings
        if not state.tts_started:
            state.tts_started = True
            emit(StageEvent("tts"))
        started = time.perf_counter()
        # The first piece decides when the learner hears anything: it goes first.
        priority = URGENT if state.audio_index == 0 else LATER
        chunks = self.synthesize(text, voice=options.voice, speed=options.speed, priority=priority)
        try:
            async with contextlib.aclosing(chunks):
                async for chunk in chunks:
                    if timings.tts_first_chunk_ms is None:
                        timings.tts_first_chunk_ms = elapsed_ms(started)
                    emit(AudioEvent(chunk, state.audio_index, text))
                    state.audio_index += 1
        finally:
            timings.tts_ms = round(timings.tts_ms + elapsed_ms(started), 1)


_STAGE_NAMES = {"stt": "Speech recognition", "llm": "The language model", "tts": "Speech synthesis"}


def _shorter_history(messages: list[ChatMessage]) -> list[ChatMessage] | None:
    """`messages` (`TurnSettings.messages`: system messages, the history's exchanges, the
    learner's words and the reminder) without the older half of the history's exchanges; None
    when there is no history left to drop."""
    users = [index for index, message in enumerate(messages) if message["role"] == "user"]
    past = len(users) - 1  # the last one is the learner's words now
    if past < 1:
        return None
    return messages[: users[0]] + messages[users[past - past // 2] :]


async def _next_delta(deltas: AsyncGenerator[str, None]) -> str | None:
    """The LLM's next text, None at its end; only the model's own failures become
    `llm_failed` (a bug in what PARLE does with the text stays an internal error)."""
    try:
        return await anext(deltas)
    except StopAsyncIteration:
        return None
    except ParleError:
        raise
    except Exception as exc:
        raise _engine_failure("llm", exc) from exc


def _engine_failure(stage: str, exc: Exception) -> EngineFailedError:
    """An engine's unexpected exception as the typed error every door answers; logged once
    with its type only (its message may carry a learner's words or a path)."""
    log.error("engine failed", extra={"stage": stage, "error_type": type(exc).__name__})
    return EngineFailedError(f"{_STAGE_NAMES[stage]} failed; please try again.", stage=stage)
