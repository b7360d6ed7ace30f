"""The tutor's policy: what a learner's level changes in a turn, decided in one place for
every door (the server's `TurnPipeline` and the LiveKit `TutorAgent`).

Per learner utterance, `TutorPolicy.turn` estimates the utterance's CEFR level (off the event
loop: the estimator is CPU or GPU work), feeds it to the session's `LevelTracker` (smoothing),
and returns the `TurnSettings` the reply is made with: the level, the system prompt and the
reminder, the reply's `max_tokens`, the TTS speed, the endpointing delays and the correction
strategy.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from parle.engines.base import ChatMessage
from parle.tutor.levels import (
    CorrectionStrategy,
    LevelEstimate,
    LevelEstimator,
    LevelTracker,
    LexicalLevelEstimator,
    policy_for,
)
from parle.tutor.prompts import Region, build_messages, system_prompt, turn_reminder

if TYPE_CHECKING:
    from parle.config import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TurnSettings:
    """Everything the learner's level decides for one reply.

    `estimate` is this utterance's own estimate (None when there was no estimator or nothing
    was said); `changed` says the smoothed level moved with it.
    """

    level: str
    region: Region
    system_prompt: str
    reminder: str
    max_tokens: int
    tts_speed: float
    min_endpointing_delay_s: float
    max_endpointing_delay_s: float
    correction: CorrectionStrategy
    estimate: LevelEstimate | None = None
    changed: bool = False

    def messages(
        self,
        history: Sequence[ChatMessage],
        user_text: str,
        *,
        context: Sequence[str] = (),
        hint: str | None = None,
    ) -> list[ChatMessage]:
        """The LLM request's messages: the system prompt, the session's `context` notes, the
        history, the learner's words, the reminder (never before the history: the prefix
        cache would miss), then a correction `hint`."""
        return build_messages(
            history, user_text, level=self.level, region=self.region, context=context, hint=hint
        )


class TutorPolicy:
    """The level policy of one door: its estimator (shared, loaded) and region."""

    def __init__(self, estimator: LevelEstimator | None = None, *, region: Region = "BR") -> None:
        self.estimator = estimator
        self.region: Region = region

    def settings(
        self, level: str, estimate: LevelEstimate | None = None, *, changed: bool = False
    ) -> TurnSettings:
        """The settings for a learner at `level` (A1..C2)."""
        level = level.upper()
        policy = policy_for(level)
        return TurnSettings(
            level=level,
            region=self.region,
            system_prompt=system_prompt(level, self.region),
            reminder=turn_reminder(level, self.region),
            max_tokens=policy.max_tokens,
            tts_speed=policy.tts_speed,
            min_endpointing_delay_s=policy.min_endpointing_delay_s,
            max_endpointing_delay_s=policy.max_endpointing_delay_s,
            correction=policy.correction,
            estimate=estimate,
            changed=changed,
        )

    async def turn(self, tracker: LevelTracker, text: str) -> TurnSettings:
        """The settings for the reply to `text`, after its estimate moved `tracker` (or not).

        The estimate runs in a worker thread; the tracker is only touched on the event loop,
        so a session's turns see its updates in order. An estimator that fails costs the turn
        nothing but its estimate: the level stays where it was.
        """
        before = tracker.level
        estimate = None
        if self.estimator is not None and text.strip():
            try:
                estimate = await asyncio.to_thread(self.estimator.estimate, text)
            except Exception as exc:
                log.warning("level estimate failed", extra={"error_type": type(exc).__name__})
            else:
                tracker.observe(estimate)
        return self.settings(tracker.level, estimate, changed=tracker.level != before)


def build_estimator(settings: Settings) -> LevelEstimator:
    """The profile's CEFR level estimator, per `PARLE_LEVEL_ESTIMATOR` (not loaded yet)."""
    if settings.level_estimator == "mdeberta":
        from parle.models import classifier_spec, require
        from parle.tutor.mdeberta import MdebertaLevelEstimator

        model = require(classifier_spec(settings), settings)
        return MdebertaLevelEstimator(model.path, device=settings.classifier_device)
    return LexicalLevelEstimator()
