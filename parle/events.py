"""What a turn produces, as every door sees it: the events of a turn (`TurnEvent`), its
timings, the per-turn options a client may choose, and the mutable state of a turn in
progress. The pipeline (`parle.turn`) and the lesson turns (`parle.lessons`) both build on
these; how each door sends them is `parle.wire`.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import ClassVar, Literal

from parle.audio import AudioChunk
from parle.tenants import DEFAULT_TENANT
from parle.tutor.corrections import Correction

Stage = Literal["stt", "llm", "tts"]


def elapsed_ms(start: float, end: float | None = None) -> float:
    """Milliseconds from `start` to `end` (default: now), both `time.perf_counter()` values."""
    return round(((time.perf_counter() if end is None else end) - start) * 1000.0, 1)


@dataclass
class TurnTimings:
    """Stage timings of one turn, in milliseconds from the moment its audio arrived."""

    stt_ms: float = 0.0
    llm_first_token_ms: float | None = None
    llm_ms: float = 0.0
    tts_first_chunk_ms: float | None = None
    tts_ms: float = 0.0
    ttfa_ms: float | None = None
    total_ms: float = 0.0

    def as_dict(self) -> dict[str, float | None]:
        return asdict(self)


@dataclass(frozen=True)
class StageEvent:
    kind: ClassVar[str] = "stage"
    stage: Stage


@dataclass(frozen=True)
class TranscriptEvent:
    kind: ClassVar[str] = "transcript"
    text: str
    stt_ms: float


@dataclass(frozen=True)
class ResponseDeltaEvent:
    kind: ClassVar[str] = "response_delta"
    delta: str


@dataclass(frozen=True)
class ResponseEvent:
    kind: ClassVar[str] = "response"
    text: str
    llm_ms: float


@dataclass(frozen=True)
class AudioEvent:
    kind: ClassVar[str] = "audio"
    chunk: AudioChunk
    index: int
    text: str


@dataclass(frozen=True)
class CompleteEvent:
    kind: ClassVar[str] = "complete"
    transcript: str
    response: str
    timings: TurnTimings


@dataclass(frozen=True)
class LevelEvent:
    """The learner's level after this utterance (`level`, smoothed over the session) and this
    utterance's own estimate and scores."""

    kind: ClassVar[str] = "level"
    level: str
    estimate: str
    scores: dict[str, float]


@dataclass(frozen=True)
class CorrectionEvent:
    """The correction the tutor made, from the side channel; never spoken."""

    kind: ClassVar[str] = "correction"
    correction: Correction


@dataclass(frozen=True)
class CommandEvent:
    """This turn is answered without an LLM reply (parle/lessons.py): a spoken `command`
    (slower, faster, repeat, level, translate, end) or a lesson's `open`ing; with the speed,
    level or scenario it set."""

    kind: ClassVar[str] = "command"
    command: str
    level: str | None = None
    speed: float | None = None
    scenario: str | None = None


TurnEvent = (
    StageEvent
    | TranscriptEvent
    | LevelEvent
    | ResponseDeltaEvent
    | ResponseEvent
    | CorrectionEvent
    | CommandEvent
    | AudioEvent
    | CompleteEvent
)


@dataclass(frozen=True)
class TurnOptions:
    """Per-turn choices a client may make."""

    voice: str | None = None
    speed: float | None = None
    level: str | None = None
    max_tokens: int | None = None
    language: str | None = None  # the STT language for this turn (default: the pinned one)
    learner_id: str | None = None  # who is speaking (their store record); None = anonymous
    tenant: str = DEFAULT_TENANT  # whose the session and the learner are (parle.tenants)
    scenario: str | None = None  # the role-play lesson this session follows, by id
    sequential: bool = False


@dataclass
class TurnState:
    """A turn in progress: when its audio arrived, its timings so far, the reply as far as
    it was written, and how many audio chunks have left."""

    started: float
    timings: TurnTimings = field(default_factory=TurnTimings)
    response: str = ""
    audio_index: int = 0
    tts_started: bool = False
    llm_correction: Correction | None = None  # the LLM's own block, once the reply is written
