"""Error detection on the labelled learner sentences (tests/data/learner_errors/): precision and
recall of each source of corrections, on the dev half and on the held-out half.

    .venv/bin/python bench/bench_corrections.py [--sources rules,languagetool,combined,llm]

Sources: `llm` (the LLM's correction block, the embedded `cpu` model through llama.cpp, as the
tutor's prompt asks for it), `languagetool` (LanguageTool pt-BR alone, what PARLE keeps of it:
`parle.tutor.grammar.from_checker`), `rules` (PARLE's rules alone), `combined` (LanguageTool +
PARLE's rules, deduplicated, as a turn gets them). A finding is a hit when it overlaps the
labelled error's words; any other finding is a false positive. The cost per check is the median
time of one sentence's check.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from parle.config import Settings, load_settings  # noqa: E402
from parle.engines.base import GrammarChecker  # noqa: E402
from parle.tutor import learner_errors  # noqa: E402
from parle.tutor.corrections import Finding  # noqa: E402
from parle.tutor.grammar import checker_findings, combine, find_errors  # noqa: E402

DATA = ROOT / "tests" / "data" / "learner_errors"
# d001's second error, "em Porto" (the set's README): neither a hit nor a false positive.
UNLABELLED = {("d001", "em Porto")}

Detect = Callable[[dict[str, object]], Awaitable[list[Finding]]]


@dataclass
class Score:
    hits: int = 0
    misses: int = 0
    false_positives: int = 0
    right_fix: int = 0  # hits whose correction holds the label's corrected words
    seconds: list[float] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)

    @property
    def precision(self) -> float:
        found = self.hits + self.false_positives
        return self.hits / found if found else 1.0

    @property
    def recall(self) -> float:
        labelled = self.hits + self.misses
        return self.hits / labelled if labelled else 1.0


def load(half: str) -> list[dict[str, object]]:
    lines = (DATA / f"{half}.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def span_of(text: str, original: str) -> tuple[int, int]:
    at = text.find(original)
    return at, at + len(original)


def located(text: str, finding: Finding) -> tuple[int, int]:
    if finding.start >= 0:
        return finding.start, finding.end
    return span_of(text, finding.correction.original)


async def score(items: list[dict[str, object]], detect: Detect) -> Score:
    result = Score()
    for item in items:
        text = str(item["text"])
        errors = item["errors"]
        assert isinstance(errors, list)
        started = time.perf_counter()
        findings = await detect(item)
        result.seconds.append(time.perf_counter() - started)
        labels = [span_of(text, e["original"]) for e in errors]
        matched = set()
        for finding in findings:
            start, end = located(text, finding)
            if (item["id"], text[start:end]) in UNLABELLED:
                continue
            hit = next((i for i, (s, e) in enumerate(labels) if start < e and s < end), None)
            if hit is None:
                result.false_positives += 1
                result.wrong.append(f"{item['id']} FP {text[start:end]!r} ({finding.rule})")
            elif hit not in matched:
                matched.add(hit)
                result.hits += 1
                if _fixes(errors[hit], finding):
                    result.right_fix += 1
        for index, error in enumerate(errors):
            if index not in matched:
                result.misses += 1
                result.wrong.append(f"{item['id']} FN {error['original']!r} ({error['kind']})")
    return result


def _fixes(error: dict[str, str], finding: Finding) -> bool:
    """The finding's correction holds the words the label changed."""
    changed = set(error["corrected"].lower().split()) - set(error["original"].lower().split())
    return changed <= set(finding.correction.corrected.lower().split())


def rules_detector() -> Detect:
    async def detect(item: dict[str, object]) -> list[Finding]:
        return learner_errors.find(str(item["text"]), level=str(item["level"]))

    return detect


def checker_detector(checker: GrammarChecker, *, with_rules: bool) -> Detect:
    async def detect(item: dict[str, object]) -> list[Finding]:
        text, level = str(item["text"]), str(item["level"])
        if with_rules:
            return await find_errors(text, level=level, checker=checker)  # as a turn gets them
        return await checker_findings(text, checker, level=level)

    return detect


async def llm_detector(settings: Settings) -> tuple[Detect, Callable[[], Awaitable[None]]]:
    """The embedded model's correction block, asked for as every turn asks for it."""
    from parle.engines.llm_server import LlmServer
    from parle.models import llm_spec, require
    from parle.runtime import build_chat
    from parle.tutor.corrections import SideChannelSplitter, parse_correction
    from parle.tutor.policy import TutorPolicy

    server = LlmServer(settings, gguf=require(llm_spec(settings), settings).path)
    await server.start()
    chat = build_chat(settings)
    policy = TutorPolicy()

    async def detect(item: dict[str, object]) -> list[Finding]:
        text = str(item["text"])
        messages = policy.settings(str(item["level"])).messages([], text)
        side = SideChannelSplitter()
        async for delta in chat.stream(messages, max_tokens=160, temperature=0.0):
            side.push(delta)
        correction = parse_correction(side.block)
        return combine(text, [], [], correction) if correction else []

    async def close() -> None:
        await chat.aclose()
        await server.stop()

    return detect, close


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", default="llm,languagetool,rules,combined")
    parser.add_argument("--halves", default="dev,heldout")
    parser.add_argument("--show", action="store_true", help="list every miss and false positive")
    args = parser.parse_args()
    sources = args.sources.split(",")
    settings = load_settings(profile="cpu")
    closers: list[Callable[[], Awaitable[None]]] = []
    detectors: dict[str, Detect] = {}
    if "rules" in sources:
        detectors["rules"] = rules_detector()
    if {"languagetool", "combined"} & set(sources):
        from parle.engines.languagetool import LanguageToolServer

        server = LanguageToolServer(settings)
        await server.start()
        checker = server.checker()
        closers += [checker.aclose, server.stop]
        if "languagetool" in sources:
            detectors["languagetool"] = checker_detector(checker, with_rules=False)
        if "combined" in sources:
            detectors["combined"] = checker_detector(checker, with_rules=True)
    if "llm" in sources:
        detect, close = await llm_detector(settings)
        detectors["llm"] = detect
        closers.append(close)
    try:
        columns = "source half precision recall hits misses false_pos. right_fix ms/check"
        print("| " + " | ".join(c.replace("_", " ") for c in columns.split()) + " |")
        print("|---|---|---|---|---|---|---|---|---|")
        for name in sources:
            for half in args.halves.split(","):
                result = await score(load(half), detectors[name])
                ms = statistics.median(result.seconds) * 1000
                print(
                    f"| {name} | {half} | {result.precision:.2f} | {result.recall:.2f} | "
                    f"{result.hits} | {result.misses} | {result.false_positives} | "
                    f"{result.right_fix}/{result.hits} | {ms:.1f} |"
                )
                if args.show:
                    for line in result.wrong:
                        print(f"    {line}")
    finally:
        for close in reversed(closers):
            await close()


if __name__ == "__main__":
    asyncio.run(main())
