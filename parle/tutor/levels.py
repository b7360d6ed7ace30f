"""CEFR levels: how each one steers a turn, how a learner's level is estimated from what they
say, and how the estimate is smoothed over a session."""

from __future__ import annotations

import math
import re
from collections import deque
from dataclasses import dataclass, field
from typing import Literal, Protocol

LEVELS = ("A1", "A2", "B1", "B2", "C1", "C2")


def level_index(level: str) -> int:
    return LEVELS.index(level.upper())


# How the tutor corrects a mistake: `recast` says it right inside the reply, `hint` adds a
# short clue, `explicit` names the right form, `note` adds a short grammatical note.
CorrectionStrategy = Literal["recast", "hint", "explicit", "note"]


@dataclass(frozen=True)
class LevelPolicy:
    """What a level changes in a turn (besides the prompt's level rules).

    `min_endpointing_delay_s`/`max_endpointing_delay_s` are the LiveKit agent's turn-taking
    patience: beginners pause mid-sentence to find words, so the agent waits longer before it
    decides they have finished.
    """

    max_tokens: int
    tts_speed: float
    min_endpointing_delay_s: float
    max_endpointing_delay_s: float
    correction: CorrectionStrategy


POLICIES = {
    "A1": LevelPolicy(max_tokens=60, tts_speed=0.85, min_endpointing_delay_s=1.2,
                      max_endpointing_delay_s=6.0, correction="recast"),
    "A2": LevelPolicy(max_tokens=80, tts_speed=0.9, min_endpointing_delay_s=1.0,
                      max_endpointing_delay_s=5.0, correction="hint"),
    "B1": LevelPolicy(max_tokens=100, tts_speed=1.0, min_endpointing_delay_s=0.8,
                      max_endpointing_delay_s=4.0, correction="explicit"),
    "B2": LevelPolicy(max_tokens=120, tts_speed=1.0, min_endpointing_delay_s=0.6,
                      max_endpointing_delay_s=3.5, correction="note"),
    "C1": LevelPolicy(max_tokens=140, tts_speed=1.05, min_endpointing_delay_s=0.5,
                      max_endpointing_delay_s=3.0, correction="note"),
    "C2": LevelPolicy(max_tokens=160, tts_speed=1.05, min_endpointing_delay_s=0.5,
                      max_endpointing_delay_s=3.0, correction="note"),
}  # fmt: skip


def policy_for(level: str) -> LevelPolicy:
    """The turn settings for `level` (A1..C2)."""
    return POLICIES[level.upper()]


@dataclass(frozen=True)
class LevelEstimate:
    """One utterance's level: the label, a continuous value (A1 = 0 ... C2 = 5) and a score
    per level (they sum to 1)."""

    level: str
    value: float
    scores: dict[str, float]


class LevelEstimator(Protocol):
    """Text of one learner utterance in, its CEFR level out."""

    def load(self) -> None: ...

    def estimate(self, text: str) -> LevelEstimate: ...


def estimate_from_value(value: float) -> LevelEstimate:
    """A label and soft scores around a continuous level value."""
    value = min(max(value, 0.0), len(LEVELS) - 1.0)
    weights = [math.exp(-((value - i) ** 2) / 0.5) for i in range(len(LEVELS))]
    total = sum(weights)
    scores = {level: round(w / total, 4) for level, w in zip(LEVELS, weights, strict=True)}
    return LevelEstimate(LEVELS[round(value)], round(value, 3), scores)


# --- Lexical estimator ------------------------------------------------------------------------

_PAST = re.compile(
    r"\b(ontem|anteontem|fui|foi|fomos|foram|tive|teve|tivemos|fiz|fez|estive|esteve|"
    r"\w{2,}(?:ei|ou|aram|eram|iram|ava|avam))\b"
)
# Present-tense and other everyday words that end like a past tense.
_NOT_PAST = frozenset({"sou", "estou", "vou", "dou", "sei", "lei", "rei", "ou", "pou"})
_ADVANCED_VERB = re.compile(
    r"\b\w+(?:sse|ssem|ssemos|ria|riam|ríamos|rei|remos|rão|ndo)\b|\b(tinha|havia|teria|"
    r"houvesse|tenha|seja|sejam|esteja|possa|queira)\b"
)
_CONNECTIVES = {
    # connective: the level it signals (index into LEVELS)
    "porque": 1, "quando": 1, "então": 1, "depois": 1, "antes": 1, "também": 1,
    "diferença": 1, "entre": 1, "mais": 1, "menos": 1, "melhor": 1, "pior": 1,
    "embora": 3, "portanto": 3, "enquanto": 2, "apesar": 3, "caso": 2,
    "contudo": 4, "todavia": 4, "entretanto": 4, "logo": 2, "aliás": 4, "conquanto": 5,
    "outrossim": 5, "destarte": 5, "mormente": 5,
}  # fmt: skip
_WORD = re.compile(r"[a-záàâãéêíóôõúüç]+", re.IGNORECASE)


@dataclass
class LexicalLevelEstimator:
    """Offline estimator for the `cpu` profile: rare vocabulary (Portuguese word frequencies
    from `wordfreq`), sentence length, verb tenses beyond the present, and connectives."""

    language: str = "pt"
    _zipf: object = field(default=None, repr=False)

    def load(self) -> None:
        from wordfreq import zipf_frequency

        self._zipf = zipf_frequency
        zipf_frequency("casa", self.language)  # reads the word list once

    def estimate(self, text: str) -> LevelEstimate:
        if self._zipf is None:
            self.load()
        tokens = [(m.group(0), m.start()) for m in _WORD.finditer(text)]
        words = [w.lower() for w, _ in tokens]
        if not words:
            return estimate_from_value(0.0)
        zipf = self._zipf
        assert callable(zipf)
        known = []
        for word, start in tokens:
            if word[0].isupper() and start > 0 and not re.search(r"[.!?]\s*$", text[:start]):
                continue  # a name mid-sentence (Ana, Estados Unidos) says nothing of level
            frequency = float(zipf(word.lower(), self.language))
            if frequency <= 0 or float(zipf(word.lower(), "en")) > frequency + 1.0:
                continue  # unknown, or an English word the learner borrowed ("library")
            known.append(frequency)
        # Rarity: how far below everyday words (zipf ~5.5) the learner's vocabulary reaches.
        rare = sorted((max(0.0, 5.5 - f) for f in known), reverse=True)
        rarity = sum(rare[:3]) / 3 if rare else 0.0
        sentences = max(1, len(re.findall(r"[.!?]+", text)))
        length = len(words) / sentences
        past = sum(1 for w in _PAST.findall(text.lower()) if w not in _NOT_PAST)
        advanced = len(_ADVANCED_VERB.findall(text.lower()))
        connective = max((_CONNECTIVES.get(w, 0) for w in words), default=0)
        value = (
            0.45 * rarity
            + 0.06 * max(0.0, length - 6)
            + 0.35 * min(past, 2)
            + 0.6 * min(advanced, 3)
            + 0.45 * connective
        )
        return estimate_from_value(value)


# --- Smoothing over a session -----------------------------------------------------------------


@dataclass
class LevelTracker:
    """A learner's level over a session. It moves one step at a time, and only after
    `evidence` of the last `window` utterances point the same way; one outlier never moves it.
    """

    level: str = "A2"
    window: int = 4
    evidence: int = 3
    start: str = ""  # where it began (default: `level`); a client naming another restarts it
    _recent: deque[float] = field(default_factory=deque)

    def __post_init__(self) -> None:
        self.level = self.level.upper()
        self.start = (self.start or self.level).upper()

    def observe(self, estimate: LevelEstimate) -> str:
        self._recent.append(estimate.value)
        while len(self._recent) > self.window:
            self._recent.popleft()
        current = level_index(self.level)
        above = sum(1 for v in self._recent if v >= current + 0.5)
        below = sum(1 for v in self._recent if v <= current - 0.5)
        step = 1 if above >= self.evidence else -1 if below >= self.evidence else 0
        if step:
            self.level = LEVELS[min(max(current + step, 0), len(LEVELS) - 1)]
            self._recent.clear()  # new level, new evidence
        return self.level

    def reset(self, level: str) -> None:
        """Start again at `level` (a client named it): the new starting point."""
        self.level = self.start = level.upper()
        self._recent.clear()
