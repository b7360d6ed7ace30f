"""The spoken-command grammar (what fires, and what must not), the scenario catalogue, and a
lesson's state: speed steps, the closing recap."""

from __future__ import annotations

import pytest

from parle.tutor.commands import Command, match_command, speed_of, translation_hint
from parle.tutor.corrections import Correction
from parle.tutor.lesson import Lesson, recap
from parle.tutor.scenarios import UnknownScenarioError, get_scenario, parse_scenario, scenarios

COMMANDS = {
    "slower": [
        "Mais devagar, por favor.",
        "mais de vagar",  # Whisper's split
        "Pode falar mais devagar?",
        "Você pode falar um pouco mais devagar?",
        "Devagar, professora!",
        "Slower, please.",
        "Can you speak more slowly?",
        "Slow down.",
    ],
    "faster": ["Mais rápido!", "Pode falar mais rápido?", "Faster, please."],
    "repeat": [
        "Repete.",
        "Repete, por favor.",
        "Pode repetir?",
        "Você pode repetir, por favor?",
        "Repita isso.",
        "De novo!",
        "Fala de novo.",
        "Repeat.",
        "Could you repeat that?",
        "Say that again, please.",
        "Hum... repete?",
    ],
    "translate": [
        "Em inglês?",
        "Como é em inglês?",
        "Tradução.",
        "Traduz, por favor.",
        "Pode traduzir?",
        "Translate.",
        "Translate that, please.",
        "In English?",
        "What does that mean?",
    ],
    "end": [
        "Terminar.",
        "Vamos terminar a aula.",
        "Acabou a aula!",
        "Por hoje é só.",
        "That's all.",
        "That's all for today.",
        "Tchau!",
        "Obrigada, tchau!",
        "Até logo, professora!",
        "Goodbye.",
    ],
}
LEVELS = {
    "Mudar para o nível B1.": "B1",
    "Muda pro nível B2": "B2",
    "Nível B1": "B1",
    "nível bê um": "B1",
    "Mudar para o nível B-1.": "B1",
    "Quero mudar para o nível A2, por favor.": "A2",
    "Level C1.": "C1",
    "Switch to level b one.": "B1",
}
# Ordinary sentences that merely contain a command's words.
TALK = [
    "Eu falo mais devagar quando estou cansado.",
    "O ônibus anda devagar.",
    "Eu gosto de repetir as palavras novas.",
    "Repeti o ano na escola.",
    "Meu nível de inglês é B1.",
    "O nível B1 é difícil.",
    "Eu estudo tradução na faculdade.",
    "Eu falo em inglês no trabalho.",
    "Em inglês a gente diz diferente.",
    "Eu vou terminar o trabalho amanhã.",
    "A aula de ontem acabou tarde.",
    "Eu disse tchau para a minha mãe.",
    "Oi de novo!",
    "Acabou.",
    "Obrigado!",
    "Por favor.",
    "Ok.",
    "Como você está?",
    "That's all I know about Brazil.",
    "I want to speak slower Portuguese.",
    "Mais um café, por favor.",
    "",
]


@pytest.mark.parametrize(
    ("text", "kind"), [(t, kind) for kind, texts in COMMANDS.items() for t in texts]
)
def test_commands_are_recognized(text: str, kind: str) -> None:
    assert match_command(text) == Command(kind)  # type: ignore[arg-type]


@pytest.mark.parametrize(("text", "level"), LEVELS.items())
def test_level_commands_name_the_level(text: str, level: str) -> None:
    assert match_command(text) == Command("level", level)


@pytest.mark.parametrize("text", TALK)
def test_ordinary_sentences_are_not_commands(text: str) -> None:
    assert match_command(text) is None


def test_level_spellings_and_levels_that_do_not_exist() -> None:
    assert match_command("nível C3") is None  # no such digit in the grammar
    assert match_command("nível A dois") == Command("level", "A2")


def test_speed_steps_stay_within_bounds() -> None:
    assert speed_of(0.9, -1) == 0.8
    assert speed_of(0.9, -10) == 0.6 and speed_of(1.0, 10) == 1.4
    lesson = Lesson()
    assert lesson.step(0.7, -1) and lesson.speed(0.7) == 0.6
    assert not lesson.step(0.7, -1) and lesson.speed_steps == -1  # already the slowest


def test_translation_hint_is_one_sentence() -> None:
    assert translation_hint('"Did you like it? I did."') == "Em inglês: Did you like it?"


def test_scenarios_ship_and_parse() -> None:
    catalogue = scenarios()
    assert len(catalogue) >= 6
    cafe = get_scenario("NO-CAFE ")
    assert cafe.suits("A2") and not cafe.suits("C1")
    with pytest.raises(UnknownScenarioError) as error:
        get_scenario("lua")
    assert error.value.code == "bad_scenario"
    with pytest.raises(ValueError, match="levels"):
        parse_scenario("id: x\ntitle: X\nlevels: [B2, A1]\n")
    with pytest.raises(ValueError, match="goals"):
        parse_scenario(
            "id: x\ntitle: X\nlevels: [A1, A2]\nsetting: s\nrole: r\ngoals: []\n"
            "vocabulary: [a]\nopener: o\ncloser: c\n"
        )


def test_lesson_start_and_end_with_a_recap() -> None:
    lesson, notes = Lesson(), {"learner": "Ana"}
    assert lesson.wants("no-cafe")
    lesson.start("no-cafe", notes)
    assert not lesson.wants("no-cafe") and "Seu Carlos" in notes["scenario"]
    for i in range(5):
        lesson.record(Correction(f"errado {i}", f"certo {i}", "", "grammar"))
    closing = lesson.end(notes)
    assert closing.startswith(get_scenario("no-cafe").closer)
    assert "em vez de errado 4, diga certo 4" in closing and "errado 1" not in closing
    assert notes == {"learner": "Ana"} and lesson.corrections == []
    assert "nenhuma correção" in recap([])


def test_the_phone_keypad_keys_are_spoken_commands() -> None:
    from parle.tutor.commands import KEYPAD_HINT, keypad_command

    kinds = {key: match_command(keypad_command(key) or "") for key in "1230"}
    assert {key: c.kind for key, c in kinds.items() if c is not None} == {
        "1": "repeat", "2": "slower", "3": "faster", "0": "end",
    }  # fmt: skip
    assert all(keypad_command(key) is None for key in "456789*#")
    assert all(f"{key} " in KEYPAD_HINT for key in "1230")
