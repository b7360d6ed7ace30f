"""Incremental sentence cutter: LLM tokens in, speakable pieces out, as early as is natural."""

from __future__ import annotations

import re

# Portuguese (and a few common) abbreviations whose period does not end a sentence.
ABBREVIATIONS = frozenset(
    {
        "sr", "sra", "srta", "dr", "dra", "prof", "profa", "sto", "sta", "av", "ex", "exa",
        "pág", "pag", "p", "pp", "vol", "cap", "n", "nº", "tel", "obs", "aprox",
        "depto", "dept", "eng", "adv", "arq", "gov", "jr", "sr(a)", "v", "vs", "cia", "ltda",
        "mr", "mrs", "ms", "st", "a.c", "d.c", "p.ex", "i.e", "e.g",
    }
)  # fmt: skip

_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’»)\]*_]*(?=\s)")
_CLAUSE_END = re.compile(r"[,;:—–](?=\s)")
_WORD_BEFORE = re.compile(r"([\w().]+)\.+$")
_MARKDOWN_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_MARKDOWN_MARKS = re.compile(r"(\*\*|__|\*|`+|~~|^\s*#{1,6}\s+|^\s*>\s*)", re.MULTILINE)
_LIST_MARKER = re.compile(r"^\s*(?:[-*+•]|\d+[.)])\s+", re.MULTILINE)
_EMOJI = re.compile(
    "["
    "\U0001f000-\U0001faff"  # pictographs, emoticons, transport, symbols
    "\U00002600-\U000027bf"  # misc symbols, dingbats
    "\U0001f1e6-\U0001f1ff"  # flags
    "\U0000fe0f\U0000200d"  # variation selector, zero-width joiner
    "]+"
)
_SPACES = re.compile(r"\s+")
_WORD_END = re.compile(r"(?<=\w)\s")
_SPEAKABLE = re.compile(r"\w")


def clean_for_speech(text: str) -> str:
    """Strip markdown, list markers and emoji; collapse whitespace."""
    text = _MARKDOWN_LINK.sub(r"\1", text)
    text = _LIST_MARKER.sub("", text)
    text = _MARKDOWN_MARKS.sub("", text)
    text = _EMOJI.sub("", text)
    return _SPACES.sub(" ", text).strip()


class SentenceCutter:
    """Cuts a growing text into pieces for TTS.

    The first piece may end at a clause boundary (comma, semicolon, colon, dash) once it
    holds `first_min_chars`, or, failing any boundary, after `first_max_words` words (0: never),
    so the first audio starts early; later pieces end at sentence boundaries. A period after a
    known abbreviation, inside a number (3.5) or an ellipsis followed by a lowercase word does
    not end a sentence. A piece that grows past `max_chars`
    without a boundary is cut at its last clause mark or space.
    """

    def __init__(
        self, *, first_min_chars: int = 18, first_max_words: int = 3, max_chars: int = 220
    ) -> None:
        self.first_min_chars = first_min_chars
        self.first_max_words = first_max_words
        self.max_chars = max_chars
        self._buffer = ""
        self._emitted = 0

    def push(self, text: str) -> list[str]:
        """Add streamed text; return the pieces that are now complete."""
        self._buffer += text
        pieces: list[str] = []
        while True:
            cut = self._find_cut()
            if cut is None:
                break
            piece, self._buffer = self._buffer[:cut], self._buffer[cut:]
            self._keep(piece, pieces)
        return pieces

    def flush(self) -> list[str]:
        """The rest of the text, at the end of the stream."""
        pieces: list[str] = []
        rest, self._buffer = self._buffer, ""
        self._keep(rest, pieces)
        return pieces

    def _keep(self, piece: str, pieces: list[str]) -> None:
        cleaned = clean_for_speech(piece)
        if _SPEAKABLE.search(cleaned):
            pieces.append(cleaned)
            self._emitted += 1

    def _find_cut(self) -> int | None:
        buffer = self._buffer
        for match in _SENTENCE_END.finditer(buffer):
            if self._is_sentence_end(buffer, match):
                return match.end()
        if self._emitted == 0:
            for match in _CLAUSE_END.finditer(buffer):
                if len(clean_for_speech(buffer[: match.end()])) >= self.first_min_chars:
                    return match.end()
            if self.first_max_words:
                # Words followed by a space are complete; cut after the Nth of them.
                ends = [m.start() for m in _WORD_END.finditer(buffer.lstrip())]
                if len(ends) >= self.first_max_words:
                    return ends[self.first_max_words - 1] + len(buffer) - len(buffer.lstrip())
        if len(buffer) > self.max_chars:
            window = buffer[: self.max_chars]
            clause = max(window.rfind(mark) for mark in ",;:")
            if clause > self.max_chars // 3:
                return clause + 1
            space = window.rfind(" ")
            return space if space > 0 else self.max_chars
        return None

    @staticmethod
    def _is_sentence_end(buffer: str, match: re.Match[str]) -> bool:
        marks = match.group(0)
        if marks.startswith(("...", "…")):
            # An ellipsis ends a sentence only when a capitalised word follows.
            following = buffer[match.end() :].lstrip()
            if not following:
                return False
            return following[0].isupper()
        if marks[0] == "." and len(marks.rstrip("\"'”’»)]*_")) == 1:
            before = _WORD_BEFORE.search(buffer[: match.start() + 1])
            if before and before.group(1).lower() in ABBREVIATIONS:
                return False
        return True
