"""`TutorAgent` in a real `AgentSession` (text mode, no room) with `ParleLLM` talking to a
scripted OpenAI-compatible server: corrections never reach speech, level events go out, and
the learner's level steers the prompt, the reply length, the speed and the endpointing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from livekit.agents import AgentSession, llm

from agent.plugins import ParleLLM, ParleTTS
from agent.tutor import TutorAgent
from harness.scripted_llm import ScriptedLlmServer
from parle.tutor.levels import POLICIES
from parle.tutor.prompts import turn_reminder

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
    messages = llm_server.requests[-1]["messages"]
    assert "(A1)" in messages[0]["content"]
    # The language is pinned after the learner's words, in the request only.
    assert messages[-1] == {"role": "system", "content": turn_reminder("A1")}
    assert messages[-2] == {"role": "user", "content": "Eu vai na praia ontem com a minha família."}
    # While the greeting played, the LLM server prefilled this session's prompt: the system
    # messages the first reply's request starts with.
    [prefill] = llm_server.prefills
    assert prefill["max_tokens"] == 1 and not prefill["stream"]
    leading = next(i for i, m in enumerate(messages) if m["role"] != "system")
    assert leading >= 1 and prefill["messages"][:leading] == messages[:leading]
    assert prefill["messages"][leading]["role"] == "user"


async def test_the_starting_level_steers_the_session_from_the_greeting_on(
    llm_server: ScriptedLlmServer,
) -> None:
    llm_, tts = ParleLLM(base_url=llm_server.url), ParleTTS(server_url=llm_server.url)
    async with AgentSession(llm=llm_, tts=tts) as session:
        await session.start(TutorAgent(level="C1", greeting="Olá!"))
        c1 = POLICIES["C1"]
        assert (llm_.max_tokens, tts.speed) == (c1.max_tokens, c1.tts_speed)
        endpointing = session.options.endpointing
        assert (endpointing["min_delay"], endpointing["max_delay"]) == (
            c1.min_endpointing_delay_s,
            c1.max_endpointing_delay_s,
        )
        await session.run(user_input="Tudo bem?")
    assert llm_server.requests[-1]["max_tokens"] == c1.max_tokens


async def test_each_learner_turn_updates_the_level_and_what_it_steers(
    llm_server: ScriptedLlmServer,
) -> None:
    events: list[dict[str, Any]] = []

    async def publish(event: dict[str, Any]) -> None:
        events.append(event)

    agent = TutorAgent(level="A1", publish=publish)
    advanced = "Embora eu tivesse estudado bastante, não consegui passar, portanto tentarei."
    llm_, tts = ParleLLM(base_url=llm_server.url), ParleTTS(server_url=llm_server.url)
    async with AgentSession(llm=llm_, tts=tts) as session:
        await session.start(agent)
        for turn in range(3):
            # The framework's hook, as it calls it: on a copy of the agent's context.
            context = agent.chat_ctx.copy()
            items = [item.id for item in context.items]
            message = llm.ChatMessage(role="user", content=[advanced])
            await agent.on_user_turn_completed(context, message)
            assert events[-1]["type"] == "level" and events[-1]["estimate"] in ("B1", "B2", "C1")
            assert events[-1]["level"] == ("A1" if turn < 2 else "A2")  # one step, on evidence
            # This turn's reply is asked with the level's prompt; nothing joins the history.
            assert [item.id for item in context.items] == items
            system = [m for m in context.messages() if m.role == "system"]
            assert [m.text_content for m in system] == [agent.instructions]
        a2 = POLICIES["A2"]
        assert agent.level == "A2" and "(A2)" in agent.instructions
        assert (llm_.max_tokens, tts.speed) == (a2.max_tokens, a2.tts_speed)
        endpointing = session.options.endpointing
        assert (endpointing["min_delay"], endpointing["max_delay"]) == (
            a2.min_endpointing_delay_s,
            a2.max_endpointing_delay_s,
        )
