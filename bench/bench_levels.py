"""The lexical level estimator against the labelled CEFR sentences (tests/data/cefr/): Spearman
and the per-level confusion matrix on the development part and on the held-out part, for the
previous formula (kept here only, as the baseline) and for `LexicalLevelEstimator`.

    .venv/bin/python bench/bench_levels.py
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.ranking import spearman  # noqa: E402
from parle.tutor.levels import LEVELS, LexicalLevelEstimator, estimate_from_value  # noqa: E402

SENTENCES = ROOT / "tests" / "data" / "cefr" / "sentences.jsonl"

# --- The previous estimator's formula (the baseline), as it was before issue 14 §7 ------------

_OLD_PAST = re.compile(
    r"\b(ontem|anteontem|fui|foi|fomos|foram|tive|teve|tivemos|fiz|fez|estive|esteve|"
    r"\w{2,}(?:ei|ou|aram|eram|iram|ava|avam))\b"
)
_OLD_NOT_PAST = frozenset({"sou", "estou", "vou", "dou", "sei", "lei", "rei", "ou", "pou"})
_OLD_ADVANCED_VERB = re.compile(
    r"\b\w+(?:sse|ssem|ssemos|ria|riam|ríamos|rei|remos|rão|ndo)\b|\b(tinha|havia|teria|"
    r"houvesse|tenha|seja|sejam|esteja|possa|queira)\b"
)
_OLD_CONNECTIVES = {
    "porque": 1, "quando": 1, "então": 1, "depois": 1, "antes": 1, "também": 1,
    "diferença": 1, "entre": 1, "mais": 1, "menos": 1, "melhor": 1, "pior": 1,
    "embora": 3, "portanto": 3, "enquanto": 2, "apesar": 3, "caso": 2,
    "contudo": 4, "todavia": 4, "entretanto": 4, "logo": 2, "aliás": 4, "conquanto": 5,
    "outrossim": 5, "destarte": 5, "mormente": 5,
}  # fmt: skip
_OLD_WORD = re.compile(r"[a-záàâãéêíóôõúüç]+", re.IGNORECASE)


def old_value(text: str) -> float:
    """The previous `LexicalLevelEstimator.estimate`'s value."""
    from wordfreq import zipf_frequency

    tokens = [(m.group(0), m.start()) for m in _OLD_WORD.finditer(text)]
    words = [w.lower() for w, _ in tokens]
    if not words:
        return 0.0
    known = []
    for word, start in tokens:
        if word[0].isupper() and start > 0 and not re.search(r"[.!?]\s*$", text[:start]):
            continue
        frequency = float(zipf_frequency(word.lower(), "pt"))
        if frequency <= 0 or float(zipf_frequency(word.lower(), "en")) > frequency + 1.0:
            continue
        known.append(frequency)
    rare = sorted((max(0.0, 5.5 - f) for f in known), reverse=True)
    rarity = sum(rare[:3]) / 3 if rare else 0.0
    sentences = max(1, len(re.findall(r"[.!?]+", text)))
    length = len(words) / sentences
    past = sum(1 for w in _OLD_PAST.findall(text.lower()) if w not in _OLD_NOT_PAST)
    advanced = len(_OLD_ADVANCED_VERB.findall(text.lower()))
    connective = max((_OLD_CONNECTIVES.get(w, 0) for w in words), default=0)
    value = (
        0.45 * rarity
        + 0.06 * max(0.0, length - 6)
        + 0.35 * min(past, 2)
        + 0.6 * min(advanced, 3)
        + 0.45 * connective
    )
    return estimate_from_value(value).value


# --- Measures ---------------------------------------------------------------------------------


def report(name: str, value: Callable[[str], float], rows: list[dict[str, str]]) -> None:
    for split in ("dev", "heldout"):
        part = [row for row in rows if row["split"] == split]
        values = [value(row["text"]) for row in part]
        labels = [LEVELS.index(row["level"]) for row in part]
        predicted = [round(min(max(v, 0.0), 5.0)) for v in values]
        exact = sum(p == t for p, t in zip(predicted, labels, strict=True)) / len(part)
        within = sum(abs(p - t) <= 1 for p, t in zip(predicted, labels, strict=True)) / len(part)
        print(
            f"{name} / {split} ({len(part)} sentences): Spearman "
            f"{spearman(values, [float(t) for t in labels]):.3f}, exact {exact:.0%}, "
            f"within one level {within:.0%}"
        )
        print("  label \\ estimate  " + " ".join(f"{level:>3}" for level in LEVELS))
        for t, level in enumerate(LEVELS):
            counts = [
                sum(1 for p, u in zip(predicted, labels, strict=True) if u == t and p == q)
                for q in range(len(LEVELS))
            ]
            print(f"  {level:<17} " + " ".join(f"{c:>3}" for c in counts))


def main() -> None:
    rows = [json.loads(line) for line in SENTENCES.read_text("utf-8").splitlines() if line]
    estimator = LexicalLevelEstimator()
    estimator.load()
    report("old formula", old_value, rows)
    report("LexicalLevelEstimator", lambda text: estimator.estimate(text).value, rows)
    texts = [row["text"] for row in rows]
    started = time.perf_counter()
    for _ in range(10):
        for text in texts:
            estimator.estimate(text)
    per = (time.perf_counter() - started) / (10 * len(texts))
    print(f"LexicalLevelEstimator: {per * 1000:.2f} ms per sentence (warm)")


if __name__ == "__main__":
    main()
