"""Phone callers, with the framework's fake job context and real SDK participants (no LiveKit
server): a SIP participant is recognised, greeted as a caller, and hanging up ends the session.
The worker's plugins talk to the real PARLE server on loopback (instant engines)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from livekit import rtc
from livekit.agents import CloseEvent
from livekit.agents.testing import fake_job_context
from livekit.agents.voice.events import CloseReason
from livekit.rtc._proto import handle_pb2, participant_pb2

from agent import worker
from agent.tutor import GREETING, PHONE_GREETING, TutorAgent
from tests.doubles.stack import Stack, make_stack

SIP = participant_pb2.ParticipantKind.PARTICIPANT_KIND_SIP
STANDARD = participant_pb2.ParticipantKind.PARTICIPANT_KIND_STANDARD


def remote_participant(identity: str, kind: int, reason: int = 0, **attributes: str) -> Any:
    """A real `rtc.RemoteParticipant`, built from the SDK's own protocol message."""
    info = participant_pb2.ParticipantInfo(
        sid=f"PA_{identity}", identity=identity, name=identity, kind=kind,  # type: ignore[arg-type]
        attributes=attributes, disconnect_reason=reason,  # type: ignore[arg-type]
    )  # fmt: skip
    owned = participant_pb2.OwnedParticipant(handle=handle_pb2.FfiOwnedHandle(id=0), info=info)
    return rtc.RemoteParticipant(owned)


def caller(reason: int = 0) -> Any:
    return remote_participant(
        "sip_5511999990000", SIP, reason, **{"sip.phoneNumber": "+5511999990000"}
    )


@pytest.fixture(scope="module")
def userdata() -> dict[str, Any]:
    proc = SimpleNamespace(userdata={})
    worker.prewarm(proc)  # type: ignore[arg-type]
    return proc.userdata


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    from agent.plugins import _http
    from parle.config import load_settings

    with make_stack() as stack:
        settings = load_settings(server_url=stack.url, llm_url=f"{stack.llm.url}/v1", level="B1")
        monkeypatch.setattr(_http, "_settings", settings)
        yield stack


def test_sip_callers_are_recognised_by_kind() -> None:
    phone = caller()
    assert worker.is_phone_call(phone)
    assert phone.attributes["sip.phoneNumber"] == "+5511999990000"
    browser = remote_participant("learner-1", STANDARD, **{"parle.level": "c1"})
    assert not worker.is_phone_call(browser)
    assert worker.starting_level(browser) == "C1"


async def test_a_caller_is_greeted_by_phone_and_hanging_up_ends_the_session(
    stack: Stack, userdata: dict[str, Any]
) -> None:
    room = rtc.Room()
    # The agent's own participant, as `Room.connect` would set it (never connected: nothing is
    # published, so the greeting is not heard; the framework logs that and goes on).
    agent_info = participant_pb2.ParticipantInfo(sid="PA_agent", identity="agent", kind=STANDARD)
    room._local_participant = rtc.LocalParticipant(
        room._room_queue,
        participant_pb2.OwnedParticipant(handle=handle_pb2.FfiOwnedHandle(id=0), info=agent_info),
    )
    phone = caller()
    closed: asyncio.Future[CloseEvent] = asyncio.get_running_loop().create_future()
    with fake_job_context(room=room):
        session, reporter = await worker.start_tutoring(room, phone, userdata)
        session.on("close", lambda event: closed.done() or closed.set_result(event))
        try:
            agent = session.current_agent
            assert isinstance(agent, TutorAgent)
            assert agent.greeting == PHONE_GREETING != GREETING
            assert agent.level == "B1"  # no level attribute on a phone line: the server's default

            # The caller's line joins the room, and the session links to it.
            room._remote_participants[phone.identity] = phone
            room.emit("participant_connected", phone)
            await asyncio.sleep(0.1)
            assert session.room_io.linked_participant is phone

            # Someone else leaving changes nothing; the caller hanging up closes the session.
            other = remote_participant("someone", STANDARD, participant_pb2.CLIENT_INITIATED)
            room.emit("participant_disconnected", other)
            await asyncio.sleep(0.2)
            assert not closed.done()
            del room._remote_participants[phone.identity]
            room.emit("participant_disconnected", caller(participant_pb2.CLIENT_INITIATED))
            event = await asyncio.wait_for(closed, 10)
            assert event.reason == CloseReason.PARTICIPANT_DISCONNECTED
            await reporter.aclose()
        finally:
            await session.aclose()


def test_room_options_take_16k_audio_from_the_linked_learner() -> None:
    options = worker.room_options(caller())
    assert options.participant_identity == "sip_5511999990000"
    assert options.close_on_disconnect is True
    audio = options.get_audio_input_options()
    assert audio is not None and audio.sample_rate == 16_000
