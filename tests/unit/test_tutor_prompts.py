"""The tutor's prompts, asserted on their properties rather than on whole snapshots."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest

from parle.engines.base import ChatMessage
from parle.testing import InstantSynthesizer, InstantTranscriber, ScriptedChatModel
from parle.turn import TurnPipeline
from parle.tutor.corrections import MARKERS
from parle.tutor.levels import LEVELS
from parle.tutor.prompts import build_messages, system_prompt, turn_reminder


@pytest.mark.parametrize("level", LEVELS)
def test_every_level_gets_the_spoken_style_and_its_own_rules(level: str) -> None:
    prompt = system_prompt(level)
    assert f"({level})" in prompt
    for rule in ("sem markdown", "sem listas", "sem emojis", "três frases", "pergunta"):
        assert rule in prompt
    assert "no máximo um erro" in prompt and MARKERS[0] in prompt
    assert prompt == system_prompt(level)  # byte-identical: the prefix cache hits


def test_correction_style_follows_the_level() -> None:
    assert "sem falar de gramática" in system_prompt("A1")
    assert "pista" in system_prompt("A2")
    assert "explícita" in system_prompt("B1")
    for level in ("B2", "C1", "C2"):
        assert "nota gramatical" in system_prompt(level)
    assert "presente" in system_prompt("A1") and "subjuntivo" in system_prompt("B2")


def test_region_changes_vocabulary_and_the_reminder() -> None:
    assert "ônibus" in system_prompt("A2", "BR") and "autocarro" not in system_prompt("A2", "BR")
    assert "autocarro" in system_prompt("A2", "PT")
    assert "Brasil" in turn_reminder("A2", "BR") and "Portugal" in turn_reminder("A2", "PT")


def test_messages_pin_the_language_every_turn() -> None:
    history = [
        {"role": "user", "content": "Oi"},
        {"role": "assistant", "content": "Olá! Tudo bem?"},
    ]
    messages = build_messages(history, "Tudo bem.", level="b1")  # type: ignore[arg-type]
    roles = ["system", "user", "system", "assistant", "user", "system"]
    assert [m["role"] for m in messages] == roles
    assert messages[4]["content"] == "Tudo bem."
    assert messages[2] == messages[-1]  # the reminder stays after the history's words too
    assert "Responda só em português do Brasil" in messages[-1]["content"]
    assert "B1" in messages[-1]["content"] and "(B1)" in messages[0]["content"]


def encoded(messages: Sequence[ChatMessage]) -> bytes:
    return json.dumps(list(messages), ensure_ascii=False).encode()


async def test_sessions_at_one_level_send_byte_identical_prefixes() -> None:
    chat = ScriptedChatModel(["Muito bem!", " E você?"])
    pipeline = TurnPipeline(InstantTranscriber(), chat, InstantSynthesizer(), level="B1")
    learners = {"ana": ["Oi!", "Eu moro em Lisboa."], "rui": ["Bom dia.", "Gosto de café."]}
    for session, utterances in learners.items():
        for text in utterances:
            async for _ in pipeline.run_text(text, session=session):
                pass
    ana_1, ana_2, rui_1, rui_2 = chat.requests
    # Two learners at one level: the same system prompt, byte for byte.
    assert encoded(ana_1[:1]) == encoded(rui_1[:1]) == encoded(ana_2[:1]) == encoded(rui_2[:1])
    assert ana_1[0]["content"] == system_prompt("B1")
    # A session's next request starts with its whole previous one, then the reply to it: the
    # server's cache (that request and the reply it generated) covers everything before the
    # learner's new words.
    assert encoded(ana_2[: len(ana_1)]) == encoded(ana_1)
    assert encoded(rui_2[: len(rui_1)]) == encoded(rui_1)
    assert ana_2[len(ana_1)] == {"role": "assistant", "content": "Muito bem! E você?"}
    reminder: ChatMessage = {"role": "system", "content": turn_reminder("B1")}
    for request in chat.requests:
        assert request[-1] == reminder and request[-2]["role"] == "user"
        users = sum(m["role"] == "user" for m in request)
        assert request.count(reminder) == users  # after each of the learner's messages
