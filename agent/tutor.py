"""`TutorAgent`: PARLE's tutor in a LiveKit room. The pedagogy is the core's
(`parle.tutor`): the same prompts, the same correction side channel, and the same tutor
policy (`parle.tutor.policy`) as the server's pipeline, so a level means the same thing at
every door.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from typing import Any

from livekit.agents import Agent, ModelSettings, llm
from livekit.agents.voice.generation import INSTRUCTIONS_MESSAGE_ID

from agent.plugins import ParleLLM, ParleTTS
from parle import wire
from parle.tutor.corrections import Correction, SideChannelSplitter, parse_correction
from parle.tutor.levels import LevelEstimator, LevelTracker, LexicalLevelEstimator
from parle.tutor.policy import TurnSettings, TutorPolicy
from parle.tutor.prompts import Region

log = logging.getLogger(__name__)

TUTOR_TOPIC = "parle.tutor"  # the room text stream carrying level and correction events
GREETING = "Olá! Eu sou a Parle, sua professora de português. Sobre o que você quer conversar?"
PHONE_GREETING = "Olá! Aqui é a Parle, sua professora de português. Como você está hoje?"

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
    """

    def __init__(
        self,
        *,
        level: str = "A2",
        region: Region = "BR",
        estimator: LevelEstimator | None = None,
        publish: Publisher | None = None,
        greeting: str = GREETING,
    ) -> None:
        self.policy = TutorPolicy(
            estimator if estimator is not None else LexicalLevelEstimator(), region=region
        )
        self.tracker = LevelTracker(level)
        self.turn_settings: TurnSettings = self.policy.settings(self.tracker.level)
        super().__init__(instructions=self.turn_settings.system_prompt)
        self.publish = publish
        self.greeting = greeting
        self.corrections: list[Correction] = []

    @property
    def level(self) -> str:
        return self.tracker.level

    @property
    def region(self) -> Region:
        return self.policy.region

    async def on_enter(self) -> None:
        self._apply(self.turn_settings)
        await self.session.say(self.greeting)

    async def on_user_turn_completed(
        self, turn_ctx: llm.ChatContext, new_message: llm.ChatMessage
    ) -> None:
        """Estimate the learner's level from what they said; steer the reply by it."""
        text = new_message.text_content or ""
        if not text.strip():
            return
        turn = await self.policy.turn(self.tracker, text)
        self.turn_settings = turn
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
            session.tts.update_options(speed=turn.tts_speed)
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

        The request ends with the level's reminder (it pins the language: small models drift
        into English), after the history and the learner's words, as the server's requests
        do; it is added to this request's copy only, never to the session's history.
        """
        chat_ctx = chat_ctx.copy()
        chat_ctx.add_message(role="system", content=self.turn_settings.reminder)
        return self._spoken_only(Agent.default.llm_node(self, chat_ctx, tools, model_settings))

    async def _spoken_only(self, upstream: Any) -> AsyncIterator[llm.ChatChunk | str]:
        if not hasattr(upstream, "__aiter__"):
            upstream = await upstream
        splitter = SideChannelSplitter()
        async for chunk in upstream:
            text = chunk if isinstance(chunk, str) else _chunk_text(chunk)
            if text is None:
                yield chunk  # usage, tool calls: passed on as they are
                continue
            spoken = splitter.push(text)
            if spoken:
                yield spoken
        rest = splitter.flush()
        if rest:
            yield rest
        correction = parse_correction(splitter.block)
        if correction is not None:
            self.corrections.append(correction)
            await self._publish(wire.CorrectionMessage.of(correction))

    async def _publish(self, message: wire.LevelMessage | wire.CorrectionMessage) -> None:
        if self.publish is None:
            return
        try:
            # The same shape as the WebSocket's `level` and `correction` messages.
            await self.publish(message.model_dump(mode="json"))
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


def _chunk_text(chunk: llm.ChatChunk) -> str | None:
    if chunk.delta is None or chunk.delta.tool_calls or chunk.delta.content is None:
        return None
    return chunk.delta.content


def room_publisher(room: Any) -> Publisher:
    """Events as JSON on the room's `parle.tutor` text stream."""

    async def publish(event: dict[str, Any]) -> None:
        await room.local_participant.send_text(json.dumps(event), topic=TUTOR_TOPIC)

    return publish
