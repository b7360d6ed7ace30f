"""A stand-in for LanguageTool's client (`parle.engines.languagetool.LanguageToolChecker`, tested
against the real server in tests/integration/test_languagetool.py): the matches it returns, how
long it takes, or the failure it raises, and every text it was asked about."""

from __future__ import annotations

import asyncio

from parle.engines.base import GrammarMatch
from parle.errors import GrammarUnavailableError


def match_of(
    text: str, words: str, fix: str, *, rule: str = "X", category: str = "GRAMMAR"
) -> GrammarMatch:
    """A match on `words` in `text`, as LanguageTool states one."""
    at = text.index(words)
    return GrammarMatch(at, len(words), (fix,), "Msg <suggestion>x</suggestion>", rule, category)


class ScriptedChecker:
    def __init__(
        self,
        matches: dict[str, list[GrammarMatch]] | None = None,
        *,
        delay_s: float = 0.0,
        fails: bool = False,
    ) -> None:
        self.matches = matches or {}  # by the text they are in
        self.delay_s = delay_s
        self.fails = fails
        self.texts: list[str] = []

    async def check(self, text: str) -> list[GrammarMatch]:
        self.texts.append(text)
        await asyncio.sleep(self.delay_s)
        if self.fails:
            raise GrammarUnavailableError("The grammar checker does not answer.")
        return self.matches.get(text, [])

    async def aclose(self) -> None:
        pass
