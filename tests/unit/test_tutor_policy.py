"""The tutor policy: what a level decides for a reply, how an utterance moves it (estimated off
the event loop, smoothed), and which estimator a profile gets."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from parle.config import load_settings
from parle.tutor.levels import (
    LEVELS,
    POLICIES,
    LevelEstimate,
    LevelTracker,
    LexicalLevelEstimator,
    estimate_from_value,
)
from parle.tutor.mdeberta import MdebertaLevelEstimator
from parle.tutor.policy import TutorPolicy, build_estimator
from parle.tutor.prompts import CORRECTION_RULES, system_prompt, turn_reminder


class FixedEstimator:
    """Every utterance at `value`; remembers the thread each estimate ran on."""

    def __init__(self, value: float) -> None:
        self.value = value
        self.threads: list[int] = []

    def load(self) -> None:
        return None

    def estimate(self, text: str) -> LevelEstimate:
        self.threads.append(threading.get_ident())
        return estimate_from_value(self.value)


@pytest.mark.parametrize("level", LEVELS)
def test_settings_are_the_levels_policy_and_prompts(level: str) -> None:
    turn = TutorPolicy(region="PT").settings(level.lower())
    policy = POLICIES[level]
    assert turn.level == level
    assert turn.system_prompt == system_prompt(level, "PT")
    assert turn.reminder == turn_reminder(level, "PT")
    assert (turn.max_tokens, turn.tts_speed) == (policy.max_tokens, policy.tts_speed)
    assert (turn.min_endpointing_delay_s, turn.max_endpointing_delay_s) == (
        policy.min_endpointing_delay_s,
        policy.max_endpointing_delay_s,
    )
    assert turn.correction == policy.correction
    assert CORRECTION_RULES[turn.correction] in turn.system_prompt
    assert turn.estimate is None and not turn.changed


async def test_a_turn_estimates_off_the_loop_and_moves_the_level_after_evidence() -> None:
    estimator = FixedEstimator(4.0)
    policy = TutorPolicy(estimator)
    tracker = LevelTracker("A1")
    turns = [await policy.turn(tracker, "Embora fosse tarde, saímos.") for _ in range(3)]
    assert [t.level for t in turns] == ["A1", "A1", "A2"]
    assert [t.changed for t in turns] == [False, False, True]
    assert all(t.estimate is not None and t.estimate.level == "C1" for t in turns)
    assert turns[-1].max_tokens == POLICIES["A2"].max_tokens
    assert turns[-1].tts_speed == POLICIES["A2"].tts_speed
    assert "(A2)" in turns[-1].system_prompt
    assert tracker.level == "A2"
    assert estimator.threads and threading.get_ident() not in estimator.threads


async def test_no_estimator_or_no_words_keeps_the_level() -> None:
    tracker = LevelTracker("B1")
    silent = FixedEstimator(0.0)
    unchanged = await TutorPolicy(silent).turn(tracker, "   ")
    assert silent.threads == []  # nothing said, nothing estimated
    assert (unchanged.level, unchanged.estimate, unchanged.changed) == ("B1", None, False)
    blind = await TutorPolicy(None).turn(tracker, "Eu gosto de gato.")
    assert (blind.level, blind.estimate) == ("B1", None)


def test_the_estimator_follows_the_setting(tmp_path: Path) -> None:
    lexical = build_estimator(load_settings(profile="cpu", level_estimator="lexical"))
    assert isinstance(lexical, LexicalLevelEstimator)
    settings = load_settings(
        profile="cpu", level_estimator="mdeberta", classifier_model=str(tmp_path)
    )
    classifier = build_estimator(settings)
    assert isinstance(classifier, MdebertaLevelEstimator)
    assert classifier.model_path == str(tmp_path)
    assert classifier.device == settings.classifier_device
