"""`TutorAgent` in a real `AgentSession` (text mode, no room) with `ParleLLM` talking to a
scripted OpenAI-compatible server: corrections never reach speech, level events go out, the
learner's level steers the prompt, the reply length, the speed and the endpointing, and the
learner's errors (PARLE's rules, a grammar checker double, the LLM's block) make one
correction per spoken turn, steering this reply or the next."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from livekit.agents import AgentSession, llm
from livekit.agents.voice.audio_recognition import (
    _EndOfTurnInfo,
    _EndOfTurnMetrics,
    _PreemptiveGenerationInfo,
)

from agent import worker
from agent.plugins import ParleLLM, ParleTTS
from agent.tutor import TutorAgent
from harness.scripted_llm import ScriptedLlmServer
from parle.config import Settings
from parle.engines.base import GrammarMatch
from parle.engines.languagetool import LanguageToolChecker
from parle.errors import GrammarUnavailableError
from parle.tutor import grammar, learner_errors
from parle.tutor.grammar import correction_hint
from parle.tutor.levels import POLICIES
from parle.tutor.prompts import turn_reminder

BLOCK = (
    '<correcao>{"original": "Eu vai na praia", "corrected": "Eu fui à praia", '
    '"explanation": "passado de ir", "kind": "tense"}</correcao>'
)
REPLY = ["Que legal!", " Você foi", " à praia", " ontem?", " <corr", BLOCK[5:]]


def collector(events: list[dict[str, Any]]) -> Callable[[dict[str, Any]], Awaitable[None]]:
    """A `TutorAgent` publisher that keeps what the tutor sends on `parle.tutor`."""

    async def publish(event: dict[str, Any]) -> None:
        events.append(event)

    return publish


@pytest.fixture
def llm_server() -> Iterator[ScriptedLlmServer]:
    server = ScriptedLlmServer(REPLY).start()
    yield server
    server.stop()


async def test_tutor_answers_without_the_correction_and_publishes_it(
    llm_server: ScriptedLlmServer,
) -> None:
    events: list[dict[str, Any]] = []
    publish = collector(events)

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
    # The language is pinned after the learner's words, then the error PARLE's rules found
    # ("Eu vai ... ontem") steers the reply: in the request only.
    [rule] = learner_errors.find("Eu vai na praia ontem com a minha família.", level="A1")
    assert messages[-3:] == [
        {"role": "user", "content": "Eu vai na praia ontem com a minha família."},
        {"role": "system", "content": turn_reminder("A1")},
        {"role": "system", "content": correction_hint(rule, POLICIES["A1"].correction)},
    ]
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
    publish = collector(events)

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


# --- The learner's errors: PARLE's rules, the grammar checker and the LLM's block -------------
#
# Spoken turns reach the agent as the framework's audio recognition reports them (an early
# transcript, then the end of the turn): only a spoken turn goes through
# `on_user_turn_completed`, where the rules and the checker start.

HAVE = "Eu tem vinte anos."
# The LLM's block on the same error, quoting the learner's words as it heard them.
HAVE_BLOCK = (
    '<correcao>{"original": "Eu tem 20 anos", "corrected": "Eu tenho 20 anos", '
    '"explanation": "verbo ter", "kind": "grammar"}</correcao>'
)
# An error PARLE's rules do not know ("subir" is not in their tables): the checker's alone.
WE_GO = "Nós sobe a montanha todo domingo."
WE_GO_MATCH = GrammarMatch(
    offset=WE_GO.index("sobe"),
    length=len("sobe"),
    replacements=("subimos",),
    message="Com <suggestion>nós</suggestion>, o verbo fica na 1ª pessoa do plural.",
    rule="GENERAL_VERB_AGREEMENT_ERRORS",
    category="GRAMMAR",
)
PLAIN = ["Que legal!", " E depois?"]  # a reply without a correction block
BEACH_BLOCK = (
    '<correcao>{"original": "de praia", "corrected": "da praia", '
    '"explanation": "de + a = da", "kind": "preposition"}</correcao>'
)


class HeldChecker:
    """A `GrammarChecker` double that finds `matches[text]` once `answer` is set (the test
    chooses how late the checker answers), or fails as LanguageTool does when it is down.

    The real LanguageTool, on its HTTP server, is tested in
    tests/integration/test_languagetool.py; here only when it answers, and what, matters."""

    def __init__(
        self,
        matches: dict[str, list[GrammarMatch]] | None = None,
        *,
        answer: asyncio.Event | None = None,
        down: bool = False,
    ) -> None:
        self.matches = matches or {}
        self.answer = answer
        self.down = down
        self.checked: list[str] = []
        self.cancelled = 0

    async def check(self, text: str) -> list[GrammarMatch]:
        self.checked.append(text)
        try:
            if self.answer is not None:
                await self.answer.wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        if self.down:
            raise GrammarUnavailableError("LanguageTool cannot be reached (ConnectError).")
        return list(self.matches.get(text, []))

    async def aclose(self) -> None:
        pass


async def wait_until(predicate: Callable[[], bool], within_s: float = 10.0) -> None:
    deadline = time.monotonic() + within_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


def replies_in(agent: TutorAgent) -> list[str]:
    return [
        (m.text_content or "").strip() for m in agent.chat_ctx.messages() if m.role == "assistant"
    ]


def answered(requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per learner turn, the last LLM request made for it (a preemptive request that was
    thrown away comes before it)."""
    by_turn: dict[int, dict[str, Any]] = {}
    for request in requests:
        by_turn[sum(1 for m in request["messages"] if m["role"] == "user")] = request
    return [by_turn[turn] for turn in sorted(by_turn)]


async def speak(
    session: AgentSession[Any],
    agent: TutorAgent,
    server: ScriptedLlmServer,
    text: str,
    *,
    preemptive: bool = True,
    wait: bool = True,
) -> None:
    """The learner says `text`, as the framework's audio recognition reports a spoken turn,
    without the audio: an early transcript first (`preemptive`: the framework generates the
    reply preemptively, written here before the turn ends), then the end of the turn. Returns
    once the reply is in the conversation (`wait`), else once its LLM request is sent."""
    activity: Any = session._activity
    await wait_until(lambda: session.current_speech is None)
    said, written = len(replies_in(agent)), len(agent._replies)
    if preemptive:
        activity.on_preemptive_generation(
            _PreemptiveGenerationInfo(
                new_transcript=text, transcript_confidence=1.0, started_speaking_at=None
            )
        )
        await wait_until(lambda: len(agent._replies) > written)  # written before the turn ends
    requests = len(server.requests)
    activity.on_end_of_turn(
        _EndOfTurnInfo(
            skip_reply=False,
            new_transcript=text,
            transcript_confidence=1.0,
            metrics=_EndOfTurnMetrics(None, None, None, None),
        )
    )
    if wait:
        await wait_until(lambda: len(replies_in(agent)) > said)
    else:
        await wait_until(lambda: len(server.requests) > requests)


def correction_events(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == "correction"]


def corrections_sent(agent: TutorAgent) -> bool:
    return not agent._correcting  # no reply's correction still on its way


REMINDER_A1 = {"role": "system", "content": turn_reminder("A1")}


async def test_a_rules_error_steers_its_own_reply_and_one_correction_is_sent(
    llm_server: ScriptedLlmServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="livekit.agents")
    events: list[dict[str, Any]] = []
    publish = collector(events)

    # All three sources see the same error: one correction goes out, the rules' own (the
    # preferred source).
    llm_server.tokens = ["Que bom!", " Eu tenho", " trinta.", " " + HAVE_BLOCK]
    have = GrammarMatch(3, 3, ("tenho",), "Verbo.", "GENERAL_VERB_AGREEMENT_ERRORS", "GRAMMAR")
    checker = HeldChecker({HAVE: [have]})
    agent = TutorAgent(level="A1", publish=publish, greeting="Olá!", grammar=checker)
    async with AgentSession(llm=ParleLLM(base_url=llm_server.url)) as session:
        await session.start(agent)
        await speak(session, agent, llm_server, HAVE)
        await wait_until(lambda: bool(correction_events(events)) and corrections_sent(agent))
        assert replies_in(agent) == ["Olá!", "Que bom! Eu tenho trinta."]
        history = [m.text_content for m in agent.chat_ctx.messages()]
    assert checker.checked == [HAVE]
    [rule] = learner_errors.find(HAVE, level="A1")
    assert correction_events(events) == [
        {
            "type": "correction",
            "original": "Eu tem",
            "corrected": "Eu tenho",
            "explanation": rule.correction.explanation,
            "kind": "agreement",
        }
    ]
    # The reply generated preemptively, before the turn ended, had the hint last, after the
    # reminder (the rules take microseconds: every request gets it), and was the one kept.
    (answered,) = llm_server.requests
    hint = {"role": "system", "content": correction_hint(rule, POLICIES["A1"].correction)}
    assert answered["messages"][-3:] == [{"role": "user", "content": HAVE}, REMINDER_A1, hint]
    assert any("using preemptive generation" in r.message for r in caplog.records)
    # In the request only: the conversation never holds it.
    assert hint["content"] not in history
    assert agent.written_reply("Que bom! Eu tenho trinta.") == (
        "Que bom! Eu tenho trinta.",
        rule.correction,
    )
    assert agent.corrections == [rule.correction]


async def test_the_checkers_late_error_is_sent_after_the_reply_and_steers_the_next(
    llm_server: ScriptedLlmServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="livekit.agents")
    events: list[dict[str, Any]] = []
    publish = collector(events)

    answer = asyncio.Event()
    checker = HeldChecker({WE_GO: [WE_GO_MATCH]}, answer=answer)
    llm_server.tokens = list(PLAIN)
    agent = TutorAgent(level="A1", publish=publish, greeting="Olá!", grammar=checker)
    async with AgentSession(llm=ParleLLM(base_url=llm_server.url)) as session:
        await session.start(agent)
        # No error the rules know: the reply generated preemptively is the one spoken, and
        # its speech ends while the checker has not answered yet.
        await speak(session, agent, llm_server, WE_GO)
        assert len(llm_server.requests) == 1
        assert any("using preemptive generation" in r.message for r in caplog.records)
        await wait_until(lambda: session.current_speech is None)
        assert correction_events(events) == []
        answer.set()
        await wait_until(lambda: bool(correction_events(events)))
        [found] = grammar.from_checker(WE_GO, [WE_GO_MATCH])
        assert correction_events(events) == [{"type": "correction", **found.correction.as_dict()}]
        assert found.correction.original == "sobe" and found.correction.corrected == "subimos"
        assert agent.written_reply("".join(PLAIN)) == ("".join(PLAIN), found.correction)

        # The next reply corrects it (the previous utterance's error), and only that one.
        await speak(session, agent, llm_server, "Eu gosto de filmes de ação.")
        await speak(session, agent, llm_server, "Eu gosto de pipoca.")
        await wait_until(lambda: corrections_sent(agent))
        history = [m.text_content for m in agent.chat_ctx.messages()]
    earlier = correction_hint(found, POLICIES["A1"].correction, earlier=True)
    assert "Na fala anterior" in earlier
    second, third = answered(llm_server.requests)[1:]
    assert second["messages"][-2:] == [REMINDER_A1, {"role": "system", "content": earlier}]
    assert third["messages"][-1] == REMINDER_A1
    assert all(m["content"] != earlier for m in third["messages"])
    assert earlier not in history
    assert len(correction_events(events)) == 1
    assert checker.checked == [WE_GO, "Eu gosto de filmes de ação.", "Eu gosto de pipoca."]


async def test_a_checker_that_is_down_never_disturbs_the_turn(
    llm_server: ScriptedLlmServer,
) -> None:
    events: list[dict[str, Any]] = []
    publish = collector(events)

    checker = HeldChecker(down=True)
    agent = TutorAgent(level="A1", publish=publish, greeting="Olá!", grammar=checker)
    async with AgentSession(llm=ParleLLM(base_url=llm_server.url)) as session:
        await session.start(agent)
        llm_server.tokens = list(PLAIN)
        await speak(session, agent, llm_server, HAVE)  # the rules' error
        await wait_until(lambda: corrections_sent(agent))
        llm_server.tokens = ["Que legal!", " Você gosta", " do mar?", " " + BEACH_BLOCK]
        await speak(session, agent, llm_server, "Eu gosto muito de praia.")  # the LLM's error
        await wait_until(lambda: corrections_sent(agent))
        assert replies_in(agent) == ["Olá!", "".join(PLAIN), "Que legal! Você gosta do mar?"]
    assert [(e["original"], e["corrected"]) for e in correction_events(events)] == [
        ("Eu tem", "Eu tenho"),
        ("de praia", "da praia"),
    ]
    assert agent.grammar_health.failures == 2 and agent.grammar_health.down


async def test_a_correct_sentence_gets_no_correction_and_no_hint(
    llm_server: ScriptedLlmServer,
) -> None:
    events: list[dict[str, Any]] = []
    publish = collector(events)

    checker = HeldChecker()
    llm_server.tokens = list(PLAIN)
    agent = TutorAgent(level="A1", publish=publish, greeting="Olá!", grammar=checker)
    async with AgentSession(llm=ParleLLM(base_url=llm_server.url)) as session:
        await session.start(agent)
        await speak(session, agent, llm_server, "Eu tenho vinte anos.")
        await speak(session, agent, llm_server, "Eu moro em Lisboa.")
        await wait_until(lambda: corrections_sent(agent))
    assert correction_events(events) == []
    assert checker.checked == ["Eu tenho vinte anos.", "Eu moro em Lisboa."]
    assert all(r["messages"][-1] == REMINDER_A1 for r in llm_server.requests)
    assert agent.written_reply("".join(PLAIN)) == ("".join(PLAIN), None)


async def test_a_reply_interrupted_before_it_is_written_sends_nothing(
    llm_server: ScriptedLlmServer,
) -> None:
    events: list[dict[str, Any]] = []
    publish = collector(events)

    checker = HeldChecker({HAVE: []}, answer=asyncio.Event())  # never answers
    agent = TutorAgent(level="A1", publish=publish, greeting="Olá!", grammar=checker)
    async with AgentSession(llm=ParleLLM(base_url=llm_server.url)) as session:
        await session.start(agent)
        llm_server.tokens = list(REPLY)
        llm_server.delay_s = 0.3  # the learner barges in while it is being written
        await speak(session, agent, llm_server, HAVE, preemptive=False, wait=False)
        await session.interrupt()
        await wait_until(lambda: checker.cancelled == 1)
        await wait_until(lambda: corrections_sent(agent))
    assert correction_events(events) == []
    assert agent.corrections == []


def test_the_worker_gives_the_tutor_languagetool_only_when_asked() -> None:
    checker = worker.grammar_checker(
        Settings(grammar="languagetool", grammar_url="http://127.0.0.1:8099/v2", region="PT")
    )
    assert isinstance(checker, LanguageToolChecker)
    assert (checker.url, checker.language) == ("http://127.0.0.1:8099/v2", "pt-PT")
    assert worker.grammar_checker(Settings(grammar="rules")) is None
    assert worker.grammar_checker(Settings(grammar="off")) is None
