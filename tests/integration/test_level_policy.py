"""One tutor policy at every door. A learner who starts at A1 and keeps speaking like a C1
learner moves to A2 on the third utterance; from then on the replies are longer and spoken
faster, over SSE (the server's pipeline) as in a LiveKit voice session (`TutorAgent`, where the
turn-taking patience follows too). Both doors ask the LLM with the same system prompt for the
same level, and end every request with the level's reminder.

The server is the PARLE app on real uvicorn with instant engines (the transcriber always hears
`ADVANCED`) and a scripted LLM that records every request; the voice session is an in-process
`AgentSession` fed real-time learner audio, with real Silero VAD and the PARLE plugins."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from livekit.agents import (
    AgentSession,
    ConversationItemAddedEvent,
    MetricsCollectedEvent,
    llm,
    metrics,
)
from livekit.plugins import silero

from agent.plugins import ParleLLM, ParleSTT, ParleTTS
from agent.tutor import TutorAgent
from harness.voice import LearnerMicrophone, Speaker
from parle.tutor.levels import POLICIES, LexicalLevelEstimator
from parle.tutor.prompts import system_prompt, turn_reminder
from tests.doubles.clients import parse_sse
from tests.doubles.stack import Stack, make_stack

ADVANCED = "Embora eu tivesse estudado bastante, não consegui passar na prova, portanto tentarei."
A1, A2 = POLICIES["A1"], POLICIES["A2"]


def reply(turn: int) -> list[str]:
    """The scripted reply of turn `turn`, told apart from the others by its first sentence."""
    return [f"Resposta {turn}.", " Muito bem!"]


def speed_of(stack: Stack, sentence: str) -> float | None:
    """The speed the server was asked to speak `sentence` at."""
    speeds = [s for t, s in zip(stack.tts.texts, stack.tts.speeds, strict=True) if sentence in t]
    assert speeds, f"{sentence!r} was never spoken: {stack.tts.texts}"
    return speeds[-1]


def answered(requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per learner turn, the last LLM request made for it (a preemptive request that was
    thrown away comes before it)."""
    by_turn: dict[int, dict[str, Any]] = {}
    for request in requests:
        users = sum(1 for m in request["messages"] if m["role"] == "user")
        by_turn[users] = request
    return [by_turn[turn] for turn in sorted(by_turn)]


# --- SSE --------------------------------------------------------------------------------------


def test_sse_a_level_change_steers_the_next_reply(audio_dir: Path) -> None:
    speech = (audio_dir / "utterances/u02.wav").read_bytes()
    with make_stack() as stack:
        stack.stt.text = ADVANCED
        levels = []
        for turn in (1, 2, 3):
            stack.llm.tokens = reply(turn)
            response = httpx.post(
                f"{stack.url}/api/stream-audio",
                files={"audio": ("learner.wav", speech, "audio/wav")},
                data={"session_id": "moving-up", "level": "A1"},
                timeout=30,
            )
            events = parse_sse(response.text)
            assert events[-1][0] == "complete", events[-1]
            levels += [data["level"] for name, data in events if name == "level"]
        assert levels == ["A1", "A1", "A2"]
        requests = stack.llm.requests
        assert [r["max_tokens"] for r in requests] == [A1.max_tokens, A1.max_tokens, A2.max_tokens]
        assert [speed_of(stack, f"Resposta {turn}.") for turn in (1, 2, 3)] == [
            A1.tts_speed,
            A1.tts_speed,
            A2.tts_speed,
        ]
        assert requests[1]["messages"][0]["content"] == system_prompt("A1")
        assert requests[2]["messages"][0]["content"] == system_prompt("A2")
        assert requests[2]["messages"][-1]["content"] == turn_reminder("A2")


# --- A LiveKit voice session ------------------------------------------------------------------


async def wait_until(predicate: Callable[[], bool], within_s: float, state: Any = None) -> None:
    deadline = time.monotonic() + within_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out; {state() if state else ''}"
        await asyncio.sleep(0.05)


async def test_voice_a_level_change_steers_the_next_turn(
    audio_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="livekit.agents")
    estimator = LexicalLevelEstimator()
    estimator.load()
    with make_stack() as stack:
        stack.stt.text = ADVANCED
        microphone, speaker = LearnerMicrophone(), Speaker()
        # Framework defaults for the reply length, speed and endpointing: the tutor sets them.
        session: AgentSession[Any] = AgentSession(
            stt=ParleSTT(server_url=stack.url),
            llm=ParleLLM(base_url=stack.llm.url),
            tts=ParleTTS(server_url=stack.url),
            vad=silero.VAD.load(),
            turn_handling={
                "turn_detection": "vad",
                "interruption": {"mode": "vad", "resume_false_interruption": False},
                "preemptive_generation": {"enabled": True},
            },
        )
        session.input.audio = microphone
        session.output.audio = speaker
        said: list[str] = []
        states: list[str] = []
        end_of_turn: list[float] = []

        def on_item(ev: ConversationItemAddedEvent) -> None:
            if isinstance(ev.item, llm.ChatMessage) and ev.item.role == "assistant":
                said.append(ev.item.text_content or "")

        def on_metrics(ev: MetricsCollectedEvent) -> None:
            if isinstance(ev.metrics, metrics.EOUMetrics):
                end_of_turn.append(ev.metrics.end_of_utterance_delay)

        session.on("conversation_item_added", on_item)
        session.on("metrics_collected", on_metrics)
        session.on("agent_state_changed", lambda ev: states.append(ev.new_state))
        endpointing: list[tuple[float, float]] = []

        def live_endpointing() -> tuple[float, float]:
            # What the session's audio recognition decides turns with right now.
            recognition = session._activity._audio_recognition  # type: ignore[union-attr]
            assert recognition is not None
            live = recognition._endpointing
            options = session.options.endpointing
            assert (live.min_delay, live.max_delay) == (options["min_delay"], options["max_delay"])
            return live.min_delay, live.max_delay

        def where() -> str:
            return f"states={states[-6:]} said={said} requests={len(stack.llm.requests)}"

        agent = TutorAgent(level="A1", estimator=estimator, greeting="Olá!")
        await session.start(agent)
        await wait_until(lambda: bool(said), 60, where)  # the greeting
        await wait_until(lambda: bool(states) and states[-1] == "listening", 60, where)
        endpointing.append(live_endpointing())
        for turn in (1, 2, 3):
            stack.llm.tokens = reply(turn)
            microphone.say(audio_dir / "utterances/u02.wav")
            await wait_until(lambda turn=turn: len(said) >= turn + 1, 90, where)  # type: ignore[misc]
            await wait_until(lambda: states[-1] == "listening", 90, where)
            endpointing.append(live_endpointing())
        await session.aclose()

    assert agent.level == "A2"
    assert said[1:] == ["".join(reply(turn)) for turn in (1, 2, 3)]
    requests = answered(stack.llm.requests)
    assert [r["max_tokens"] for r in requests] == [A1.max_tokens, A1.max_tokens, A2.max_tokens]
    assert [speed_of(stack, f"Resposta {turn}.") for turn in (1, 2, 3)] == [
        A1.tts_speed,
        A1.tts_speed,
        A2.tts_speed,
    ]
    assert speed_of(stack, "Olá!") == A1.tts_speed  # the starting level, from the greeting on
    a1 = (A1.min_endpointing_delay_s, A1.max_endpointing_delay_s)
    a2 = (A2.min_endpointing_delay_s, A2.max_endpointing_delay_s)
    assert endpointing == [a1, a1, a1, a2]  # the learner's turn after the change waits less
    # The turns at A1 waited A1's patience (the framework's default is 0.5 s).
    assert len(end_of_turn) >= 3 and min(end_of_turn[:3]) >= A1.min_endpointing_delay_s - 0.05

    # The same system prompt as the server's for the level, and the reminder last, after the
    # history and the learner's words (and after each of the history's learner messages).
    assert requests[1]["messages"][0] == {"role": "system", "content": system_prompt("A1")}
    assert requests[2]["messages"][0] == {"role": "system", "content": system_prompt("A2")}
    for request, level in zip(requests, ("A1", "A1", "A2"), strict=True):
        messages = request["messages"]
        assert messages[-1] == {"role": "system", "content": turn_reminder(level)}
        assert messages[-2]["role"] == "user"
        users = sum(m["role"] == "user" for m in messages)
        reminders = [m for m in messages if m["content"] == turn_reminder(level)]
        assert len(reminders) == users and sum(m["role"] == "system" for m in messages) == users + 1
    # The reminder rides in the LLM request, so a reply generated preemptively stays valid:
    # only the turn whose estimate moved the level had it thrown away.
    invalidated = [r for r in caplog.records if "preemptive generation invalidated" in r.message]
    used = [r for r in caplog.records if "using preemptive generation" in r.message]
    assert len(invalidated) <= 1 and used
