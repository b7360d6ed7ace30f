"""`TutorAgent`: PARLE's tutor in a LiveKit room. The pedagogy is the core's
(`parle.tutor`): the same prompts, the same correction side channel, the same learner-error
sources (`parle.tutor.grammar`: PARLE's rules, the grammar checker, the LLM's block) and the
same tutor policy (`parle.tutor.policy`) as the server's pipeline, so a level means the same
thing at every door.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from livekit import rtc
from livekit.agents import Agent, ModelSettings, llm
from livekit.agents.tts import TTS
from livekit.agents.voice.generation import INSTRUCTIONS_MESSAGE_ID
from pydantic import BaseModel

from agent.lessons import AgentLesson
from agent.plugins import ParleLLM, ParleTTS
from parle import wire
from parle.engines.base import GrammarChecker
from parle.errors import GrammarUnavailableError
from parle.tutor import commands, learner_errors
from parle.tutor.commands import match_command
from parle.tutor.corrections import Correction, Finding, SideChannelSplitter, parse_correction
from parle.tutor.grammar import CheckerHealth, checker_findings, choose, combine, correction_hint
from parle.tutor.levels import (
    CorrectionStrategy,
    LevelEstimator,
    LevelTracker,
    LexicalLevelEstimator,
)
from parle.tutor.policy import TurnSettings, TutorPolicy
from parle.tutor.prompts import Region
from parle.tutor.scenarios import Scenario

log = logging.getLogger(__name__)

TUTOR_TOPIC = "parle.tutor"  # the room text stream carrying level and correction events
GREETING = "Olá! Eu sou a Parle, sua professora de português. Sobre o que você quer conversar?"
# Said once per call: the keypad's commands (parle.tutor.commands.KEYPAD), then a question.
PHONE_GREETING = (
    f"Olá! Aqui é a Parle, sua professora de português. {commands.KEYPAD_HINT} Como você está hoje?"
)

# Sends one JSON event on the `parle.tutor` topic (the room's text stream, in a job).
Publisher = Callable[[dict[str, Any]], Awaitable[None]]

# The most a reply's correction waits for the grammar checker once the reply is written (the
# checker has its own, shorter limit: PARLE_GRAMMAR_TIMEOUT_S).
CHECKER_WAIT_S = 5.0
# The most a reply written before its learner turn ended (a preemptive generation) waits to
# be kept or thrown away by the framework; after that it is taken as thrown away.
KEPT_WAIT_S = 30.0


@dataclass(eq=False)
class _LearnerTurn:
    """A spoken learner utterance as its correction sees it: PARLE's rules' findings at the
    turn's level, the grammar checker's task (running while the reply is written), the
    level's correction strategy, and whether a reply to it was written (`claimed`: its
    correction is on its way)."""

    message_id: str
    text: str
    found: list[Finding]
    strategy: CorrectionStrategy
    checking: asyncio.Task[list[Finding]] | None
    claimed: bool = False

    def answered_by(self, message: llm.ChatMessage) -> bool:
        """Whether `message` (an LLM request's learner message) is this utterance: the
        framework's own message, or the preemptive one it kept (given the final words)."""
        return message.id == self.message_id or _normalized(message.text_content or "") == (
            _normalized(self.text)
        )

    def cancel(self) -> None:
        if self.checking is not None:
            self.checking.cancel()


@dataclass(eq=False)
class _Written:
    """A reply the LLM wrote (its text, normalized) and the correction that goes with it."""

    text: str
    correction: Correction | None


class TutorAgent(Agent):
    """A patient Brazilian-Portuguese tutor: greets the learner, follows their level and sends
    corrections apart from speech.

    Each learner turn's words are estimated off the event loop and smoothed by the session's
    `LevelTracker`; the tutor policy turns the level into the system prompt, the reply's
    `max_tokens` (`ParleLLM`), the speaking speed (`ParleTTS`) and the endpointing delays (the
    session's turn handling). A level change steers the reply to that very turn (prompt,
    length, speed) and the learner's next turn-taking; the starting level's settings are
    applied when the agent enters the session.

    A known learner's note (`learner_note`: what the store knows of them, `parle.store`) goes
    right after the instructions as a system message of its own, before a scenario's note, as
    the server's requests carry them: the instructions stay byte-identical across learners, so
    the LLM server's prefix cache keeps hitting.

    The learner's errors come from three sources, as in the server's pipeline
    (`parle.tutor.grammar`): PARLE's rules (`rules`) before the LLM is asked, so this reply
    may correct the error (a hint, last in its request); the grammar checker (`grammar`:
    LanguageTool) while the reply is written; the LLM's own correction block. Once the reply
    is written, one error is chosen and sent; one the checker found comes too late for this
    reply and steers the next one. Typed turns (the framework calls the turn hook for speech
    only) get PARLE's rules and the LLM's block.
    """

    def __init__(
        self,
        *,
        level: str = "A2",
        region: Region = "BR",
        estimator: LevelEstimator | None = None,
        publish: Publisher | None = None,
        greeting: str = GREETING,
        scenario: Scenario | None = None,
        learner_note: str | None = None,
        grammar: GrammarChecker | None = None,
        rules: bool = True,
    ) -> None:
        self.policy = TutorPolicy(
            estimator if estimator is not None else LexicalLevelEstimator(), region=region
        )
        self.tracker = LevelTracker(level)
        self.turn_settings: TurnSettings = self.policy.settings(self.tracker.level)
        super().__init__(instructions=self.turn_settings.system_prompt)
        self.publish = publish
        self.corrections: list[Correction] = []
        # A role-play lesson opens with its own line; spoken commands (agent/lessons.py).
        self.lesson = AgentLesson(self, scenario)
        if learner_note:
            # First among the notes, in place (the lesson keeps its dict): the learner's note
            # is fixed for the session, the scenario's goes when the lesson ends.
            others = dict(self.lesson.notes)
            self.lesson.notes.clear()
            self.lesson.notes["learner"] = learner_note
            self.lesson.notes.update(others)
        # Recent utterances' estimates and replies' corrections, for the learner's record
        # (agent/learner.py pairs them with the conversation's messages).
        self._estimates: deque[tuple[str, str]] = deque(maxlen=8)
        self._replies: deque[_Written] = deque(maxlen=8)
        self._prefilling: asyncio.Task[None] | None = None  # held: the loop keeps weak refs
        self.greeting = scenario.opener if scenario is not None else greeting
        # The learner's errors (parle.tutor.grammar): the checker (LanguageTool) while the LLM
        # writes, PARLE's own rules (`rules`, microseconds) before it.
        self.grammar = grammar
        self.grammar_health = CheckerHealth()
        self.rules = rules
        self._turn: _LearnerTurn | None = None  # the last spoken learner utterance
        # A correction for the next reply to make: the checker found it after this reply was
        # written (parle.tutor.grammar.correction_hint, `earlier`).
        self._pending_hint: str | None = None
        self._claimed: deque[str] = deque(maxlen=8)  # learner messages whose reply is corrected
        self._correcting: set[asyncio.Task[None]] = set()  # held: the loop keeps weak refs
        # Set (and replaced) whenever the framework adds an item to the conversation.
        self._history_changed = asyncio.Event()
        self._exited = False

    @property
    def level(self) -> str:
        return self.tracker.level

    @property
    def region(self) -> Region:
        return self.policy.region

    async def on_enter(self) -> None:
        self.session.on("conversation_item_added", self._history_grew)
        self._apply(self.turn_settings)
        self.lesson.replied(self.greeting)
        if isinstance(self.session.llm, ParleLLM):
            self._prefilling = asyncio.create_task(self._prefill(self.session.llm))
        tts = self.session.tts
        if tts is None:
            await self.session.say(self.greeting)
        else:
            await self.session.say(self.greeting, audio=_spoken_whole(tts, self.greeting))

    async def on_exit(self) -> None:
        self.session.off("conversation_item_added", self._history_grew)
        self._exited = True
        self._history_grew(None)  # a reply not chosen yet never will be now

    def _history_grew(self, _: Any) -> None:
        changed, self._history_changed = self._history_changed, asyncio.Event()
        changed.set()

    async def _prefill(self, model: ParleLLM) -> None:
        """The session's prompt (its level's system prompt, the learner's and the lesson's
        notes) prefilled by the LLM server while the greeting plays: the first reply then
        prefills only the greeting and the learner's words (a whole prompt on the `cpu`
        profile's one thread took the first reply's LLM first token to 1.6-1.8 s in a room)."""
        context = self.chat_ctx.copy()
        context.add_message(role="user", content="...")
        await model.prefill(self._request_context(context))

    async def on_user_turn_completed(
        self, turn_ctx: llm.ChatContext, new_message: llm.ChatMessage
    ) -> None:
        """Estimate the learner's level from what they said; steer the reply by it, and by
        the error PARLE's rules find in it."""
        text = new_message.text_content or ""
        if not text.strip() or match_command(text) is not None:
            return  # a command says nothing of the learner's level (llm_node answers it)
        turn = await self.policy.turn(self.tracker, text)
        self.turn_settings = turn
        if turn.estimate is not None:
            self._estimates.append((_normalized(text), turn.estimate.level))
        if turn.changed:
            log.info("learner level changed", extra={"level": turn.level})
            await self.update_instructions(turn.system_prompt)
            # `turn_ctx` was copied before the change: this reply gets the new prompt too, and
            # a reply generated preemptively at the old level no longer matches it, so the
            # framework discards it.
            _replace_instructions(turn_ctx, turn.system_prompt)
            self._apply(turn)
        self._look_for_errors(text, new_message, turn)
        if turn.estimate is not None:
            await self._publish(
                wire.LevelMessage(
                    level=turn.level, estimate=turn.estimate.level, scores=turn.estimate.scores
                )
            )

    def _look_for_errors(
        self,
        text: str,
        message: llm.ChatMessage,
        settings: TurnSettings,
    ) -> None:
        """The learner's errors in `text`: the grammar checker's, awaited once the reply is
        written; PARLE's rules' (their hint is in the reply's request already:
        `_request_context`), kept for the choice of the one correction."""
        previous = self._turn
        if previous is not None and not previous.claimed:
            previous.cancel()  # no reply to it was written: its check is of no use now
        found = learner_errors.find(text, level=settings.level) if self.rules else []
        checking = None
        if self.grammar is not None:
            checking = asyncio.create_task(
                checker_findings(text, self.grammar, self.grammar_health, level=settings.level)
            )
        self._turn = _LearnerTurn(message.id, text, found, settings.correction, checking)

    def _apply(self, turn: TurnSettings) -> None:
        """The level's reply length, speaking speed and turn-taking patience, for what comes
        next: the next LLM request, the next text spoken, the learner's next turn."""
        session = self.session
        if isinstance(session.llm, ParleLLM):
            session.llm.update_options(max_tokens=turn.max_tokens)
        if isinstance(session.tts, ParleTTS):
            session.tts.update_options(speed=self.lesson.speed(turn.tts_speed))
        session.update_options(
            endpointing_opts={
                "min_delay": turn.min_endpointing_delay_s,
                "max_delay": turn.max_endpointing_delay_s,
            }
        )

    def llm_node(
        self,
        chat_ctx: llm.ChatContext,
        tools: list[Any],
        model_settings: ModelSettings,
    ) -> AsyncIterable[llm.ChatChunk | str]:
        """The LLM's text without the correction block: speech stops at the marker, the block
        goes out on the `parle.tutor` topic once the reply ends.

        The level's reminder (it pins the language: small models drift into English) follows
        each of the learner's messages, as in the server's requests
        (`parle.tutor.prompts.build_messages`: the LLM server's cache then covers the whole
        previous request and its reply); it is added to this request's copy only, never to
        the session's history.
        """
        command = self.lesson.command_reply(chat_ctx, model_settings)
        if command is not None:
            return command  # a spoken command's answer, without the LLM's reply
        request = self._request_context(chat_ctx)
        learner = [m for m in chat_ctx.messages() if m.role == "user"]
        return self._spoken_only(
            Agent.default.llm_node(self, request, tools, model_settings),
            learner[-1] if learner else None,
            len(learner),
        )

    def _request_context(self, chat_ctx: llm.ChatContext) -> llm.ChatContext:
        """What an LLM request sends for `chat_ctx`: a copy with the session's notes, the
        level's reminder after each of the learner's messages, and last the reply's
        correction hint (`_hint`), never kept in the conversation."""
        request = with_reminders(self.lesson.request_context(chat_ctx), self.turn_settings.reminder)
        hint = self._hint(chat_ctx)
        if hint is not None:
            request.add_message(role="system", content=[hint])
        return request

    def _hint(self, chat_ctx: llm.ChatContext) -> str | None:
        """The correction this reply should make: the error PARLE's rules find in the
        learner's last words (microseconds: computed for each request, so a reply generated
        preemptively, before the turn ends, has it too and stays valid), else the one the
        checker found in their previous words after that reply was written."""
        learner = [m for m in chat_ctx.messages() if m.role == "user"]
        text = (learner[-1].text_content or "") if learner else ""
        if self.rules and text.strip() and match_command(text) is None:
            settings = self.turn_settings
            first = choose(learner_errors.find(text, level=settings.level))
            if first is not None:
                return correction_hint(first, settings.correction)
        return self._pending_hint

    def tts_node(
        self, text: AsyncIterable[str], model_settings: ModelSettings
    ) -> AsyncIterable[rtc.AudioFrame]:
        """The TTS, except for "repete": the last reply's frames again (agent/lessons.py)."""
        return self.lesson.tts(text, model_settings)

    async def set_level(self, level: str) -> None:
        """The learner asked for `level`: the tutor speaks at it from the next reply on. The
        tracker's starting point stays, so a client-given level does not undo it."""
        start = self.tracker.start
        self.tracker.reset(level)
        self.tracker.start = start
        self.turn_settings = self.policy.settings(self.tracker.level)
        await self.update_instructions(self.turn_settings.system_prompt)
        self._apply(self.turn_settings)

    async def publish_event(self, message: BaseModel) -> None:
        await self._publish(message)

    def estimate_of(self, utterance: str) -> str | None:
        """The level estimated for the learner's `utterance` (None: typed, a command, or no
        estimate), by its text: a preemptive reply's message is another object."""
        text = _normalized(utterance)
        return next((level for said, level in reversed(self._estimates) if said == text), None)

    def written_reply(
        self, reply: str, *, interrupted: bool = False
    ) -> tuple[str, Correction | None] | None:
        """The LLM's reply that `reply` is (as the conversation holds it: what was heard of an
        interrupted one), with the correction written after it; None for what the LLM did not
        write: the greeting, an opener, a command's answer, or a reply cut off before the LLM
        finished it."""
        text = _normalized(reply)
        for written in reversed(self._replies):
            if written.text == text or (interrupted and text and written.text.startswith(text)):
                return written.text, written.correction
        return None

    async def _spoken_only(
        self, upstream: Any, message: llm.ChatMessage | None, position: int
    ) -> AsyncIterator[llm.ChatChunk | str]:
        """The reply to the learner's `message` (the `position`-th of theirs in the
        conversation) as it is spoken; its correction once it is written."""
        if not hasattr(upstream, "__aiter__"):
            upstream = await upstream
        splitter = SideChannelSplitter()
        said: list[str] = []
        try:
            async for chunk in upstream:
                text = chunk if isinstance(chunk, str) else _chunk_text(chunk)
                if text is None:
                    yield chunk  # usage, tool calls: passed on as they are
                    continue
                spoken = splitter.push(text)
                if spoken:
                    said.append(spoken)
                    yield spoken
        except BaseException:
            self._unwritten(message)
            raise
        rest = splitter.flush()
        if rest:
            said.append(rest)
            yield rest
        self.lesson.replied("".join(said))
        written = _Written(_normalized("".join(said)), parse_correction(splitter.block))
        self._replies.append(written)
        # Never awaited here: the end of this stream lets the TTS say the last sentence.
        if message is not None and not self._in_history(message):
            # Written before the framework scheduled it: a preemptive generation, which it
            # may still throw away (its learner message then never joins the history).
            self._spawn(self._correct_if_kept(written, message, position))
            return
        turn = self._claim(message)
        if turn is None or turn.checking is None or turn.checking.done():
            await self._correct(written, turn)  # nothing to wait for
        else:
            self._spawn(self._correct(written, turn))

    def _unwritten(self, message: llm.ChatMessage | None) -> None:
        """The reply to `message` was interrupted before it was written: nothing is sent for
        it, and its learner turn's check is awaited by no one. (A preemptive reply thrown
        away leaves the check to the reply the framework asks instead.)"""
        turn = self._turn
        if message is None or turn is None or turn.claimed:
            return
        if turn.answered_by(message) and (
            message.id == turn.message_id or self._in_history(message)
        ):
            turn.cancel()

    def _in_history(self, message: llm.ChatMessage) -> bool:
        """Whether the framework has put `message` in the conversation: it does when it
        schedules the reply to it, never for a preemptive reply it throws away."""
        return self.chat_ctx.index_by_id(message.id) is not None

    def _claim(self, message: llm.ChatMessage | None) -> _LearnerTurn | None:
        """The learner turn that `message` (now in the history) is, for its reply's
        correction: the spoken one `on_user_turn_completed` saw, or a typed one (PARLE's
        rules only: the framework calls that hook for speech only); None for a turn whose
        correction is already taken (a second reply to the same words)."""
        if message is None or message.id in self._claimed:
            return None
        turn = self._turn
        if turn is None or turn.claimed or not turn.answered_by(message):
            text = message.text_content or ""
            if match_command(text) is not None:
                return None
            settings = self.turn_settings
            found = learner_errors.find(text, level=settings.level) if self.rules else []
            turn = _LearnerTurn(message.id, text, found, settings.correction, None)
        turn.claimed = True
        self._claimed.append(message.id)
        self._pending_hint = None  # the previous words' hint went with this reply's request
        return turn

    async def _correct_if_kept(
        self, written: _Written, message: llm.ChatMessage, position: int
    ) -> None:
        """The correction of a reply written before the framework chose it, once it does;
        none for one it throws away (the learner's message that took its place in the
        conversation is another, and its reply is corrected instead)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + KEPT_WAIT_S
        while not self._in_history(message):
            changed = self._history_changed
            users = sum(1 for m in self.chat_ctx.messages() if m.role == "user")
            if self._exited or users >= position or loop.time() >= deadline:
                return
            try:
                await asyncio.wait_for(changed.wait(), deadline - loop.time())
            except TimeoutError:
                return
        await self._correct(written, self._claim(message))

    async def _correct(self, written: _Written, turn: _LearnerTurn | None) -> None:
        """One correction for the written reply: of a spoken turn, the one error chosen among
        the rules', the checker's and the LLM's block (a typed one has no checker's). Sent,
        recorded for the recap and the learner's record; one the checker alone found is the
        next reply's hint. None for a reply without learner words of its own (a second
        reply to the same words): it corrects nothing of theirs."""
        block = written.correction
        written.correction = None
        if turn is None:
            return
        # Until the checker answers, the learner's record (agent/learner.py) gets the choice
        # without it.
        known = choose(combine(turn.text, turn.found, [], block))
        written.correction = known.correction if known is not None else None
        checked = await self._checked(turn)
        chosen = choose(combine(turn.text, turn.found, checked, block))
        correction = chosen.correction if chosen is not None else None
        if chosen is not None and chosen.source == "checker" and self._turn is turn:
            # Too late for this reply; the next one corrects it, unless the learner has
            # spoken again already (it would no longer be their previous utterance).
            self._pending_hint = correction_hint(chosen, turn.strategy, earlier=True)
        written.correction = correction  # what `written_reply` tells the learner's record
        if correction is None:
            return
        self.corrections.append(correction)
        self.lesson.state.record(correction)  # for the closing recap
        await self._publish(wire.CorrectionMessage.of(correction))

    async def _checked(self, turn: _LearnerTurn) -> list[Finding]:
        """The checker's findings in the turn's words; none when it failed, took too long
        (`CHECKER_WAIT_S`, counted as a failure) or its turn was interrupted."""
        task = turn.checking
        if task is None:
            return []
        done, _ = await asyncio.wait({task}, timeout=CHECKER_WAIT_S)
        if not done:
            task.cancel()
            self.grammar_health.failed(
                GrammarUnavailableError(
                    f"The grammar checker did not answer within {CHECKER_WAIT_S:g} s."
                )
            )
            return []
        if task.cancelled():
            return []
        error = task.exception()
        if error is not None:  # not a GrammarUnavailableError: a checker's bug, never the turn's
            log.warning("grammar check failed", extra={"error_type": type(error).__name__})
            return []
        return task.result()

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._correcting.add(task)
        task.add_done_callback(self._correcting.discard)

    async def _publish(self, message: BaseModel) -> None:
        if self.publish is None:
            return
        try:
            # The same shape as the WebSocket's `level` and `correction` messages.
            await self.publish(message.model_dump(mode="json", exclude_none=True))
        except Exception as exc:  # a side channel must never break the spoken turn
            log.warning("tutor event not sent", extra={"error_type": type(exc).__name__})


def _replace_instructions(chat_ctx: llm.ChatContext, instructions: str) -> None:
    """Put `instructions` in place of the agent's instructions message in `chat_ctx`."""
    index = chat_ctx.index_by_id(INSTRUCTIONS_MESSAGE_ID)
    if index is None:
        return
    old = chat_ctx.items[index]
    chat_ctx.items[index] = llm.ChatMessage(
        id=INSTRUCTIONS_MESSAGE_ID, role="system", content=[instructions], created_at=old.created_at
    )


def _normalized(text: str) -> str:
    return " ".join(text.split())


def _chunk_text(chunk: llm.ChatChunk) -> str | None:
    if chunk.delta is None or chunk.delta.tool_calls or chunk.delta.content is None:
        return None
    return chunk.delta.content


def room_publisher(room: Any) -> Publisher:
    """Events as JSON on the room's `parle.tutor` text stream."""

    async def publish(event: dict[str, Any]) -> None:
        await room.local_participant.send_text(json.dumps(event), topic=TUTOR_TOPIC)

    return publish


def with_reminders(chat_ctx: llm.ChatContext, reminder: str) -> llm.ChatContext:
    """`chat_ctx` with `reminder` as a system message after each of the learner's messages."""
    items: list[llm.ChatItem] = []
    for item in chat_ctx.items:
        items.append(item)
        if isinstance(item, llm.ChatMessage) and item.role == "user":
            items.append(llm.ChatMessage(role="system", content=[reminder]))
    return llm.ChatContext(items)


async def _spoken_whole(tts: TTS[Any], text: str) -> AsyncIterator[rtc.AudioFrame]:
    """`text`, known whole, in one synthesis: the server cuts it into pieces and streams them
    back to back. Through the framework's sentence splitter each sentence is a request sent
    once the one before is synthesized, and a short first sentence ("Olá!") plays out before
    the next one's audio exists: a 1.9 s hole in the greeting was heard on a loaded box."""
    async with tts.synthesize(text) as stream:
        async for event in stream:
            yield event.frame
