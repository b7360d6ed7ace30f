"""Lessons and spoken commands in a LiveKit voice session: `TutorAgent` in a real
`AgentSession` (no room), `ParleLLM` talking to a scripted OpenAI-compatible server that
records every request. Typed turns (`session.run`) go through the same `llm_node` as spoken
ones; the replay test plays the session's audio out through a loudspeaker double, with
`ParleTTS` on the PARLE app (instant engines)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from livekit.agents import AgentSession

from agent.plugins import ParleLLM, ParleTTS
from agent.tutor import TutorAgent
from harness.scripted_llm import ScriptedLlmServer
from harness.voice import Speaker
from parle.tutor import commands
from parle.tutor.levels import POLICIES
from parle.tutor.prompts import system_prompt
from parle.tutor.scenarios import get_scenario
from tests.doubles.stack import make_stack

BLOCK = (
    '<correcao>{"original": "Eu quer um café", "corrected": "Eu quero um café", '
    '"explanation": "verbo querer", "kind": "grammar"}</correcao>'
)
REPLY = ["Claro!", " Com leite", " ou sem?", " " + BLOCK]
SPOKEN = "Claro! Com leite ou sem?"
CAFE = get_scenario("no-cafe")


@pytest.fixture
def llm_server() -> Iterator[ScriptedLlmServer]:
    server = ScriptedLlmServer(list(REPLY)).start()
    yield server
    server.stop()


def said(result: Any) -> list[str]:
    return [
        (e.item.text_content or "").strip()
        for e in result.events
        if getattr(e, "type", "") == "message" and e.item.role == "assistant"
    ]


async def test_a_scenario_and_spoken_commands_in_a_voice_session(
    llm_server: ScriptedLlmServer,
) -> None:
    events: list[dict[str, Any]] = []

    async def publish(event: dict[str, Any]) -> None:
        events.append(event)

    agent = TutorAgent(level="A1", publish=publish, scenario=CAFE)
    assert agent.greeting == CAFE.opener
    llm_, tts = ParleLLM(base_url=llm_server.url), ParleTTS(server_url=llm_server.url)
    async with AgentSession(llm=llm_, tts=tts) as session:
        await session.start(agent)
        result = await session.run(user_input="Eu quer um café.")
        assert said(result) == [SPOKEN]
        messages = llm_server.requests[-1]["messages"]
        # The level's system prompt, then the scenario's note, as the server sends them.
        assert messages[0] == {"role": "system", "content": system_prompt("A1")}
        assert messages[1]["role"] == "system" and "Seu Carlos" in messages[1]["content"]
        assert CAFE.opener in messages[1]["content"]

        # "mais devagar": no LLM, one step slower for the rest of the session.
        requests = len(llm_server.requests)
        result = await session.run(user_input="Mais devagar, por favor.")
        assert said(result) == [commands.SLOWER]
        slower = round(POLICIES["A1"].tts_speed - commands.SPEED_STEP, 2)
        assert tts.speed == slower and len(llm_server.requests) == requests
        assert events[-1] == {"type": "command", "command": "slower", "speed": slower}

        # "em inglês?" at A1: one short translation request about the last reply.
        llm_server.tokens = ["Of course!", " With or", " without milk?"]
        result = await session.run(user_input="Em inglês?")
        assert said(result) == ["Em inglês: Of course!"]
        assert llm_server.requests[-1]["messages"][-1] == {"role": "user", "content": SPOKEN}
        assert len(llm_server.requests) == requests + 1

        # "nível B2": the level moves; above A2 a translation is declined without the LLM.
        result = await session.run(user_input="Mudar para o nível B2.")
        assert said(result) == [commands.level_changed("B2")]
        assert agent.level == "B2" and events[-1]["level"] == "B2"
        assert tts.speed == round(POLICIES["B2"].tts_speed - commands.SPEED_STEP, 2)
        result = await session.run(user_input="Tradução, por favor.")
        assert said(result) == [commands.TRANSLATION_DECLINED]
        assert len(llm_server.requests) == requests + 1

        # An ordinary turn: the B2 prompt, and no command exchange in the request.
        llm_server.tokens = list(REPLY)
        await session.run(user_input="Eu falo mais devagar quando estou cansado.")
        messages = llm_server.requests[-1]["messages"]
        assert messages[0]["content"] == system_prompt("B2")
        contents = " ".join(str(m["content"]) for m in messages)
        assert "Mais devagar, por favor." not in contents and commands.SLOWER not in contents
        assert "Em inglês" not in contents

        # "tchau": the closer and the recap of the session's corrections.
        result = await session.run(user_input="Obrigado, tchau!")
        (closing,) = said(result)
        assert closing.startswith(CAFE.closer)
        assert "em vez de Eu quer um café, diga Eu quero um café" in closing
        assert events[-1] == {"type": "command", "command": "end", "scenario": "no-cafe"}


async def wait_until(predicate: Callable[[], bool], within_s: float) -> None:
    deadline = time.monotonic() + within_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_repeat_replays_the_last_reply_without_tts() -> None:
    with make_stack() as stack:
        stack.llm.tokens = list(REPLY)
        speaker = Speaker()
        tts = ParleTTS(server_url=stack.url)
        session: AgentSession[Any] = AgentSession(llm=ParleLLM(base_url=stack.llm.url), tts=tts)
        session.output.audio = speaker
        async with session:
            await session.start(TutorAgent(level="A2", greeting="Olá!"))
            await wait_until(lambda: bool(speaker.frames), 30)  # the greeting
            await session.run(user_input="Eu quer um café.")
            synthesized = list(stack.tts.texts)
            assert " ".join(synthesized).endswith(SPOKEN)
            before = len(speaker.frames)
            heard = [bytes(f.data) for f in speaker.frames]
            result = await session.run(user_input="Repete!")
            assert said(result) == [SPOKEN]
            assert stack.tts.texts == synthesized  # no TTS: the cached frames
            replayed = [bytes(f.data) for f in speaker.frames[before:]]
            assert replayed and replayed == heard[-len(replayed) :]
            # After "slower", the reply no longer sounds as it did: synthesized again.
            await session.run(user_input="Slower, please.")
            count = len(stack.tts.texts)
            await session.run(user_input="Could you repeat that?")
            assert " ".join(stack.tts.texts[count:]) == SPOKEN
