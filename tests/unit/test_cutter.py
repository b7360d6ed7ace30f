from __future__ import annotations

import pytest

from parle.cutter import SentenceCutter, clean_for_speech


def cut_streamed(text: str, step: int = 1, **kwargs: int) -> list[str]:
    """Cut `text` fed `step` characters at a time; no word-count cut unless asked for."""
    kwargs.setdefault("first_max_words", 0)
    cutter = SentenceCutter(**kwargs)
    pieces: list[str] = []
    for i in range(0, len(text), step):
        pieces += cutter.push(text[i : i + step])
    return pieces + cutter.flush()


@pytest.mark.parametrize("step", [1, 3, 1000])
def test_sentences_are_cut_whatever_the_token_size(step: int) -> None:
    text = "Muito bem! Você mora em São Paulo? Eu moro no Rio. "
    assert cut_streamed(text, step) == ["Muito bem!", "Você mora em São Paulo?", "Eu moro no Rio."]


def test_first_piece_may_end_at_a_clause_once_long_enough() -> None:
    text = "Que legal que você gosta de café, eu também gosto muito, sabia? Sim."
    pieces = cut_streamed(text)
    assert pieces[0] == "Que legal que você gosta de café,"
    # later pieces wait for a sentence end
    assert pieces[1] == "eu também gosto muito, sabia?"


def test_short_clause_does_not_make_a_first_piece() -> None:
    assert cut_streamed("Olá, Ana, tudo bem com você hoje? Sim.")[0] == (
        "Olá, Ana, tudo bem com você hoje?"
    )


@pytest.mark.parametrize(
    "text",
    [
        "O Sr. Silva e a Dra. Souza chegaram. ",
        "Fale com o Prof. Lima amanhã. ",
        "Custa 3.50 reais por quilo. ",
        "A Av. Paulista é famosa. ",
    ],
)
def test_abbreviations_and_decimals_do_not_end_sentences(text: str) -> None:
    assert cut_streamed(text, first_min_chars=1000) == [text.strip()]


def test_ellipsis_ends_a_sentence_only_before_a_capital() -> None:
    assert cut_streamed("Bem... eu acho que sim. Então... Vamos lá. ", first_min_chars=1000) == [
        "Bem... eu acho que sim.",
        "Então...",
        "Vamos lá.",
    ]


def test_closing_quotes_stay_with_their_sentence() -> None:
    assert cut_streamed('Ele disse "obrigado." Depois saiu. ', first_min_chars=1000) == [
        'Ele disse "obrigado."',
        "Depois saiu.",
    ]


def test_markdown_and_emoji_are_not_spoken() -> None:
    text = "**Muito bem!** 😀 Veja:\n- *casa* é `house`\n- [livro](http://x.y) é book. 👍"
    pieces = cut_streamed(text, first_min_chars=1000)
    spoken = " ".join(pieces)
    for mark in ("*", "`", "😀", "👍", "http", "[", "- "):
        assert mark not in spoken
    assert pieces[0] == "Muito bem!"
    assert "casa é house" in spoken and "livro é book." in spoken


def test_unspeakable_pieces_are_dropped() -> None:
    assert cut_streamed("😀😀. ... !!! ") == []


def test_runaway_text_without_punctuation_is_cut() -> None:
    words = " ".join(["palavra"] * 80)
    pieces = cut_streamed(words, max_chars=100)
    assert all(len(p) <= 100 for p in pieces)
    assert " ".join(pieces) == words


def test_clean_for_speech_collapses_whitespace() -> None:
    assert clean_for_speech("  # Título\n\nTexto   aqui ") == "Título Texto aqui"


def test_first_piece_without_any_boundary_is_cut_after_some_words() -> None:
    text = "O mesmo está o nome de Ana e eu sou dos Estados Unidos. Muito prazer e bem-vinda. "
    assert cut_streamed(text, first_max_words=6) == [
        "O mesmo está o nome de",
        "Ana e eu sou dos Estados Unidos.",
        "Muito prazer e bem-vinda.",
    ]
    assert cut_streamed(text)[0] == ("O mesmo está o nome de Ana e eu sou dos Estados Unidos.")


def test_default_first_piece_is_three_words_at_most() -> None:
    cutter = SentenceCutter()
    assert cutter.push("Eu acho que você fala muito bem ") == ["Eu acho que"]
