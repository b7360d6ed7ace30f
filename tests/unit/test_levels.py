"""CEFR levels: the lexical estimator, smoothing over a session, and what a level steers."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from harness.ranking import spearman
from parle.tutor.levels import (
    LEVELS,
    POLICIES,
    LevelTracker,
    LexicalLevelEstimator,
    estimate_from_value,
    level_index,
)


@pytest.fixture(scope="module")
def lexical() -> LexicalLevelEstimator:
    estimator = LexicalLevelEstimator()
    estimator.load()
    return estimator


CEFR_SENTENCES = Path(__file__).parents[1] / "data" / "cefr" / "sentences.jsonl"


@pytest.fixture(scope="module")
def cefr() -> list[dict[str, Any]]:
    """The labelled learner sentences (tests/data/cefr/README.md): tuned on `dev`, judged on
    `heldout`."""
    lines = CEFR_SENTENCES.read_text("utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def test_the_labelled_set_covers_every_level_in_both_parts(cefr: list[dict[str, Any]]) -> None:
    for level in LEVELS:
        rows = [row for row in cefr if row["level"] == level]
        assert len(rows) >= 10
        assert {row["split"] for row in rows} == {"dev", "heldout"}
        assert all(row["rationale"] for row in rows)
        assert any(row["learner_error"] for row in rows)  # learners make mistakes at every level
    assert len({row["text"] for row in cefr}) == len(cefr)


def test_the_estimate_ranks_held_out_sentences_like_their_labels(
    lexical: LexicalLevelEstimator, cefr: list[dict[str, Any]]
) -> None:
    heldout = [row for row in cefr if row["split"] == "heldout"]
    values = [lexical.estimate(row["text"]).value for row in heldout]
    labels = [float(level_index(row["level"])) for row in heldout]
    assert spearman(values, labels) >= 0.7
    exact = sum(round(v) == t for v, t in zip(values, labels, strict=True))
    assert exact / len(heldout) >= 0.6


def test_no_advanced_sentence_reads_as_a_beginners_and_no_beginners_as_advanced(
    lexical: LexicalLevelEstimator, cefr: list[dict[str, Any]]
) -> None:
    for row in cefr:
        label, got = level_index(row["level"]), level_index(lexical.estimate(row["text"]).level)
        if label <= level_index("A2"):
            assert got <= level_index("B1"), row["text"]
        if label >= level_index("C1"):
            assert got >= level_index("A2"), row["text"]
            # Idioms made of everyday words are the estimator's blind spot (the README says
            # so); a C1/C2 sentence with formal vocabulary or structures is B1 or above.
            if "idiom" not in row["rationale"]:
                assert got >= level_index("B1"), row["text"]


def test_learner_errors_do_not_pull_a_sentence_down(
    lexical: LexicalLevelEstimator, cefr: list[dict[str, Any]]
) -> None:
    # Grammar counts by the most advanced structure attempted, not by its accuracy.
    for row in cefr:
        if row["learner_error"]:
            got = lexical.estimate(row["text"]).level
            assert abs(level_index(got) - level_index(row["level"])) <= 1, row["text"]
    slip = lexical.estimate("Se eu tivesse dinheiro, eu viajaria para o Japão mas eu não tem")
    assert slip.level in ("B1", "B2")
    b2_with_errors = [r for r in cefr if r["level"] == "B2" and r["learner_error"]]
    assert len(b2_with_errors) >= 2
    for row in b2_with_errors:
        assert level_index(lexical.estimate(row["text"]).level) >= level_index("B1")


def test_the_estimate_is_deterministic(
    lexical: LexicalLevelEstimator, cefr: list[dict[str, Any]]
) -> None:
    fresh = LexicalLevelEstimator()
    fresh.load()
    for row in cefr:
        first, second = lexical.estimate(row["text"]), fresh.estimate(row["text"])
        assert (first.level, first.value, first.scores, first.features) == (
            second.level,
            second.value,
            second.scores,
            second.features,
        )
        assert lexical.estimate(row["text"]) == first


def test_the_estimate_says_which_features_it_used(lexical: LexicalLevelEstimator) -> None:
    text = "Se eu tivesse dinheiro, eu viajaria para o Japão mas eu não tem"
    estimate = lexical.estimate(text)
    assert estimate.features == lexical.explain(text)
    features = estimate.features
    for name in ("grammar", "lexical", "rare_2k", "rare_5k", "clauses", "words_per_sentence"):
        assert name in features
    assert features["form:imperfect_subjunctive"] == 3.0  # B2
    assert features["form:conditional"] == 2.5
    assert features["grammar"] == max(v for k, v in features.items() if ":" in k)
    assert "connective:não obstante" in lexical.explain(
        "Não obstante os avanços, a desigualdade permanece um entrave."
    )
    assert lexical.explain("Ontem eu fui ao mercado.")["form:preterite"] == 1.0
    # Rare, formal vocabulary shows in the rarity features, not in grammar.
    formal = lexical.explain("A proposta carece de fundamentação empírica.")
    plain = lexical.explain("A casa é grande e o quarto é azul.")
    assert formal["rare_5k"] > 0.3 > plain["rare_5k"]
    assert formal["lexical"] > plain["lexical"] + 2
    assert lexical.explain("") == {} and lexical.estimate("").features == {}


def test_the_estimate_is_fast_enough_for_every_turn(
    lexical: LexicalLevelEstimator, cefr: list[dict[str, Any]]
) -> None:
    texts = [row["text"] for row in cefr]
    for text in texts:
        lexical.estimate(text)
    started = time.perf_counter()
    for text in texts:
        lexical.estimate(text)
    # A few ms at most per utterance; a generous bound on a shared machine.
    assert (time.perf_counter() - started) / len(texts) < 0.02


def test_lexical_estimator_orders_the_reference_utterances(
    lexical: LexicalLevelEstimator, references: list[dict[str, Any]]
) -> None:
    values = [lexical.estimate(ref["text"]).value for ref in references]
    labels = [float(LEVELS.index(ref["level"])) for ref in references]
    assert len(set(labels)) >= 2
    assert spearman(values, labels) >= 0.6


def test_lexical_estimator_is_stable_and_spans_the_scale(lexical: LexicalLevelEstimator) -> None:
    # The same errand told in the past reads higher than in the present: past forms count.
    past = lexical.estimate("Ontem nós fomos ao supermercado e compramos muitas frutas.")
    present = lexical.estimate("Hoje nós vamos ao supermercado e compramos muitas frutas.")
    assert past.value > present.value + 0.5
    assert level_index(past.level) > level_index(present.level)
    ladder = [
        "Eu gosto de gato.",
        "Ontem eu fui ao mercado com a minha mãe.",
        "Embora eu tivesse estudado bastante, não consegui passar na prova, portanto vou tentar.",
        "Conquanto a conjuntura econômica seja desfavorável, outrossim cumpre salientar os "
        "indícios de recuperação.",
    ]
    values = [lexical.estimate(t).value for t in ladder]
    assert values == sorted(values) and values[0] < 1 and values[-1] > 3
    estimate = lexical.estimate(ladder[2])
    assert sum(estimate.scores.values()) == pytest.approx(1.0, abs=1e-3)
    assert max(estimate.scores, key=estimate.scores.__getitem__) == estimate.level
    assert lexical.estimate("").level == "A1"


def test_names_and_borrowed_english_words_do_not_raise_the_level(
    lexical: LexicalLevelEstimator,
) -> None:
    plain = lexical.estimate("Como se diz isso em português?").value
    assert lexical.estimate("Como se diz 'library' em português?").value == pytest.approx(plain)
    assert lexical.estimate("Eu sou a Ana.").level == "A1"


def test_one_advanced_sentence_does_not_move_an_a1_learner() -> None:
    tracker = LevelTracker("A1")
    assert tracker.observe(estimate_from_value(4.5)) == "A1"
    assert tracker.observe(estimate_from_value(0.2)) == "A1"


def test_a_run_of_advanced_sentences_moves_one_step_at_a_time() -> None:
    tracker = LevelTracker("A1")
    seen = [tracker.observe(estimate_from_value(4.0)) for _ in range(9)]
    assert seen == ["A1", "A1", "A2", "A2", "A2", "B1", "B1", "B1", "B2"]
    down = LevelTracker("B2")
    assert [down.observe(estimate_from_value(0.0)) for _ in range(3)] == ["B2", "B2", "B1"]
    tracker.reset("a2")
    assert tracker.level == "A2"


def test_a_tracker_starts_where_it_is_told() -> None:
    # A tracker made at A1 has A1 as its start: the client that named A1 does not restart it.
    tracker = LevelTracker("a1")
    assert (tracker.level, tracker.start) == ("A1", "A1")


def test_level_policies_slow_down_and_wait_longer_for_beginners() -> None:
    speeds = [POLICIES[level].tts_speed for level in LEVELS]
    tokens = [POLICIES[level].max_tokens for level in LEVELS]
    waits = [
        (POLICIES[level].min_endpointing_delay_s, POLICIES[level].max_endpointing_delay_s)
        for level in LEVELS
    ]
    assert speeds == sorted(speeds) and speeds[0] < 1.0 <= speeds[2]
    assert tokens == sorted(tokens)
    assert [w[0] for w in waits] == sorted((w[0] for w in waits), reverse=True)
    assert all(low < high for low, high in waits)
    corrections = [POLICIES[level].correction for level in LEVELS]
    assert corrections == ["recast", "hint", "explicit", "note", "note", "note"]
