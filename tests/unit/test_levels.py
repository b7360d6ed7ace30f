"""CEFR levels: the lexical estimator, smoothing over a session, and what a level steers."""

from __future__ import annotations

from typing import Any

import pytest

from parle.tutor.levels import (
    LEVELS,
    POLICIES,
    LevelTracker,
    LexicalLevelEstimator,
    estimate_from_value,
    level_index,
)


def spearman(xs: list[float], ys: list[float]) -> float:
    def ranks(values: list[float]) -> list[float]:
        order = sorted(range(len(values)), key=lambda i: values[i])
        result = [0.0] * len(values)
        i = 0
        while i < len(order):
            j = i
            while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
                j += 1
            for k in range(i, j + 1):
                result[order[k]] = (i + j) / 2 + 1  # ties share their mean rank
            i = j + 1
        return result

    rx, ry = ranks(xs), ranks(ys)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry, strict=True))
    var = (sum((a - mx) ** 2 for a in rx) * sum((b - my) ** 2 for b in ry)) ** 0.5
    return cov / var


@pytest.fixture(scope="module")
def lexical() -> LexicalLevelEstimator:
    estimator = LexicalLevelEstimator()
    estimator.load()
    return estimator


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
