"""The lesson in a LiveKit room: a scenario's note and opener, spoken commands, the closing
recap. The grammar, the texts and the lesson state are the core's (`parle.tutor.commands`,
`parle.tutor.lesson`), as on the server; this module only speaks them through the framework.

Commands are answered inside the agent's `llm_node`: the learner's last message is a command,
so the "reply" is its answer, written without the LLM (one short LLM call for a translation),
and spoken by `tts_node`, which for "repete" plays the last reply's frames again instead of
synthesizing. Answering there covers spoken and typed turns alike (the framework calls the
turn hook for speech only). A command's effect (a speed step, a level) is applied once per
learner turn even when the framework asks the reply twice (a preemptive generation thrown
away and done again). Command exchanges are left out of the LLM's requests.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, cast

from livekit import rtc
from livekit.agents import Agent, ModelSettings, llm

from agent.plugins import ParleTTS
from parle import wire
from parle.tutor import commands
from parle.tutor.commands import Command, match_command
from parle.tutor.lesson import MAX_REPLAY_SECONDS, Lesson
from parle.tutor.scenarios import Scenario

if TYPE_CHECKING:
    from livekit.agents import AgentSession
    from pydantic import BaseModel

    from parle.tutor.policy import TurnSettings

log = logging.getLogger(__name__)


class LessonTutor(Protocol):
    """What a lesson uses of its `agent.tutor.TutorAgent` (an `Agent`, which owns the lesson:
    named by its shape here so the two modules do not import each other)."""

    turn_settings: TurnSettings

    @property
    def session(self) -> AgentSession[Any]: ...

    @property
    def level(self) -> str: ...

    async def set_level(self, level: str) -> None: ...

    async def publish_event(self, message: BaseModel) -> None: ...


@dataclass
class _Heard:
    """The last reply as the learner heard it: its text, speed and frames."""

    text: str
    speed: float | None
    frames: list[rtc.AudioFrame] = field(default_factory=list)


class AgentLesson:
    """One room's lesson, for its `TutorAgent`."""

    def __init__(self, tutor: LessonTutor, scenario: Scenario | None) -> None:
        self.tutor = tutor
        self.state = Lesson()
        self.notes: dict[str, str] = {}  # the session's context notes, as on the server
        if scenario is not None:
            self.state.start(scenario.id, self.notes)
        self.last_text: str | None = None  # the last reply (not a command's answer)
        self._heard: _Heard | None = None
        self._replay: list[rtc.AudioFrame] | None = None
        self._done: tuple[int, str] | None = None  # the learner turn last acted on
        self._answer = ""

    @property
    def scenario(self) -> Scenario | None:
        return self.state.scenario

    def speed(self, base: float) -> float:
        return self.state.speed(base)

    # --- the LLM's side -------------------------------------------------------------------

    def command_reply(
        self, chat_ctx: llm.ChatContext, model_settings: ModelSettings
    ) -> AsyncIterator[str] | None:
        """The answer when the learner's last message is a command; None otherwise."""
        users = [m for m in chat_ctx.messages() if m.role == "user"]
        if not users:
            return None
        command = match_command(users[-1].text_content or "")
        if command is None:
            return None
        return self._answer_command(command, (len(users), command.kind), model_settings)

    def request_context(self, chat_ctx: llm.ChatContext) -> llm.ChatContext:
        """An LLM request's context: the notes after the instructions, and no command
        exchanges (a command and the answer after it)."""
        items: list[llm.ChatItem] = []
        skipping = False
        for item in chat_ctx.items:
            if isinstance(item, llm.ChatMessage) and item.role in ("user", "assistant"):
                if item.role == "user":
                    skipping = match_command(item.text_content or "") is not None
                if skipping:
                    continue
            items.append(item)
        if self.notes:
            note = llm.ChatMessage(role="system", content=["\n\n".join(self.notes.values())])
            first = 1 if items and getattr(items[0], "role", None) == "system" else 0
            items.insert(first, note)
        return llm.ChatContext(items)

    def replied(self, text: str) -> None:
        """An LLM reply (or the greeting) was written: the one "repete" and "em inglês?"
        are about."""
        if text.strip():
            self.last_text = " ".join(text.split())

    async def _answer_command(
        self, command: Command, turn: tuple[int, str], model_settings: ModelSettings
    ) -> AsyncIterator[str]:
        first_time = turn != self._done
        self._done = turn
        if first_time:
            log.info("spoken command", extra={"command": command.kind})
            self._answer = await self._act(command, model_settings)
        elif command.kind == "repeat":
            self._arm_replay()
        yield self._answer

    async def _act(self, command: Command, model_settings: ModelSettings) -> str:
        """A command's effect, once per learner turn, and the answer to speak."""
        tutor = self.tutor
        base = tutor.turn_settings.tts_speed
        message = wire.CommandMessage(command=command.kind)
        if command.kind in ("slower", "faster"):
            moved = self.state.step(base, -1 if command.kind == "slower" else 1)
            message.speed = self.speed(base)
            tts = tutor.session.tts
            if isinstance(tts, ParleTTS):
                tts.update_options(speed=message.speed)
            answer = (
                (commands.SLOWER if moved else commands.SLOWEST)
                if command.kind == "slower"
                else (commands.FASTER if moved else commands.FASTEST)
            )
        elif command.kind == "level":
            if command.level is not None:
                await tutor.set_level(command.level)
                answer = commands.level_changed(command.level)
            else:
                answer = commands.LEVEL_UNKNOWN
            message.level = tutor.level
        elif command.kind == "repeat":
            answer = self.last_text or commands.NOTHING_YET
            self._arm_replay()
        elif command.kind == "translate":
            message.level = tutor.level
            if not commands.translation_allowed(tutor.level):
                answer = commands.TRANSLATION_DECLINED
            elif self.last_text is None:
                answer = commands.NOTHING_TO_TRANSLATE
            else:
                answer = commands.translation_hint(await self._translate(model_settings))
        else:  # end
            message.scenario = self.scenario.id if self.scenario else None
            answer = self.state.end(self.notes)
            self.replied(answer)
        await tutor.publish_event(message)
        return answer

    def _arm_replay(self) -> None:
        """ "repete": the last reply's frames, when they would sound as the learner would now
        hear them (same text, same speed); else it is synthesized again."""
        heard = self._heard
        tts = self.tutor.session.tts
        speed = tts.speed if isinstance(tts, ParleTTS) else None
        if heard is not None and heard.frames and heard.text == self.last_text:
            self._replay = list(heard.frames) if heard.speed == speed else None

    async def _translate(self, model_settings: ModelSettings) -> str:
        assert self.last_text is not None
        request = llm.ChatContext()
        for message in commands.translation_messages(self.last_text):
            request.add_message(role=message["role"], content=message["content"])
        stream: Any = Agent.default.llm_node(cast(Agent, self.tutor), request, [], model_settings)
        if not hasattr(stream, "__aiter__"):
            stream = await stream
        parts = []
        async for chunk in stream:
            if isinstance(chunk, str):
                parts.append(chunk)
            elif isinstance(chunk, llm.ChatChunk) and chunk.delta and chunk.delta.content:
                parts.append(chunk.delta.content)
        return "".join(parts)

    # --- the speech side ------------------------------------------------------------------

    async def tts(
        self, text: AsyncIterable[str], model_settings: ModelSettings
    ) -> AsyncIterator[rtc.AudioFrame]:
        """Speech for a reply: the cached frames for "repete" (no TTS), else the TTS, whose
        frames are kept when the text is the last reply's."""
        chunks = aiter(text)
        first = await anext(chunks, None)
        replay, self._replay = self._replay, None
        if replay is not None:
            async for _ in chunks:  # the text is the repeated reply's; nothing to synthesize
                pass
            for frame in replay:
                yield frame
            return
        written = [first] if first is not None else []

        async def all_text() -> AsyncIterator[str]:
            for piece in written[:1]:
                yield piece
            async for piece in chunks:
                written.append(piece)
                yield piece

        tts = self.tutor.session.tts
        heard = _Heard("", tts.speed if isinstance(tts, ParleTTS) else None)
        frames: Any = Agent.default.tts_node(cast(Agent, self.tutor), all_text(), model_settings)
        if not hasattr(frames, "__aiter__"):
            frames = await frames
        seconds = 0.0
        async for frame in frames:
            seconds += frame.duration
            if seconds <= MAX_REPLAY_SECONDS:  # a longer reply is synthesized again
                heard.frames.append(frame)
            yield frame
        if seconds > MAX_REPLAY_SECONDS:
            heard.frames.clear()
        heard.text = " ".join("".join(written).split())
        if heard.text and heard.text == self.last_text:
            self._heard = heard
