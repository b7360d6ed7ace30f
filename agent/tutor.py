"""`TutorAgent`: PARLE's tutor in a LiveKit room. The pedagogy is the core's
(`parle.tutor`): the same prompts, the same correction side channel, the same level smoothing.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from typing import Any

from livekit.agents import Agent, ModelSettings, llm

from parle.tutor.corrections import Correction, SideChannelSplitter, parse_correction
from parle.tutor.levels import LevelEstimator, LevelTracker, LexicalLevelEstimator, policy_for
from parle.tutor.prompts import Region, system_prompt, turn_reminder

log = logging.getLogger(__name__)

TUTOR_TOPIC = "parle.tutor"  # the room text stream carrying level and correction events
GREETING = "Olá! Eu sou a Parle, sua professora de português. Sobre o que você quer conversar?"
PHONE_GREETING = "Olá! Aqui é a Parle, sua professora de português. Como você está hoje?"

# Sends one JSON event on the `parle.tutor` topic (the room's text stream, in a job).
Publisher = Callable[[dict[str, Any]], Awaitable[None]]


class TutorAgent(Agent):
    """A patient Brazilian-Portuguese tutor: greets the learner, adapts to their level (prompt,
    reply length, speaking rate, turn-taking patience), and sends corrections apart from speech.
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
        super().__init__(instructions=system_prompt(level, region))
        self.region: Region = region
        self.tracker = LevelTracker(level.upper(), start=level.upper())
        self.estimator = estimator if estimator is not None else LexicalLevelEstimator()
        self.publish = publish
        self.greeting = greeting
        self.corrections: list[Correction] = []

    @property
    def level(self) -> str:
        return self.tracker.level

    async def on_enter(self) -> None:
        await self.session.say(self.greeting)

    async def on_user_turn_completed(
        self, turn_ctx: llm.ChatContext, new_message: llm.ChatMessage
    ) -> None:
        """Estimate the learner's level from what they said; steer the next reply by it."""
        text = new_message.text_content or ""
        if not text.strip():
            return
        before = self.tracker.level
        estimate = self.estimator.estimate(text)
        level = self.tracker.observe(estimate)
        if level != before:
            await self.update_instructions(system_prompt(level, self.region))
        # The language is pinned every turn: small models drift into English.
        turn_ctx.add_message(role="system", content=turn_reminder(level, self.region))
        await self._publish(
            {"type": "level", "level": level, "estimate": estimate.level, "scores": estimate.scores}
        )

    def llm_node(
        self,
        chat_ctx: llm.ChatContext,
        tools: list[Any],
        model_settings: ModelSettings,
    ) -> AsyncIterable[llm.ChatChunk | str]:
        """The LLM's text without the correction block: speech stops at the marker, the block
        goes out on the `parle.tutor` topic once the reply ends."""
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
            await self._publish({"type": "correction", **correction.as_dict()})

    async def _publish(self, event: dict[str, Any]) -> None:
        if self.publish is None:
            return
        try:
            await self.publish(event)
        except Exception as exc:  # a side channel must never break the spoken turn
            log.warning("tutor event not sent", extra={"error_type": type(exc).__name__})

    def endpointing(self) -> dict[str, float]:
        """The turn-taking patience for the learner's current level."""
        policy = policy_for(self.level)
        return {
            "min_delay": policy.min_endpointing_delay_s,
            "max_delay": policy.max_endpointing_delay_s,
        }


def _chunk_text(chunk: llm.ChatChunk) -> str | None:
    if chunk.delta is None or chunk.delta.tool_calls or chunk.delta.content is None:
        return None
    return chunk.delta.content


def room_publisher(room: Any) -> Publisher:
    """Events as JSON on the room's `parle.tutor` text stream."""

    async def publish(event: dict[str, Any]) -> None:
        await room.local_participant.send_text(json.dumps(event), topic=TUTOR_TOPIC)

    return publish
