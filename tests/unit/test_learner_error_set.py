"""The labelled learner-error set (tests/data/learner_errors/README.md): its lines are well
formed, its labels point at real words, and its two halves have the same make-up."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

DATA = Path(__file__).parents[1] / "data" / "learner_errors"
HALVES = {"dev": "d", "dev2": "e", "heldout": "h"}
LEVELS = {"A1", "A2", "B1", "B2", "C1"}
VARIETIES = {"BR", "PT"}
KINDS = {"agreement", "tense", "preposition", "ser_estar", "article", "vocabulary", "grammar"}
LINE_FIELDS = {"id", "level", "text", "variety", "errors"}
ERROR_FIELDS = {"original", "corrected", "kind"}


def _load(half: str) -> list[dict[str, Any]]:
    lines = (DATA / f"{half}.jsonl").read_text("utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


@pytest.fixture(scope="module")
def halves() -> dict[str, list[dict[str, Any]]]:
    return {half: _load(half) for half in HALVES}


def _has_proper_name(text: str) -> bool:
    """A capitalised word that does not open a sentence (PARLE's transcripts capitalise only
    sentence starts and names)."""
    words = text.split()
    return any(
        word[0].isupper() and not re.search(r"[.!?]$", words[i - 1])
        for i, word in enumerate(words)
        if i > 0
    )


@pytest.mark.parametrize("half", list(HALVES))
def test_every_line_is_well_formed(half: str) -> None:
    for number, line in enumerate((DATA / f"{half}.jsonl").read_text("utf-8").splitlines(), 1):
        row = json.loads(line)
        where = f"{half}.jsonl line {number}"
        assert set(row) == LINE_FIELDS, where
        assert re.fullmatch(HALVES[half] + r"\d{3}", row["id"]), where
        assert row["level"] in LEVELS, where
        assert row["variety"] in VARIETIES, where
        text = row["text"]
        assert isinstance(text, str) and text == text.strip(), where
        assert 4 <= len(text.split()) <= 20, where
        assert isinstance(row["errors"], list) and len(row["errors"]) <= 1, where
        for error in row["errors"]:
            assert set(error) == ERROR_FIELDS, where
            assert error["kind"] in KINDS, where
            original, corrected = error["original"], error["corrected"]
            assert original and original == original.strip(), where
            assert corrected and corrected == corrected.strip(), where
            assert original in text, f"{where}: {original!r} is not in the text"
            assert text.count(original) == 1, f"{where}: {original!r} is ambiguous"
            assert corrected != original, where


def test_ids_are_unique_and_numbered_in_order(halves: dict[str, list[dict[str, Any]]]) -> None:
    for half, rows in halves.items():
        ids = [row["id"] for row in rows]
        assert ids == [f"{HALVES[half]}{n:03d}" for n in range(1, len(rows) + 1)]
    every_id = [row["id"] for rows in halves.values() for row in rows]
    assert len(every_id) == len(set(every_id))


def test_no_sentence_is_in_both_halves(halves: dict[str, list[dict[str, Any]]]) -> None:
    texts = [row["text"] for rows in halves.values() for row in rows]
    assert len(texts) == len(set(texts))


@pytest.mark.parametrize("half", list(HALVES))
def test_composition_of_each_half(half: str, halves: dict[str, list[dict[str, Any]]]) -> None:
    rows = halves[half]
    assert len(rows) >= 40
    with_error = sum(1 for row in rows if row["errors"])
    assert 0.55 <= with_error / len(rows) <= 0.75
    hard_negatives = [
        row
        for row in rows
        if not row["errors"] and (row["variety"] == "PT" or _has_proper_name(row["text"]))
    ]
    assert len(hard_negatives) >= 5
    assert {row["level"] for row in rows} == LEVELS
    assert {row["errors"][0]["kind"] for row in rows if row["errors"]} == KINDS


def test_halves_have_the_same_mix(halves: dict[str, list[dict[str, Any]]]) -> None:
    def kinds(rows: list[dict[str, Any]]) -> Counter[str]:
        return Counter(row["errors"][0]["kind"] for row in rows if row["errors"])

    def levels(rows: list[dict[str, Any]]) -> Counter[str]:
        return Counter(row["level"] for row in rows)

    dev, heldout = halves["dev"], halves["heldout"]
    for kind in KINDS:
        assert abs(kinds(dev)[kind] - kinds(heldout)[kind]) <= 2, kind
    for level in LEVELS:
        assert abs(levels(dev)[level] - levels(heldout)[level]) <= 2, level


@pytest.mark.parametrize(
    ("half", "text", "error"),
    [
        ("dev", "Olá! Meu nome é Marta e eu mora em Porto.", ("eu mora", "eu moro", "agreement")),
        ("dev", "Eu trabalho como enfermeira e gosto de praia.", None),
        ("dev", "Ontem eu fui no mercado com minha irmã.", None),
        (
            "heldout",
            "A minha casa é muito bonito.",
            ("é muito bonito", "é muito bonita", "agreement"),
        ),
        ("heldout", "Ela é mais melhor que eu.", ("mais melhor", "melhor", "grammar")),
        ("heldout", "Eu tem vinte anos.", ("Eu tem", "Eu tenho", "agreement")),
        ("heldout", "Ontem eu vai ao cinema.", ("Ontem eu vai", "Ontem eu fui", "tense")),
    ],
)
def test_the_issues_sentences_are_labelled(
    half: str,
    text: str,
    error: tuple[str, str, str] | None,
    halves: dict[str, list[dict[str, Any]]],
) -> None:
    (row,) = [row for row in halves[half] if row["text"] == text]
    expected = (
        [] if error is None else [dict(zip(("original", "corrected", "kind"), error, strict=True))]
    )
    assert row["errors"] == expected


def test_ir_no_is_an_error_only_from_b1(halves: dict[str, list[dict[str, Any]]]) -> None:
    """The README's rule: "ir no/na" (to a place) is accepted speech at A1-A2 and corrected to
    "ir ao/à" from B1; a line at B1+ that says it carries that error."""
    motion = re.compile(r"\b(?:vou|vai|vamos|vão|fui|foi|fomos|foram|ia|iam|iria|ir) n[oa]s?\b")
    for rows in halves.values():
        for row in rows:
            said = motion.search(row["text"])
            if not said:
                continue
            if row["level"] in {"A1", "A2"}:
                assert row["errors"] == [], row["id"]
            else:
                assert row["errors"] and row["errors"][0]["kind"] == "preposition", row["id"]


def test_the_readme_is_there() -> None:
    readme = (DATA / "README.md").read_text("utf-8")
    assert "not taken from any corpus" in readme
