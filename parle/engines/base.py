"""The small Protocols every engine implements, and the values they exchange."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, TypedDict

from parle.audio import AudioChunk, FloatAudio


class ChatMessage(TypedDict):
    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True, slots=True)
class Transcript:
    """What a transcriber heard. `text` is empty for silence, noise or hallucinations."""

    text: str
    language: str
    duration_s: float
    confidence: float

    @property
    def is_empty(self) -> bool:
        return not self.text.strip()


# The language codes Whisper (every size, both backends) can be asked to transcribe.
WHISPER_LANGUAGES = frozenset(
    """
    af am ar as az ba be bg bn bo br bs ca cs cy da de el en es et eu fa fi fo fr gl gu ha haw
    he hi hr ht hu hy id is it ja jw ka kk km kn ko la lb ln lo lt lv mg mi mk ml mn mr ms mt
    my ne nl nn no oc pa pl ps pt ro ru sa sd si sk sl sn so sq sr su sv sw ta te tg th tk tl
    tr tt uk ur uz vi yi yo yue zh
    """.split()  # noqa: SIM905
)


class Transcriber(Protocol):
    """16 kHz mono float32 audio in, a finished `Transcript` out.

    Every method raises `parle.errors.EngineError` subclasses only."""

    # The language codes `transcribe(language=...)` accepts.
    languages: frozenset[str]

    def load(self) -> None: ...

    async def transcribe(self, audio: FloatAudio, *, language: str | None = None) -> Transcript: ...

    async def transcribe_fitted(
        self, audio: FloatAudio, *, language: str | None = None
    ) -> Transcript:
        """`transcribe` with the encoder window fitted to the clip where the engine has one
        (cheaper for short clips: the live door decodes a turn several times while it is
        spoken); an engine without one transcribes as usual."""
        ...

    def close(self) -> None:
        """Release what `load` took (threads, devices); idempotent."""
        ...


class Synthesizer(Protocol):
    """Text in, a stream of PCM16 chunks out, at `sample_rate`."""

    sample_rate: int

    @property
    def voices(self) -> list[str]:
        """The voices `synthesize(voice=...)` accepts (after `load`)."""
        ...

    def load(self) -> None: ...

    def close(self) -> None:
        """Release what `load` took (threads, devices); idempotent."""
        ...

    def synthesize(
        self, text: str, *, voice: str | None = None, speed: float | None = None
    ) -> AsyncGenerator[AudioChunk, None]: ...


class ChatModel(Protocol):
    """A streaming chat LLM; closing the iterator aborts the generation."""

    def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> AsyncGenerator[str, None]: ...

    async def aclose(self) -> None:
        """Close the connections to the model server."""
        ...


@dataclass(frozen=True)
class GrammarMatch:
    """One problem a grammar checker found in a text, as the checker states it; what the
    tutor makes of it (an explanation for a learner, a kind) is `parle.tutor.grammar`'s."""

    offset: int  # in characters, into the checked text
    length: int
    replacements: tuple[str, ...]  # best first; empty when the checker suggests none
    message: str  # the checker's own wording
    rule: str  # the checker's rule id (LanguageTool: GENERAL_VERB_AGREEMENT_ERRORS, ...)
    category: str  # the checker's category id (LanguageTool: GRAMMAR, TYPOS, ...)


class GrammarChecker(Protocol):
    """A grammar checker for the learner's words (LanguageTool on loopback). It never fails a
    turn: every failure, a time limit included, is a `GrammarUnavailableError`."""

    async def check(self, text: str) -> list[GrammarMatch]: ...

    async def aclose(self) -> None:
        """Close the connections to the checker."""
        ...
