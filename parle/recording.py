"""The pipeline's hook for a learner's long-term record (`parle.store` implements it).

`TurnPipeline` knows nothing of databases: when a turn of a known learner (`TurnOptions.
learner_id`) begins a session it awaits `session_started`, which may give the session the
learner's stored level and profile (bounded in time by the recorder); when the turn ends it
calls `turn_finished`, which only enqueues. Nothing here may delay the audio.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from parle.sessions import SessionMemory
from parle.tutor.corrections import Correction


@dataclass(frozen=True)
class TurnRecord:
    """What a finished turn leaves in a learner's record."""

    transcript: str
    reply: str
    level: str  # the session's smoothed level after this utterance
    estimate: str | None  # this utterance's own estimate
    speech_s: float  # how long the learner spoke (0 for a typed turn)
    timings: dict[str, float | None]
    correction: Correction | None = None

    @property
    def words(self) -> int:
        return len(self.transcript.split())

    @property
    def words_per_minute(self) -> float | None:
        """Speaking rate over the utterance's audio; None for a typed turn or a tiny clip."""
        if self.speech_s < 0.5 or not self.words:
            return None
        return round(self.words * 60.0 / self.speech_s, 1)


class LearnerRecorder(Protocol):
    """Where a pipeline's known learners' sessions and turns go."""

    async def session_started(
        self, memory: SessionMemory, learner_id: str, session_key: str | None
    ) -> None:
        """Called before every reply to a known learner; returns at once unless `memory`
        begins a session for `learner_id` (its first turn, or the session's learner changed).
        May then set `memory.level` and `memory.notes["learner"]`."""
        ...

    def turn_finished(self, memory: SessionMemory, record: TurnRecord) -> None:
        """Enqueue the turn for writing; never blocks, never raises."""
        ...
