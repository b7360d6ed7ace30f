"""What the LiveKit agent tells the server about its learner (`POST /api/agent/sessions`,
`POST /api/agent/turns`; routes in `bridge/routes/learners.py`).

The agent holds no database: it names the learner when a room's session starts and sends each
finished turn, and the server records them with the same recorder as its own doors. A turn on
the wire is `parle.recording.TurnRecord`'s fields (`AgentTurn.record()` makes one), with the
agent's own latencies (`AgentTurnReport`, seconds) as its timings. Kept apart from the routes
so the agent imports pydantic and the core only, never the server's stack.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from bridge.openapi import ID_SCHEMA
from bridge.schemas import AgentTurnReport
from parle.recording import TurnRecord
from parle.tenants import DEFAULT_TENANT, TENANT_PATTERN
from parle.tutor.corrections import KINDS, Correction
from parle.tutor.levels import LEVELS

Level = Annotated[str, Field(pattern=f"^({'|'.join(LEVELS)})$")]
# The session-id rules (at most 128 characters...) are checked by the routes (`bridge.inputs`),
# so that a bad id gets its stable code (`bad_learner_id`, `bad_session_id`). A required id
# is not empty here: the routes take an empty session id for an absent one (a new session).
# The schema states the rule all the same.
Id = Annotated[str, Field(json_schema_extra=ID_SCHEMA)]
RequiredId = Annotated[str, Field(min_length=1, json_schema_extra=ID_SCHEMA)]
Tenant = Annotated[str, Field(pattern=TENANT_PATTERN)]
MAX_TRANSCRIPT, MAX_REPLY = 4000, 8000


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AgentSessionRequest(_In):
    """A room's session begins for `learner_id`; `session_id` names it in their record (the
    agent sends its room's name; the server makes one when it is absent)."""

    learner_id: Id
    session_id: Id | None = None
    tenant: Tenant = DEFAULT_TENANT  # the tenant the room's token was made for


class AgentSessionStart(BaseModel):
    """What the tutor should know as the session begins: the learner's stored level (None for
    a learner never seen, or while the store is unreachable) and the note that follows the
    system prompt (None when there is nothing to say yet)."""

    session_id: str
    level: str | None
    note: str | None


class AgentCorrection(_In):
    original: Annotated[str, Field(min_length=1, max_length=500)]
    corrected: Annotated[str, Field(min_length=1, max_length=500)]
    explanation: Annotated[str, Field(max_length=500)] = ""
    kind: Annotated[str, Field(max_length=32)] = "other"


class AgentTurn(_In):
    """One finished turn of an agent session (`session_id` from `AgentSessionStart`)."""

    session_id: RequiredId
    learner_id: Id
    tenant: Tenant = DEFAULT_TENANT
    transcript: Annotated[str, Field(min_length=1, max_length=MAX_TRANSCRIPT)]
    reply: Annotated[str, Field(max_length=MAX_REPLY)]
    level: Level  # the session's level after this utterance
    estimate: Level | None = None  # this utterance's own estimate (None: typed, or no estimate)
    speech_s: Annotated[float, Field(ge=0, le=600)] = 0.0  # 0: a typed turn
    timings: AgentTurnReport = Field(default_factory=AgentTurnReport)
    correction: AgentCorrection | None = None

    def record(self) -> TurnRecord:
        """The turn as the store records every door's turns; the agent's latencies in
        milliseconds, as the server's own timings are (`end_to_end_s` -> `end_to_end_ms`)."""
        timings: dict[str, float | None] = {
            name.removesuffix("_s") + "_ms": round(value * 1000.0, 1)
            for name, value in self.timings.model_dump().items()
            if value is not None
        }
        correction = None
        if self.correction is not None:
            c = self.correction
            kind = c.kind if c.kind in KINDS else "other"
            correction = Correction(c.original, c.corrected, c.explanation, kind)
        return TurnRecord(
            transcript=self.transcript,
            reply=self.reply,
            level=self.level,
            estimate=self.estimate,
            speech_s=self.speech_s,
            timings=timings,
            correction=correction,
        )
