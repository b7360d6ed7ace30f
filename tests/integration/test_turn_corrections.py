"""A turn's correction at the server's doors (parle/turn.py): PARLE's rules steer the reply
they find an error in, the grammar checker's answer arrives while the reply is written and
steers the next one, one correction event per turn whatever its sources, and a checker that
fails or hangs costs the turn nothing. Instant engines, a scripted LLM and a scripted checker
(LanguageTool itself: test_languagetool.py; the real server with it: tests/e2e/
test_corrections_cpu.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets

from tests.doubles.clients import receive_turn
from tests.doubles.grammar import ScriptedChecker, match_of
from tests.doubles.stack import REPLY, Stack, make_stack

CHECKED = "Nós sobe a montanha todo domingo."  # an error PARLE's rules do not know


@pytest.fixture
def checker() -> ScriptedChecker:
    found = match_of(CHECKED, "Nós sobe", "Nós subimos", rule="GENERAL_VERB_AGREEMENT_ERRORS")
    return ScriptedChecker({CHECKED: [found]}, delay_s=0.05)


@pytest.fixture
def stack(checker: ScriptedChecker) -> Iterator[Stack]:
    with make_stack(llm_delay=0.01, grammar_checker=checker) as stack:
        yield stack


async def typed_turns(stack: Stack, *texts: str, **config: Any) -> list[list[dict[str, Any]]]:
    turns = []
    async with websockets.connect(stack.ws_url) as ws:
        await ws.recv()
        if config:
            await ws.send(json.dumps({"type": "config", **config}))
            await ws.recv()
        for text in texts:
            await ws.send(json.dumps({"type": "text", "text": text}))
            messages, _ = await receive_turn(ws)
            turns.append(messages)
    return turns


def corrections(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in messages if m["type"] == "correction"]


def last_system(request: dict[str, Any]) -> str:
    message = request["messages"][-1]
    assert message["role"] == "system"
    return str(message["content"])


async def test_a_rules_error_steers_this_reply_and_is_the_turns_one_correction(
    stack: Stack,
) -> None:
    (turn,) = await typed_turns(stack, "Eu tem vinte anos.", level="A1")
    (correction,) = corrections(turn)
    assert correction["original"] == "Eu tem" and correction["corrected"] == "Eu tenho"
    assert correction["kind"] == "agreement" and correction["explanation"]
    hint = last_system(stack.llm.requests[-1])
    assert "«Eu tenho»" in hint and "sem falar de gramática" in hint  # A1: a recast
    assert turn[-1]["type"] == "complete" and turn[-1]["response"] == "".join(REPLY)


async def test_the_checkers_error_is_corrected_and_steers_the_next_reply_only(
    stack: Stack, checker: ScriptedChecker
) -> None:
    first, second, third = await typed_turns(
        stack, CHECKED, "Eu gosto de montanhas.", "E você?", level="B1"
    )
    (correction,) = corrections(first)
    assert correction["original"] == "Nós sobe" and correction["corrected"] == "Nós subimos"
    assert checker.texts[0] == CHECKED
    requests = stack.llm.requests[-3:]
    # The first reply was written before the checker answered: it had no hint.
    assert requests[0]["messages"][-1]["content"].startswith("(Nível")
    hint = last_system(requests[1])
    assert "Na fala anterior" in hint and "«Nós subimos»" in hint
    assert "Diga com gentileza" in hint  # B1: explicit
    assert requests[2]["messages"][-1]["content"].startswith("(Nível")
    # Hints are never part of the history the next requests carry.
    assert not any("Correção" in m["content"] for m in requests[2]["messages"][:-1])
    assert corrections(second) == corrections(third) == []


async def test_with_the_llms_block_too_the_turn_still_has_one_correction(stack: Stack) -> None:
    block = (
        '<correcao>{"original": "eu tem", "corrected": "eu tenho", "explanation": "x", '
        '"kind": "grammar"}</correcao>'
    )
    stack.llm.tokens = [*REPLY, " ", block]
    (turn,) = await typed_turns(stack, "Eu tem vinte anos.")
    (correction,) = corrections(turn)  # the rules and the LLM agree: one correction
    assert correction["corrected"].lower() == "eu tenho"
    stack.llm.tokens = [*REPLY, " ", block.replace("eu tem", "de café")]
    (turn,) = await typed_turns(stack, "Eu gosto de café.")
    (correction,) = corrections(turn)  # nobody else found anything: the LLM's own
    assert correction["original"] == "de café"
    # A block quoting words the learner never said corrects nothing of theirs.
    stack.llm.tokens = [*REPLY, " ", block.replace("eu tem", "vinte anos")]
    (turn,) = await typed_turns(stack, "Eu gosto de café.")
    assert corrections(turn) == []


@pytest.mark.parametrize("fails", [True, False])
async def test_a_failing_or_hanging_checker_costs_the_turn_nothing(
    fails: bool, checker: ScriptedChecker
) -> None:
    checker.fails = fails
    # A slow checker (the real client cuts a hanging one at its `timeout_s`, as a failure) is
    # waited for only after the reply: a later `complete`, never a lost turn.
    checker.delay_s = 0.0 if fails else 0.5
    with make_stack(grammar_checker=checker) as stack:
        turn, again = await typed_turns(stack, "Eu tem vinte anos.", "Eu gosto de café.")
        assert turn[-1]["type"] == again[-1]["type"] == "complete"
        assert [c["corrected"] for c in corrections(turn)] == ["Eu tenho"]
        async with httpx.AsyncClient(base_url=stack.url) as client:
            ready = (await client.get("/ready")).json()
            metrics = (await client.get("/metrics")).text
    if fails:
        assert ready["grammar"] == "down"
        assert "parle_grammar_failures_total 2.0" in metrics
        assert "parle_grammar_down 1.0" in metrics
    else:
        assert ready["grammar"] == "languagetool"
        assert "parle_grammar_down 0.0" in metrics


@pytest.mark.parametrize(("grammar", "found"), [("off", []), ("rules", ["Eu tenho"])])
async def test_grammar_off_and_rules_only(grammar: str, found: list[str]) -> None:
    with make_stack(grammar=grammar) as stack:
        (turn,) = await typed_turns(stack, "Eu tem vinte anos.")
        assert [c["corrected"] for c in corrections(turn)] == found
        async with httpx.AsyncClient(base_url=stack.url) as client:
            assert (await client.get("/ready")).json()["grammar"] == grammar


async def test_a_correct_sentence_has_no_correction_and_no_hint(stack: Stack) -> None:
    (turn,) = await typed_turns(stack, "Eu trabalho como enfermeira e gosto de praia.")
    assert corrections(turn) == []
    assert stack.llm.requests[-1]["messages"][-1]["content"].startswith("(Nível")


async def test_the_realtime_door_sends_the_turns_one_correction(stack: Stack) -> None:
    from tests.integration.test_realtime import connect

    async with connect(stack) as client:
        await client.until("session.created")
        await client.type_text("Eu tem vinte anos.")
        await client.send("response.create")
        done = await client.until("response.done")
    (correction,) = client.of("parle.correction")
    assert (correction["original"], correction["corrected"]) == ("Eu tem", "Eu tenho")
    assert correction["response_id"] == done["response"]["id"]
    assert client.types().index("parle.correction") < client.types().index("response.done")
