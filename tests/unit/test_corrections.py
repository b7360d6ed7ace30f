from __future__ import annotations

import pytest

from parle.tutor.corrections import SideChannelSplitter, parse_correction

BLOCK = (
    '<correcao>{"original": "Eu vai na praia", "corrected": "Eu fui à praia", '
    '"explanation": "passado de ir", "kind": "tense"}</correcao>'
)


def split(tokens: list[str]) -> tuple[str, str | None]:
    splitter = SideChannelSplitter()
    spoken = "".join(splitter.push(t) for t in tokens) + splitter.flush()
    return spoken, splitter.block


@pytest.mark.parametrize("size", [1, 2, 3, 7, 1000])
def test_block_is_never_spoken_whatever_the_token_boundaries(size: int) -> None:
    text = "Que legal! Você foi à praia ontem? " + BLOCK
    spoken, block = split([text[i : i + size] for i in range(0, len(text), size)])
    assert spoken == "Que legal! Você foi à praia ontem? "
    correction = parse_correction(block)
    assert correction is not None
    assert correction.as_dict() == {
        "original": "Eu vai na praia",
        "corrected": "Eu fui à praia",
        "explanation": "passado de ir",
        "kind": "tense",
    }


def test_text_that_only_looks_like_a_marker_is_spoken() -> None:
    spoken, block = split(["Três ", "<", " cinco, ", "<co", "isa> e ", "<cor"])
    assert spoken == "Três < cinco, <coisa> e <cor" and block is None


@pytest.mark.parametrize(
    "block",
    [
        None,
        "",
        "{not json",
        '{"original": "x"}',
        '["a", "b"]',
        '{"original": "a", "corrected": "a", "explanation": "same"}',
        '{"original": "a", "corrected": "", "explanation": "e"}',
    ],
)
def test_malformed_blocks_are_dropped(block: str | None) -> None:
    assert parse_correction(block) is None


def test_unknown_kind_becomes_other_and_accented_marker_works() -> None:
    spoken, block = split(
        [
            "Bom! <correção>",
            '{"original": "a", "corrected": "b", ',
            '"explanation": "c", "kind": "weird"}',
        ]
    )
    assert spoken == "Bom! "
    correction = parse_correction(block)
    assert correction is not None and correction.kind == "other"
