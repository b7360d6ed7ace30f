"""Errors in the learner's words, from every source at once: the grammar checker
(LanguageTool), PARLE's own learner-error rules (`parle.tutor.learner_errors`) and the LLM's
correction block; deduplicated, and one chosen per turn by level.

What counts as an error is a tutor's call, not the checker's: spelling and typography are not
(Whisper chose the spelling of speech), nor are capitals, punctuation, style advice or a
European form said in Brazil; a suggestion that only changes case is dropped, and so is an
LLM's block that quotes words the learner never said.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable, Sequence

from parle.engines.base import GrammarChecker, GrammarMatch
from parle.errors import GrammarUnavailableError
from parle.tutor import learner_errors
from parle.tutor.corrections import Correction, Finding
from parle.tutor.levels import CorrectionStrategy, level_index

log = logging.getLogger(__name__)

# LanguageTool categories that are not a learner's grammar: spelling (the transcriber spelled
# it), typography, capitals, punctuation, style and register advice.
IGNORED_CATEGORIES = frozenset(
    {
        "TYPOS",
        "TYPOGRAPHY",
        "CASING",
        "PUNCTUATION",
        "STYLE",
        "REDUNDANCY",  # wordiness advice ("por causa do" -> "devido ao"), not grammar
        "REDUNDANCY_STYLE",
        "REPETITIONS_STYLE",
        "COLLOQUIALISMS",
        "REGIONALISMS",
        "CREATIVE_WRITING",
        "MISC",
        "SEMANTICS",
        "FORMAL_SPEECH",
        "PLAIN_ENGLISH",
        "TEXT_ANALYSIS",
        "WIKIPEDIA",
    }
)

# LanguageTool rules (by id prefix) that are not a learner's error either: European
# Portuguese said in Brazil ("estava a arrumar"), and style advice filed as grammar (dropping
# a subject pronoun, "o próximo ano" for "o ano que vem").
IGNORED_RULES = ("ESTAR_A_VERB", "REMOVER_EU_NÓS", "QUE_VEM_PROXIMA")

# LanguageTool rules whose kind is known; any other grammar rule is "grammar".
_KIND_OF_RULE = (
    ("AGREEMENT", "agreement"),
    ("CONCORD", "agreement"),
    ("TENSE", "tense"),
    ("PREPOSITION", "preposition"),
    ("CRASE", "preposition"),
    ("REDUNDANCY", "grammar"),
)

# One source's finding is preferred to another's for the same words: PARLE's rules explain in
# a learner's Portuguese; LanguageTool's messages are written for native writers.
_PREFERENCE = {"rules": 0, "checker": 1, "llm": 2}


# LanguageTool rules for what the tutor teaches only from a level on, by rule id prefix: the
# same levels as PARLE's own rules for the same errors.
_CHECKER_RULES_FROM = {"IR_CONTRACTION": learner_errors.IR_EM_FROM}


def from_checker(text: str, matches: Iterable[GrammarMatch], *, level: str = "C2") -> list[Finding]:
    """The checker's matches that are a learner's grammar errors at `level`, as findings."""
    findings: list[Finding] = []
    for match in matches:
        if (
            match.category.upper() in IGNORED_CATEGORIES
            or match.rule.startswith(IGNORED_RULES)
            or not match.replacements
        ):
            continue
        taught_from = next(
            (lv for prefix, lv in _CHECKER_RULES_FROM.items() if match.rule.startswith(prefix)),
            None,
        )
        if taught_from is not None and level_index(level) < level_index(taught_from):
            continue
        start, end = match.offset, match.offset + match.length
        original = text[start:end]
        corrected = match.replacements[0]
        if not original.strip() or corrected.casefold() == original.casefold():
            continue
        kind = next((k for key, k in _KIND_OF_RULE if key in match.rule.upper()), "grammar")
        explanation = _plain(match.message)
        correction = Correction(original, corrected, explanation, kind)
        findings.append(Finding(correction, "checker", match.rule, start, end))
    return findings


def _plain(message: str) -> str:
    """A checker's message without its markup (LanguageTool quotes with <suggestion>)."""
    return re.sub(r"</?suggestion>", '"', message).strip()[:500]


class CheckerHealth:
    """A checker's failures, counted, and logged once per outage (not once per turn)."""

    def __init__(self, on_failure: Callable[[], None] | None = None) -> None:
        self.failures = 0
        self.down = False
        self.on_failure = on_failure  # a metrics counter's `inc`

    def failed(self, error: GrammarUnavailableError) -> None:
        self.failures += 1
        if self.on_failure is not None:
            self.on_failure()
        if not self.down:
            self.down = True
            log.warning("grammar checker unavailable", extra={"reason": str(error)})

    def answered(self) -> None:
        if self.down:
            self.down = False
            log.info("grammar checker answers again")


async def checker_findings(
    text: str,
    checker: GrammarChecker | None,
    health: CheckerHealth | None = None,
    *,
    level: str = "C2",
) -> list[Finding]:
    """The checker's findings in `text` for a learner at `level`; none when there is no
    checker or it failed (counted in `health`)."""
    if checker is None or not text.strip():
        return []
    try:
        matches = await checker.check(text)
    except GrammarUnavailableError as error:
        if health is not None:
            health.failed(error)
        return []
    if health is not None:
        health.answered()
    return from_checker(text, matches, level=level)


async def find_errors(
    text: str,
    *,
    level: str = "A2",
    checker: GrammarChecker | None = None,
    health: CheckerHealth | None = None,
    llm: Correction | None = None,
) -> list[Finding]:
    """Every error found in `text` by every source, deduplicated (`combine`)."""
    return combine(
        text,
        learner_errors.find(text, level=level),
        await checker_findings(text, checker, health, level=level),
        llm,
    )


def combine(
    text: str, rules: Sequence[Finding], checked: Sequence[Finding], llm: Correction | None
) -> list[Finding]:
    """The three sources' findings as one list, one per span of the learner's words."""
    findings = [*rules, *checked]
    said = _locate(text, llm) if llm is not None else None
    # An LLM's block that quotes words the learner never said corrects nothing of theirs.
    if said is not None and said.start >= 0:
        covered = [f for f in findings if _fixed_alike(said, f)]
        # The LLM's fix covers what the rules or the checker found, fixed the same way, and may
        # fix more at once ("Eu vai na praia" -> "Eu fui à praia"): its correction stands.
        findings = [f for f in findings if f not in covered]
        findings.append(said)
    return deduplicate(findings)


def _fixed_alike(wider: Finding, finding: Finding) -> bool:
    """`wider` spans `finding`'s words and its correction holds `finding`'s correction."""
    return (
        0 <= wider.start <= finding.start
        and finding.end <= wider.end
        and finding.correction.corrected.casefold() in wider.correction.corrected.casefold()
    )


def choose(findings: Sequence[Finding]) -> Finding | None:
    """The one error this turn corrects (never more than one: a learner who hears a list of
    mistakes stops talking): the first in the text among the preferred source's."""
    if not findings:
        return None
    return min(findings, key=lambda f: (_PREFERENCE[f.source], f.start))


# What the LLM is told about an error it should correct, by the level's strategy
# (parle.tutor.levels.POLICIES): a recast says it right without grammar talk; the others
# name the right form, with a clue or a short rule as the level allows.
_HINTS: dict[CorrectionStrategy, str] = {
    "recast": "Use a forma correta «{corrected}» naturalmente na sua resposta, sem falar de "
    "gramática.",
    "hint": "Repita a forma correta «{corrected}» com naturalidade e dê uma pista curta.",
    "explicit": "Diga com gentileza que o certo é «{corrected}», em uma frase curta.",
    "note": "Corrija para «{corrected}» com uma nota gramatical curta: {explanation}",
}


def correction_hint(
    finding: Finding, strategy: CorrectionStrategy, *, earlier: bool = False
) -> str:
    """A system note steering the reply's correction of `finding` (the learner's words are
    quoted as data, never as instructions). `earlier`: the error was in the learner's
    previous utterance (the checker answered after that reply was written)."""
    c = finding.correction
    where = "Na fala anterior, o aluno disse" if earlier else "O aluno disse"
    said = json.dumps(c.original[:120], ensure_ascii=False)
    steer = _HINTS[strategy].format(corrected=c.corrected[:120], explanation=c.explanation)
    return f"(Correção: {where} {said}. {steer} Corrija só isso.)"


def _locate(text: str, correction: Correction) -> Finding:
    """The LLM's correction where its `original` is in the learner's words (start -1: not)."""
    words = correction.original.strip(" .,!?")
    at = text.casefold().find(words.casefold())
    if at < 0:
        return Finding(correction, "llm", "llm")
    return Finding(correction, "llm", "llm", at, at + len(words))


def deduplicate(findings: Sequence[Finding]) -> list[Finding]:
    """One finding per span of the learner's words: where two overlap, the preferred source's
    (rules, then checker, then LLM). Ordered by where they are in the text."""
    kept: list[Finding] = []
    for finding in sorted(findings, key=lambda f: _PREFERENCE[f.source]):
        if not any(_overlap(finding, other) for other in kept):
            kept.append(finding)
    return sorted(kept, key=lambda f: f.start)


def _overlap(a: Finding, b: Finding) -> bool:
    return a.start < b.end and b.start < a.end
