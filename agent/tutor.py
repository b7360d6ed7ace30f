"""`TutorAgent`: PARLE's tutor in a LiveKit room. The pedagogy is the core's
(`parle.tutor`): the same prompts, the same correction side channel, and the same tutor
policy (`parle.tutor.policy`) as the server's pipeline, so a level means the same thing at
every door.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from typing import Any

from livekit import rtc
from livekit.agents import Agent, ModelSettings, llm
from livekit.agents.tts import TTS
from livekit.agents.voice.generation import INSTRUCTIONS_MESSAGE_ID
from pydantic import BaseModel

from agent.lessons import AgentLesson
from agent.plugins import ParleLLM, ParleTTS
from parle import wire
from parle.tutor import commands
from parle.tutor.commands import match_command
from parle.tutor.corrections import Correction, SideChannelSplitter, parse_correction
from parle.tutor.levels import LevelEstimator, LevelTracker, LexicalLevelEstimator
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
        self._replies: deque[tuple[str, Correction | None]] = deque(maxlen=8)
        self._prefilling: asyncio.Task[None] | None = None  # held: the loop keeps weak refs
        self.greeting = scenario.opener if scenario is not None else greeting

    @property
    def level(self) -> str:
        return self.tracker.level

    @property
    def region(self) -> Region:
        return self.policy.region

    async def on_enter(self) -> None:
        self._apply(self.turn_settings)
        self.lesson.replied(self.greeting)
        if isinstance(self.session.llm, ParleLLM):
            self._prefilling = asyncio.create_task(self._prefill(self.session.llm))
        tts = self.session.tts
        if tts is None:
            await self.session.say(self.greeting)
        else:
            await self.session.say(self.greeting, audio=_spoken_whole(tts, self.greeting))

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
        """Estimate the learner's level from what they said; steer the reply by it."""
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
        if turn.estimate is not None:
            await self._publish(
                wire.LevelMessage(
                    level=turn.level, estimate=turn.estimate.level, scores=turn.estimate.scores
                )
            )

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
        return self._spoken_only(Agent.default.llm_node(self, request, tools, model_settings))

    def _request_context(self, chat_ctx: llm.ChatContext) -> llm.ChatContext:
        """What an LLM request sends for `chat_ctx`: a copy with the session's notes and the
        level's reminder after each of the learner's messages."""
        return with_reminders(self.lesson.request_context(chat_ctx), self.turn_settings.reminder)

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
        for written, correction in reversed(self._replies):
            if written == text or (interrupted and text and written.startswith(text)):
                return written, correction
        return None

    async def _spoken_only(self, upstream: Any) -> AsyncIterator[llm.ChatChunk | str]:
        if not hasattr(upstream, "__aiter__"):
            upstream = await upstream
        splitter = SideChannelSplitter()
        said: list[str] = []
        async for chunk in upstream:
            text = chunk if isinstance(chunk, str) else _chunk_text(chunk)
            if text is None:
                yield chunk  # usage, tool calls: passed on as they are
                continue
            spoken = splitter.push(text)
            if spoken:
                said.append(spoken)
                yield spoken
        rest = splitter.flush()
        if rest:
            said.append(rest)
            yield rest
        self.lesson.replied("".join(said))
        correction = parse_correction(splitter.block)
        self._replies.append((_normalized("".join(said)), correction))
        if correction is not None:
            self.corrections.append(correction)
            self.lesson.state.record(correction)  # for the closing recap
            await self._publish(wire.CorrectionMessage.of(correction))

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
