"""The correction side channel: the LLM may write, after its spoken reply, a block

    <correcao>{"original": "…", "corrected": "…", "explanation": "…", "kind": "…"}</correcao>

Everything before the marker is spoken; the block never is. It is parsed once the reply ends
and sent on its own; a malformed block is dropped without touching the turn.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from typing import Literal

MARKERS = ("<correcao>", "<correção>")
_END = re.compile(r"</corre(?:c|ç)(?:a|ã)o>", re.IGNORECASE)
KINDS = (
    "grammar",
    "vocabulary",
    "pronunciation",
    "agreement",
    "tense",
    "preposition",
    "ser_estar",
    "article",
    "other",
)


@dataclass(frozen=True)
class Correction:
    original: str
    corrected: str
    explanation: str
    kind: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


# Where a correction came from: the LLM's side channel, the grammar checker (LanguageTool) or
# PARLE's own learner-error rules (parle.tutor.learner_errors).
Source = Literal["llm", "checker", "rules"]


@dataclass(frozen=True)
class Finding:
    """One error found in the learner's words: the correction as the learner will see it,
    where it came from, and where it is in the text (`start`/`end`: character offsets into
    the checked text; -1 when unknown, as for the LLM's block)."""

    correction: Correction
    source: Source
    rule: str
    start: int = -1
    end: int = -1


class SideChannelSplitter:
    """Separates streamed LLM text into speech and the block after the marker.

    `push` returns the text that is safe to speak now; a tail that could be the start of a
    marker (`<cor`) is held back until the next token settles it.
    """

    def __init__(self) -> None:
        self._held = ""
        self._block: list[str] | None = None

    @property
    def block(self) -> str | None:
        return "".join(self._block) if self._block is not None else None

    def push(self, text: str) -> str:
        if self._block is not None:
            self._block.append(text)
            return ""
        buffer = self._held + text
        lower = buffer.lower()
        for marker in MARKERS:
            at = lower.find(marker)
            if at >= 0:
                self._block = [buffer[at + len(marker) :]]
                self._held = ""
                return buffer[:at]
        keep = _partial_marker_length(lower)
        self._held = buffer[len(buffer) - keep :] if keep else ""
        return buffer[: len(buffer) - keep]

    def flush(self) -> str:
        """The held-back tail at the end of the stream (it was not a marker after all)."""
        held, self._held = self._held, ""
        return held if self._block is None else ""


def _partial_marker_length(lower: str) -> int:
    """Length of the longest suffix of `lower` that is a proper prefix of a marker."""
    best = 0
    for marker in MARKERS:
        for size in range(min(len(marker) - 1, len(lower)), 0, -1):
            if lower.endswith(marker[:size]):
                best = max(best, size)
                break
    return best


def parse_correction(block: str | None) -> Correction | None:
    """The correction in a side-channel block, or None when it is absent or malformed."""
    if not block:
        return None
    body = _END.split(block, maxsplit=1)[0]
    start, end = body.find("{"), body.rfind("}")
    if start < 0 or end <= start:
        return None
    try:
        data = json.loads(body[start : end + 1])
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    fields = {}
    for key in ("original", "corrected", "explanation"):
        value = data.get(key)
        if not isinstance(value, str) or not value.strip():
            return None
        fields[key] = value.strip()[:500]
    if fields["original"] == fields["corrected"]:
        return None  # nothing was corrected
    kind = data.get("kind")
    kind = kind.strip().lower() if isinstance(kind, str) else "other"
    return Correction(kind=kind if kind in KINDS else "other", **fields)
