"""The tutor's prompts, asserted on their properties rather than on whole snapshots."""

from __future__ import annotations

import pytest

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
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "system"]
    assert messages[3]["content"] == "Tudo bem."
    assert "Responda só em português do Brasil" in messages[-1]["content"]
    assert "B1" in messages[-1]["content"] and "(B1)" in messages[0]["content"]
