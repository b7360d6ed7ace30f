"""`TutorAgent` in a real `AgentSession` (text mode, no room) with `ParleLLM` talking to a
scripted OpenAI-compatible server: corrections never reach speech, level events go out."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from livekit.agents import AgentSession, llm

from agent.plugins import ParleLLM
from agent.tutor import TutorAgent
from tests.doubles.scripted_llm import ScriptedLlmServer

BLOCK = (
    '<correcao>{"original": "Eu vai na praia", "corrected": "Eu fui à praia", '
    '"explanation": "passado de ir", "kind": "tense"}</correcao>'
)
REPLY = ["Que legal!", " Você foi", " à praia", " ontem?", " <corr", BLOCK[5:]]


@pytest.fixture
def llm_server() -> Iterator[ScriptedLlmServer]:
    server = ScriptedLlmServer(REPLY).start()
    yield server
    server.stop()


async def test_tutor_answers_without_the_correction_and_publishes_it(
    llm_server: ScriptedLlmServer,
) -> None:
    events: list[dict[str, Any]] = []

    async def publish(event: dict[str, Any]) -> None:
        events.append(event)

    agent = TutorAgent(level="A1", publish=publish, greeting="Olá!")
    async with AgentSession(llm=ParleLLM(base_url=llm_server.url)) as session:
        await session.start(agent)
        result = await session.run(user_input="Eu vai na praia ontem com a minha família.")
    said = [
        (e.item.text_content or "").strip()
        for e in result.events
        if getattr(e, "type", "") == "message" and e.item.role == "assistant"
    ]
    assert said == ["Que legal! Você foi à praia ontem?"]
    assert events == [
        {
            "type": "correction",
            "original": "Eu vai na praia",
            "corrected": "Eu fui à praia",
            "explanation": "passado de ir",
            "kind": "tense",
        }
    ]
    assert "(A1)" in llm_server.requests[-1]["messages"][0]["content"]


async def test_each_learner_turn_updates_the_level_and_pins_the_language() -> None:
    events: list[dict[str, Any]] = []

    async def publish(event: dict[str, Any]) -> None:
        events.append(event)

    agent = TutorAgent(level="A1", publish=publish)
    advanced = "Embora eu tivesse estudado bastante, não consegui passar, portanto tentarei."
    for turn in range(3):
        context = llm.ChatContext()
        message = context.add_message(role="user", content=advanced)
        await agent.on_user_turn_completed(context, message)
        assert context.items[-1].role == "system"
        assert "português do Brasil" in (context.items[-1].text_content or "")
        assert events[-1]["type"] == "level" and events[-1]["estimate"] in ("B1", "B2", "C1")
        assert events[-1]["level"] == ("A1" if turn < 2 else "A2")  # one step, after evidence
    assert agent.level == "A2" and "(A2)" in agent.instructions


def test_endpointing_follows_the_level() -> None:
    beginner = TutorAgent(level="A1").endpointing()
    advanced = TutorAgent(level="C1").endpointing()
    assert beginner["min_delay"] > advanced["min_delay"]
    assert beginner["max_delay"] > advanced["max_delay"]
