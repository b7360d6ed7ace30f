"""The server's turns that are not an ordinary LLM reply: spoken commands
(`parle.tutor.commands`), a scenario's opening line and the lesson's closing recap.

`TurnPipeline` asks `intercept` about every non-empty utterance before it calls the LLM; the
doors call `run` for a lesson opened or ended without an utterance (a WebSocket `config` that
names a scenario, a WebSocket `end`, an SSE request with `end`). Each such turn sends a
`command` event first, then the reply's text and audio like any turn, and `complete`:

    open       the scenario's opener (spoken; no LLM)
    end        the closer and a recap of the lesson's corrections (no LLM)
    slower / faster, level
               a one-line acknowledgement, spoken at the new speed / level (no LLM)
    repeat     the last reply's cached audio again (no LLM, no TTS; spoken again from its
               text only when the voice or speed changed since, or it was cut off)
    translate  a one-sentence English hint of the last reply (one short LLM call), at A1-A2;
               politely declined in Portuguese above

Commands never enter the conversation history (the LLM does not see "repete"); an opener or
closing that answers an utterance does, as the tutor's reply to it.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncGenerator, Iterator
from typing import TYPE_CHECKING, Literal, Protocol

from parle.engines.base import Transcript
from parle.events import (
    AudioEvent,
    CommandEvent,
    CompleteEvent,
    CorrectionEvent,
    ResponseDeltaEvent,
    ResponseEvent,
    StageEvent,
    TranscriptEvent,
    TurnEvent,
    TurnOptions,
    TurnState,
    TurnTimings,
    elapsed_ms,
)
from parle.sessions import SessionMemory
from parle.tutor import commands
from parle.tutor.commands import Command
from parle.tutor.lesson import SpokenReply
from parle.tutor.levels import LevelTracker, policy_for

if TYPE_CHECKING:
    from parle.audio import AudioChunk, FloatAudio
    from parle.engines.base import ChatMessage
    from parle.sessions import SessionStore

log = logging.getLogger(__name__)


class TurnPipeline(Protocol):
    """What a lesson turn uses of `parle.turn.TurnPipeline` (which calls this module, so it
    is named by its shape here, not imported)."""

    sessions: SessionStore

    async def transcribe(self, samples: FloatAudio, *, language: str | None = None) -> Transcript:
        """Speech recognition under the pipeline's compute slot and time limit."""
        ...

    async def write(
        self, messages: list[ChatMessage], *, max_tokens: int, timings: TurnTimings
    ) -> str:
        """A whole short LLM reply as text, timed into `timings`."""
        ...

    def level_tracker(self, memory: SessionMemory, start: str | None) -> LevelTracker:
        """The session's level tracker, (re)started at a client-given level."""
        ...

    def speak_text(
        self, text: str, *, voice: str | None = None, speed: float | None = None
    ) -> AsyncGenerator[AudioChunk, None]:
        """A whole text's speech, piece by piece."""
        ...


LessonAction = Literal["open", "end"]


def intercept(
    pipeline: TurnPipeline,
    text: str,
    memory: SessionMemory,
    options: TurnOptions,
    state: TurnState,
) -> AsyncGenerator[TurnEvent, None] | None:
    """The answer to the learner's `text` when it is not for the LLM: a spoken command, or
    the first utterance of a scenario the client has just named (answered with its opener).
    None: an ordinary turn."""
    command = commands.match_command(text)
    if command is not None:
        log.info("spoken command", extra={"command": command.kind})
        return _command(pipeline, command, text, memory, options, state)
    if memory.lesson.wants(options.scenario):
        return _open(pipeline, text, memory, options, state)
    return None


def observe(memory: SessionMemory, event: TurnEvent) -> None:
    """What an ordinary reply leaves to the lesson: its corrections (for the recap) and its
    audio (for "repete")."""
    if isinstance(event, CorrectionEvent):
        memory.lesson.record(event.correction)
    elif isinstance(event, AudioEvent):
        memory.lesson.heard(event.chunk)


async def run(
    pipeline: TurnPipeline,
    action: LessonAction,
    *,
    session: str | SessionMemory,
    options: TurnOptions,
    started_at: float | None = None,
    samples: FloatAudio | None = None,
) -> AsyncGenerator[TurnEvent, None]:
    """A lesson opened (`open`: the scenario in `options.scenario`) or ended (`end`) by the
    client rather than by an utterance. With `samples` (an SSE `end` with audio), the
    learner's last words are transcribed first and answered by the closing."""
    state = TurnState(started_at if started_at is not None else time.perf_counter())
    if isinstance(session, str):
        memory = pipeline.sessions.get(session, tenant=options.tenant)
    else:
        memory = session
    text = ""
    if samples is not None:
        yield StageEvent("stt")
        transcript: Transcript = await pipeline.transcribe(samples, language=options.language)
        state.timings.stt_ms = elapsed_ms(state.started)
        text = transcript.text
        yield TranscriptEvent(text, state.timings.stt_ms)
    if action == "open":
        events = _open(pipeline, text, memory, options, state)
    else:
        events = _command(pipeline, Command("end"), text, memory, options, state)
    async with contextlib.aclosing(events):
        async for event in events:
            yield event


# --- the answers ------------------------------------------------------------------------------


async def _open(
    pipeline: TurnPipeline,
    text: str,
    memory: SessionMemory,
    options: TurnOptions,
    state: TurnState,
) -> AsyncGenerator[TurnEvent, None]:
    if options.scenario is None:
        raise ValueError("opening a lesson needs a scenario")
    scenario = memory.lesson.start(options.scenario, memory.notes)
    yield CommandEvent("open", scenario=scenario.id)
    speech = _say(pipeline, scenario.opener, memory, options, state, remember=True)
    async with contextlib.aclosing(speech) as events:
        async for event in events:
            yield event
    if text.strip():
        memory.add_turn(text, scenario.opener)
    yield _complete(text, scenario.opener, state)


async def _command(
    pipeline: TurnPipeline,
    command: Command,
    text: str,
    memory: SessionMemory,
    options: TurnOptions,
    state: TurnState,
) -> AsyncGenerator[TurnEvent, None]:
    lesson = memory.lesson
    tracker: LevelTracker = pipeline.level_tracker(memory, options.level)
    base = options.speed or policy_for(tracker.level).tts_speed
    remember = False
    if command.kind in ("slower", "faster"):
        direction = -1 if command.kind == "slower" else 1
        moved = lesson.step(base, direction)
        yield CommandEvent(command.kind, speed=lesson.speed(base))
        if command.kind == "slower":
            answer = commands.SLOWER if moved else commands.SLOWEST
        else:
            answer = commands.FASTER if moved else commands.FASTEST
    elif command.kind == "level":
        if command.level is not None:
            # The learner's choice; the tracker's starting point stays the client's, so the
            # client's `level` sent again with the next turn does not undo it.
            start = tracker.start
            tracker.reset(command.level)
            tracker.start = start
            base = options.speed or policy_for(tracker.level).tts_speed
        yield CommandEvent("level", level=tracker.level)
        answer = commands.level_changed(command.level) if command.level else commands.LEVEL_UNKNOWN
    elif command.kind == "repeat":
        yield CommandEvent("repeat")
        last = lesson.last_reply
        # As it was sent when it would sound the same (same voice and speed, not cut off);
        # else spoken again from its text.
        if last is not None and last.replayable(options.voice, lesson.speed(base)):
            for event in _replayed(last, state):
                yield event
            yield _complete(text, last.text, state)
            return
        answer, remember = (last.text, True) if last else (commands.NOTHING_YET, False)
    elif command.kind == "translate":
        yield CommandEvent("translate", level=tracker.level)
        last = lesson.last_reply
        if not commands.translation_allowed(tracker.level):
            answer = commands.TRANSLATION_DECLINED
        elif last is None:
            answer = commands.NOTHING_TO_TRANSLATE
        else:
            yield StageEvent("llm")
            answer = commands.translation_hint(await _translate(pipeline, last.text, state))
    else:  # end
        yield CommandEvent("end", scenario=lesson.scenario.id if lesson.scenario else None)
        answer, remember = lesson.end(memory.notes), True
        if text.strip():
            memory.add_turn(text, answer)
    speech = _say(
        pipeline, answer, memory, options, state, remember=remember, speed=lesson.speed(base)
    )
    async with contextlib.aclosing(speech) as events:
        async for event in events:
            yield event
    yield _complete(text, answer, state)


def _replayed(reply: SpokenReply, state: TurnState) -> Iterator[TurnEvent]:
    """The last reply's audio as it was sent: no LLM, no TTS."""
    yield ResponseDeltaEvent(reply.text)
    yield ResponseEvent(reply.text, 0.0)
    yield StageEvent("tts")
    for index, chunk in enumerate(list(reply.chunks)):
        if state.timings.ttfa_ms is None:
            state.timings.ttfa_ms = elapsed_ms(state.started)
        yield AudioEvent(chunk, index, reply.text)
    state.response = reply.text


async def _translate(pipeline: TurnPipeline, reply: str, state: TurnState) -> str:
    """One short LLM call: the reply in English."""
    return await pipeline.write(
        commands.translation_messages(reply),
        max_tokens=commands.TRANSLATION_MAX_TOKENS,
        timings=state.timings,
    )


async def _say(
    pipeline: TurnPipeline,
    text: str,
    memory: SessionMemory,
    options: TurnOptions,
    state: TurnState,
    *,
    remember: bool,
    speed: float | None = None,
) -> AsyncGenerator[TurnEvent, None]:
    """`text` as the turn's reply: its text, then its speech piece by piece. `remember`: it
    becomes the reply "repete" plays again (an opener, a closing; not an acknowledgement)."""
    timings = state.timings
    lesson = memory.lesson
    if speed is None:
        tracker = pipeline.level_tracker(memory, options.level)
        speed = lesson.speed(options.speed or policy_for(tracker.level).tts_speed)
    yield ResponseDeltaEvent(text)
    yield ResponseEvent(text, timings.llm_ms)
    yield StageEvent("tts")
    cache = lesson.speaking(options.voice, speed) if remember else None
    started = time.perf_counter()
    index = 0
    complete = False
    try:
        chunks = pipeline.speak_text(text, voice=options.voice, speed=speed)
        async with contextlib.aclosing(chunks):
            async for chunk in chunks:
                if timings.tts_first_chunk_ms is None:
                    timings.tts_first_chunk_ms = elapsed_ms(started)
                if timings.ttfa_ms is None:
                    timings.ttfa_ms = elapsed_ms(state.started)
                if cache is not None:
                    cache.add(chunk)
                yield AudioEvent(chunk, index, text)
                index += 1
        complete = True
    finally:
        timings.tts_ms = round(timings.tts_ms + elapsed_ms(started), 1)
        if cache is not None:
            lesson.spoken(text, complete=complete)
    state.response = text


def _complete(transcript: str, response: str, state: TurnState) -> CompleteEvent:
    state.timings.total_ms = elapsed_ms(state.started)
    return CompleteEvent(transcript, response, state.timings)
