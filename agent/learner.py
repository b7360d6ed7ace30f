"""A LiveKit room's learner and their record in the PARLE server's learner store
(`parle.store`).

Who: the participant attribute `parle.learner`, else a phone caller by a keyed hash of their
number (the number itself is never kept), else the participant's identity. Ids follow the
session-id rules; one that breaks them is ignored (the session is anonymous then).

Their record: `LearnerLink` reads the stored level and the tutor's note as the session begins
(`POST /api/agent/sessions`) and sends each finished turn (`POST /api/agent/turns`); the
server records them with the recorder its own doors use.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import re
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
from livekit.agents import AgentSession, ConversationItemAddedEvent, llm

from agent.plugins._http import HttpClientOwner, server_headers, settings
from bridge.agent_records import (
    MAX_REPLY,
    MAX_TRANSCRIPT,
    AgentCorrection,
    AgentSessionStart,
    AgentTurn,
)
from bridge.schemas import AgentTurnReport
from parle.tenants import DEFAULT_TENANT, ID_PATTERN, TENANT_ATTRIBUTE, is_tenant
from parle.tutor.commands import match_command
from parle.tutor.corrections import Correction

if TYPE_CHECKING:
    from agent.tutor import TutorAgent

log = logging.getLogger(__name__)

LEARNER_ATTRIBUTE = "parle.learner"
PHONE_ATTRIBUTE = "sip.phoneNumber"  # set by livekit-sip on a caller's participant

_ID = re.compile(ID_PATTERN)
# The most a session's greeting waits for the learner's record (the server reads it within 1 s).
START_TIMEOUT_S = 2.5


def e164(number: str) -> str | None:
    """A phone number as "+" and its digits (E.164), however it was written: "+55 21
    98765-4321", "5521987654321" and "005521987654321" (the international call prefix) are one
    phone. None when it has no digits."""
    digits = re.sub(r"[^0-9]", "", number)
    if digits.startswith("00"):
        digits = digits[2:]
    return "+" + digits if digits else None


def _keyed_hash(text: str, key: str) -> str:
    digest = (
        hmac.new(key.encode(), text.encode(), hashlib.sha256)
        if key
        else hashlib.sha256(text.encode())
    )
    return digest.hexdigest()


def phone_learner_id(number: str, key: str = "") -> str | None:
    """A caller's learner id: HMAC-SHA256 of their number (`e164`) under `key`
    (`PARLE_PHONE_HASH_KEY`; plain SHA-256 without one), so the same phone is the same
    learner on every call, however the trunk writes the number, and the id does not show it.
    None for a number with no digits."""
    normal = e164(number)
    return "phone-" + _keyed_hash(normal, key)[:32] if normal else None


def call_label(room_name: str, key: str = "") -> str:
    """What a phone call's room is called in PARLE's store, logs and requests: LiveKit's SIP
    bridge names the room after the caller's number (`parle-call-_5521987654321_x7Kq`), so
    the name itself is never kept, only its keyed hash (one label per call)."""
    return "call-" + _keyed_hash(room_name, key)[:24]


def learner_identity(
    participant: Any, *, phone_hash_key: str = "", sip: bool = False
) -> str | None:
    """The learner id of a room participant (`rtc.RemoteParticipant`), or None."""
    attributes: dict[str, str] = dict(getattr(participant, "attributes", {}) or {})
    given = attributes.get(LEARNER_ATTRIBUTE, "").strip()
    if given:
        return given if _ID.fullmatch(given) else None
    if sip:
        return phone_learner_id(attributes.get(PHONE_ATTRIBUTE, ""), phone_hash_key)
    identity = str(getattr(participant, "identity", "") or "")
    return identity if _ID.fullmatch(identity) else None


def learner_tenant(participant: Any) -> str | None:
    """The tenant a room participant's learner belongs to (None: a malformed attribute, which
    is no learner of anyone's)."""
    attributes: dict[str, str] = dict(getattr(participant, "attributes", {}) or {})
    given = attributes.get(TENANT_ATTRIBUTE, "").strip()
    if not given:
        return DEFAULT_TENANT
    return given if is_tenant(given) else None


@dataclass(frozen=True)
class KnownLearner:
    """What the server's store knows as a room's session begins (`AgentSessionStart`)."""

    learner_id: str
    session_id: str
    level: str | None  # their stored level; None for a learner never seen
    note: str | None  # the tutor's note about them; None when there is nothing yet


class LearnerLink(HttpClientOwner):
    """A room's learner at the PARLE server's learner store, over its HTTP API (the agent holds
    no database): `start` reads what the store knows as the session begins, `attach` sends
    each finished turn of the session to be recorded.

    Nothing here delays the audio: turns are sent by one background task, in order, from a
    bounded queue (full: the newest is dropped); a failure is a warning with the error's type
    only (its message may hold the learner's words), once until a send succeeds again.
    """

    def __init__(
        self,
        learner_id: str,
        *,
        tenant: str = DEFAULT_TENANT,
        server_url: str | None = None,
        api_key: str | None = None,
        queue_size: int = 32,
        timeout_s: float = 5.0,
    ) -> None:
        self.learner_id = learner_id
        self.tenant = tenant
        self._url = (server_url or settings().server_url).rstrip("/")
        self._api_key = api_key
        self._timeout_s = timeout_s
        self._session_id: str | None = None
        self._queue: asyncio.Queue[AgentTurn] = asyncio.Queue(maxsize=queue_size)
        self._sender: asyncio.Task[None] | None = None
        self._healthy = True
        self.sent = 0  # turns the server accepted
        self.dropped = 0  # turns lost: a full queue, or a failed send

    async def start(self, session_id: str | None = None) -> KnownLearner | None:
        """Begin the learner's session (named `session_id` in their record when it follows
        the session-id rules): their stored level and note, or None when the server does not
        answer in time (the session then starts as for a new learner)."""
        body: dict[str, str] = {"learner_id": self.learner_id, "tenant": self.tenant}
        if session_id and _ID.fullmatch(session_id):
            body["session_id"] = session_id
        try:
            response = await self.client().post(
                self._url + "/api/agent/sessions",
                json=body,
                headers=server_headers(self._api_key),
                timeout=START_TIMEOUT_S,
            )
            response.raise_for_status()
            known = AgentSessionStart.model_validate(response.json())
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("learner profile not read", extra={"error_type": type(exc).__name__})
            return None
        self._session_id = known.session_id
        return KnownLearner(self.learner_id, known.session_id, known.level, known.note)

    def attach(self, session: AgentSession[Any], tutor: TutorAgent) -> None:
        """Record each LLM reply to the learner in `session`, with the learner's message it
        answers. As at the server's doors, the greeting, a scenario's opener and the answers to
        spoken commands are no turns, nor is a reply cut off before the LLM finished it."""
        heard: list[llm.ChatMessage] = []  # the learner's last message, still unanswered

        @session.on("conversation_item_added")
        def _on_item(event: ConversationItemAddedEvent) -> None:
            item = event.item
            if not isinstance(item, llm.ChatMessage):
                return
            text = item.text_content or ""
            if item.role == "user":
                heard[:] = [] if match_command(text) is not None or not text.strip() else [item]
            elif item.role == "assistant" and heard:
                # Told apart by what the LLM wrote: the greeting may come after the learner's
                # first words, a command's answer after a command.
                written = tutor.written_reply(text, interrupted=item.interrupted)
                if written is None:
                    return
                try:
                    turn = turn_of(heard.pop(), item, written[1], tutor, self)
                except ValueError as exc:  # pydantic's: never expected, never worth the turn
                    self._failed("invalid", exc)
                else:
                    self.record(turn)

    def record(self, turn: AgentTurn) -> None:
        """Queue `turn` for the server; never blocks, never raises."""
        if self._sender is None:
            self._sender = asyncio.create_task(self._send_loop(), name="parle-learner-turns")
        try:
            self._queue.put_nowait(turn)
        except asyncio.QueueFull:
            self._failed("queue_full", None)

    @property
    def session_id(self) -> str:
        """The session's id in the learner's record (made here when `start` got no answer)."""
        if self._session_id is None:
            self._session_id = f"agent-{uuid.uuid4().hex[:12]}"
        return self._session_id

    async def _send_loop(self) -> None:
        while True:
            turn = await self._queue.get()
            try:
                response = await self.client().post(
                    self._url + "/api/agent/turns",
                    content=turn.model_dump_json(exclude_none=True),
                    headers={**server_headers(self._api_key), "Content-Type": "application/json"},
                    timeout=self._timeout_s,
                )
                response.raise_for_status()
            except Exception as exc:  # whatever it was, the sender goes on with the next turn
                self._failed("send", exc)
            else:
                self.sent += 1
                if not self._healthy:
                    self._healthy = True
                    log.info("learner turns recorded again")
            finally:
                self._queue.task_done()

    def _failed(self, op: str, exc: BaseException | None) -> None:
        self.dropped += 1
        if self._healthy:
            self._healthy = False
            extra: dict[str, Any] = {"op": op}
            if exc is not None:
                extra["error_type"] = type(exc).__name__
            log.warning("learner turn not recorded", extra=extra)

    async def aclose(self, *, timeout_s: float = 5.0) -> None:
        """Send what is queued (at most `timeout_s`), then let go of the connection."""
        if self._sender is not None:
            try:
                await asyncio.wait_for(self._queue.join(), timeout_s)
            except TimeoutError:
                self.dropped += self._queue.qsize()
                log.warning("learner turns left unsent", extra={"pending": self._queue.qsize()})
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sender
            self._sender = None
        await self.close_client()


def turn_of(
    heard: llm.ChatMessage,
    reply: llm.ChatMessage,
    correction: Correction | None,
    tutor: TutorAgent,
    link: LearnerLink,
) -> AgentTurn:
    """One turn's record from the learner's message and the tutor's reply (with the correction
    written after it): the level the tutor is at after it, the utterance's estimate, how long
    the learner spoke, and the latencies the framework measured (as `POST /api/agent/metrics`
    has them)."""
    said = heard.metrics
    started, stopped = said.get("started_speaking_at"), said.get("stopped_speaking_at")
    speech_s = max(0.0, stopped - started) if started and stopped else 0.0
    transcript = (heard.text_content or "").strip()
    text = (reply.text_content or "").strip()
    return AgentTurn(
        session_id=link.session_id,
        learner_id=link.learner_id,
        tenant=link.tenant,
        transcript=transcript[:MAX_TRANSCRIPT],  # a record, cut, rather than none
        reply=text[:MAX_REPLY],
        level=tutor.level,
        estimate=tutor.estimate_of(transcript),
        speech_s=min(speech_s, 600.0),
        timings=AgentTurnReport(
            end_of_turn_s=said.get("end_of_turn_delay"),
            stt_s=said.get("transcription_delay"),
            llm_ttft_s=reply.metrics.get("llm_node_ttft"),
            tts_ttfb_s=reply.metrics.get("tts_node_ttfb"),
            end_to_end_s=reply.metrics.get("e2e_latency"),
        ),
        correction=None if correction is None else AgentCorrection(**correction.as_dict()),
    )
