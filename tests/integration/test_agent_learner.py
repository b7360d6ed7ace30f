"""The LiveKit agent and the learner store: the agent holds no database, the PARLE server's
`/api/agent/sessions` and `/api/agent/turns` record its learners with the recorder every door
uses. A learner's second room starts at their stored level with the tutor's note after the
instructions (the scripted LLM records every request); each reply becomes a turn of their
record (`GET /api/learners/{id}`); `/api/token` carries `parle.learner`; the new routes check
their input and the keys; an unreachable server never disturbs the conversation.

Rooms are the framework's fake job context with real SDK participants (no LiveKit server), as
in tests/integration/test_agent_phone.py; the server is the PARLE app on real uvicorn with
instant engines and a SQLite store."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from livekit import rtc
from livekit.agents import AgentSession, ConversationItemAddedEvent, llm, room_io
from livekit.agents.testing import fake_job_context
from livekit.plugins import silero
from livekit.rtc._proto import handle_pb2, participant_pb2

from agent import worker
from agent.learner import LearnerLink, phone_learner_id
from agent.plugins import ParleLLM, ParleSTT, ParleTTS
from agent.tutor import TutorAgent
from harness.uvicorn_thread import free_port
from harness.voice import LearnerMicrophone, Speaker
from parle.tenants import key_tenant
from parle.tutor.prompts import system_prompt, turn_reminder
from tests.doubles.stack import Stack, make_stack
from tests.integration.test_agent_phone import SIP, STANDARD, remote_participant

KEY = {"Authorization": "Bearer k1"}
BLOCK = (
    '<correcao>{"original": "Eu quer um café", "corrected": "Eu quero um café", '
    '"explanation": "querer: eu quero", "kind": "grammar"}</correcao>'
)
REPLY = ["Que bom", ", Ana!", " Você gosta", " de Lisboa?", " " + BLOCK]
SPOKEN = "Que bom, Ana! Você gosta de Lisboa?"
FIRST = "Olá, meu nome é Ana. Eu moro em Lisboa. Eu quer um café."


@pytest.fixture(scope="module")
def userdata() -> dict[str, Any]:
    proc = SimpleNamespace(userdata={})
    worker.prewarm(proc)  # type: ignore[arg-type]
    return proc.userdata


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Stack]:
    from agent.plugins import _http
    from parle.config import load_settings

    # k1: the worker's key and the app's, of the tenant named `default` (the one a participant
    # without `parle.tenant` belongs to); tests/integration/test_tenants.py has several.
    with make_stack(
        api_keys="default:k1",
        agent_api_keys="k1",
        database_url=f"sqlite:///{tmp_path / 'learners.db'}",
    ) as stack:
        stack.llm.tokens = list(REPLY)
        agent_settings = load_settings(
            server_url=stack.url, llm_url=stack.llm.url, server_api_key="k1", level="A2"
        )
        monkeypatch.setattr(_http, "_settings", agent_settings)
        # The room is never connected: no media through it (its audio would never play out,
        # and a reply would wait for it forever); the conversation runs as typed turns.
        monkeypatch.setattr(worker, "room_options", lambda participant: room_io.RoomOptions(
            participant_identity=participant.identity, audio_input=False, audio_output=False,
            text_input=False, text_output=False, close_on_disconnect=False,
        ))  # fmt: skip
        yield stack


def empty_room() -> rtc.Room:
    """A room with the agent's own participant, as `Room.connect` would set it (never
    connected: nothing is published; the framework logs that and goes on)."""
    room = rtc.Room()
    info = participant_pb2.ParticipantInfo(sid="PA_agent", identity="agent", kind=STANDARD)
    room._local_participant = rtc.LocalParticipant(
        room._room_queue,
        participant_pb2.OwnedParticipant(handle=handle_pb2.FfiOwnedHandle(id=0), info=info),
    )
    return room


async def room_session(
    participant: Any, userdata: dict[str, Any], *texts: str
) -> tuple[TutorAgent, list[str]]:
    """One room through the worker's `start_tutoring`: the learner joins, types `texts` (the
    same `llm_node` as speech), leaves; the job's shutdown callbacks run. Returns the agent and
    what it said."""
    room = empty_room()
    job = fake_job_context(room=room)
    with job as ctx:
        session, reporter = await worker.start_tutoring(room, participant, userdata)
        agent = session.current_agent
        assert isinstance(agent, TutorAgent)
        said: list[str] = []
        try:
            for text in texts:
                result = await session.run(user_input=text)
                said += [
                    (e.item.text_content or "").strip()
                    for e in result.events
                    if getattr(e, "type", "") == "message" and e.item.role == "assistant"
                ]
        finally:
            await session.aclose()
            await reporter.aclose()
            for callback in ctx._shutdown_callbacks:
                await callback("test over")  # as the job's shutdown does: the last turns go
    return agent, said


def report(stack: Stack, learner_id: str) -> dict[str, Any]:
    response = httpx.get(f"{stack.url}/api/learners/{learner_id}", headers=KEY, timeout=10)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def export(stack: Stack, learner_id: str) -> dict[str, Any]:
    response = httpx.get(f"{stack.url}/api/learners/{learner_id}/export", headers=KEY, timeout=10)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_returning_learner_starts_at_the_stored_level_and_is_known(
    stack: Stack, userdata: dict[str, Any]
) -> None:
    # First room: the app chose B2 (`parle.level`); the learner says who they are.
    first = remote_participant(
        "learner-1", STANDARD, **{"parle.learner": "ana", "parle.level": "b2"}
    )
    agent, said = await room_session(first, userdata, FIRST)
    assert agent.level == "B2" and said == [SPOKEN]
    request = stack.llm.requests[-1]["messages"]
    assert request[0] == {"role": "system", "content": system_prompt("B2")}
    assert request[1] == {"role": "user", "content": FIRST}  # a new learner: no note yet

    ana = report(stack, "ana")
    assert ana["level"] == "B2" and ana["turns"] == 1 and len(ana["sessions"]) == 1
    assert ana["facts"] == {"name": ["Ana"], "city": ["Lisboa"]}
    assert ana["corrections"]["recent"][0]["corrected"] == "Eu quero um café"
    (turn,) = export(stack, "ana")["turns"]
    assert turn["transcript"] == FIRST and turn["reply"] == SPOKEN and turn["level"] == "B2"
    assert turn["speech_s"] == 0 and turn["words_per_minute"] is None  # typed
    assert turn["timings"]["llm_ttft_ms"] > 0

    # Second room, no level given: where Ana left off, and the tutor knows her.
    stack.llm.tokens = ["Bom dia, Ana!", " Tudo bem?"]
    again = remote_participant("learner-2", STANDARD, **{"parle.learner": "ana"})
    agent, said = await room_session(again, userdata, "Bom dia, professora.")
    assert agent.level == "B2" and said == ["Bom dia, Ana! Tudo bem?"]
    request = stack.llm.requests[-1]["messages"]
    # The instructions byte-identical to any B2 learner's (the prefix cache), the note after.
    assert request[0] == {"role": "system", "content": system_prompt("B2")}
    note = request[1]
    assert note["role"] == "system" and "Ana" in note["content"] and "Lisboa" in note["content"]
    assert request[-1] == {"role": "system", "content": turn_reminder("B2")}

    ana = report(stack, "ana")
    assert ana["turns"] == 2 and [s["turns"] for s in ana["sessions"]] == [1, 1]
    assert all(s["session_id"] for s in ana["sessions"])


async def test_commands_and_the_greeting_are_no_turns_and_a_caller_is_known_by_phone(
    stack: Stack, userdata: dict[str, Any]
) -> None:
    caller = remote_participant(
        "sip_5511999990000", SIP, **{"sip.phoneNumber": "+55 11 99999-0000"}
    )
    _, said = await room_session(caller, userdata, "Mais devagar, por favor.", FIRST)
    assert said[-1] == SPOKEN
    learner_id = phone_learner_id("+5511999990000")
    assert learner_id is not None
    assert learner_id.startswith("phone-") and "99999" not in learner_id
    (turn,) = export(stack, learner_id)["turns"]  # the command's answer is not recorded
    assert turn["transcript"] == FIRST
    # A participant whose identity breaks the rules is anonymous: nothing asked, nothing kept.
    requests = len(stack.llm.requests)
    assert await worker.learner_of(remote_participant("a b", STANDARD), phone=False) == (None, None)
    assert len(stack.llm.requests) == requests


async def wait_until(predicate: Callable[[], bool], within_s: float) -> None:
    deadline = time.monotonic() + within_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_a_spoken_turn_keeps_its_estimate_and_speaking_rate(
    stack: Stack, audio_dir: Path
) -> None:
    stack.llm.tokens = ["Muito bem!", " E você?"]
    link = LearnerLink("bia")
    known = await link.start("sala-1")
    assert known is not None and known.level is None and known.note is None
    assert known.session_id == "sala-1"
    microphone, speaker = LearnerMicrophone(), Speaker()
    session: AgentSession[Any] = AgentSession(
        stt=ParleSTT(server_url=stack.url, api_key="k1"),
        llm=ParleLLM(base_url=stack.llm.url),
        tts=ParleTTS(server_url=stack.url, api_key="k1"),
        vad=silero.VAD.load(),
        turn_handling={"turn_detection": "vad", "interruption": {"mode": "vad"}},
    )
    session.input.audio, session.output.audio = microphone, speaker
    agent = TutorAgent(level="A2", greeting="Olá!")
    link.attach(session, agent)
    said: list[str] = []

    def on_item(event: ConversationItemAddedEvent) -> None:
        if isinstance(event.item, llm.ChatMessage) and event.item.role == "assistant":
            said.append(event.item.text_content or "")

    session.on("conversation_item_added", on_item)
    async with session:
        await session.start(agent)
        await wait_until(lambda: bool(said), 60)  # the greeting
        microphone.say(audio_dir / "utterances/u02.wav")
        await wait_until(lambda: len(said) >= 2, 90)
    await link.aclose()
    assert link.sent == 1 and link.dropped == 0
    (turn,) = export(stack, "bia")["turns"]
    assert turn["transcript"] == stack.stt.text and turn["reply"] == "Muito bem! E você?"
    assert turn["estimate"] in ("A1", "A2", "B1", "B2", "C1", "C2")
    assert turn["speech_s"] > 0.5 and turn["words_per_minute"] > 0
    assert turn["timings"]["end_of_turn_ms"] >= 0 and turn["timings"]["stt_ms"] >= 0
    assert report(stack, "bia")["sessions"][0]["session_id"] == "sala-1"


def test_the_agent_routes_check_input_and_keys(stack: Stack) -> None:
    sessions, turns = f"{stack.url}/api/agent/sessions", f"{stack.url}/api/agent/turns"
    turn = {"session_id": "s1", "learner_id": "caio", "transcript": "Eu gosto de futebol.",
            "reply": "Legal!", "level": "A2"}  # fmt: skip
    assert httpx.post(sessions, json={"learner_id": "caio"}).status_code == 401
    assert httpx.post(turns, json=turn).status_code == 401

    def refused(url: str, body: dict[str, Any]) -> str:
        response = httpx.post(url, json=body, headers=KEY)
        assert response.status_code == 422, response.text
        code: str = response.json()["error"]["code"]
        return code

    assert refused(sessions, {"learner_id": "a b"}) == "bad_learner_id"
    assert refused(sessions, {"learner_id": "x" * 129}) == "bad_learner_id"
    assert refused(sessions, {"learner_id": ""}) == "bad_learner_id"
    assert refused(sessions, {"learner_id": "caio", "session_id": "a/b"}) == "bad_session_id"
    assert refused(sessions, {}) == "invalid_request"
    assert refused(turns, {**turn, "learner_id": "caio!"}) == "bad_learner_id"
    assert refused(turns, {**turn, "level": "Z9"}) == "invalid_request"
    assert refused(turns, {**turn, "transcript": ""}) == "invalid_request"
    assert refused(turns, {**turn, "speech_s": -1}) == "invalid_request"
    assert refused(turns, {**turn, "timings": {"stt_s": 1e9}}) == "invalid_request"
    assert refused(turns, {**turn, "extra": 1}) == "invalid_request"

    started = httpx.post(sessions, json={"learner_id": "caio"}, headers=KEY).json()
    assert started["session_id"].startswith("agent-")
    assert started["level"] is None and started["note"] is None
    # A turn of a session the server does not hold (a restart since): the session opens again.
    accepted = httpx.post(turns, json=turn, headers=KEY)
    assert accepted.status_code == 202
    caio = httpx.get(f"{stack.url}/api/learners/caio", headers=KEY).json()
    assert caio["turns"] == 1 and caio["facts"] == {"interest": ["futebol"]}
    again = httpx.post(sessions, json={"learner_id": "caio"}, headers=KEY).json()
    assert again["level"] == "A2" and "futebol" in (again["note"] or "")


def test_the_token_carries_the_learner() -> None:
    import jwt

    secret = "s" * 40
    with make_stack(
        livekit_url="wss://lk.example", livekit_api_key="APIkey", livekit_api_secret=secret,
        api_keys="k1",
    ) as stack:  # fmt: skip
        url = f"{stack.url}/api/token"
        body = httpx.post(url, json={"learner_id": "ana", "level": "b1"}, headers=KEY).json()
        claims = jwt.decode(body["token"], secret, algorithms=["HS256"])
        tenant = key_tenant("k1")  # a bare key is a tenant of its own
        assert claims["attributes"] == {
            "parle.learner": "ana", "parle.level": "B1", "parle.tenant": tenant
        }  # fmt: skip
        assert claims["video"].get("canUpdateOwnMetadata") is False  # theirs to read only
        assert body["identity"].startswith("learner-")  # the server still names the identity
        bad = httpx.post(url, json={"learner_id": "ana maria"}, headers=KEY)
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "bad_learner_id"
        plain = httpx.post(url, json={}, headers=KEY).json()
        attributes = jwt.decode(plain["token"], secret, algorithms=["HS256"])["attributes"]
        assert attributes == {"parle.tenant": tenant}


async def test_an_unreachable_server_never_disturbs_the_session(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="agent.learner")
    link = LearnerLink("ana", server_url=f"http://127.0.0.1:{free_port()}", queue_size=2)
    started = time.monotonic()
    assert await link.start("sala-1") is None
    assert time.monotonic() - started < 3
    turn_text = "Meu segredo é que eu moro em Lisboa."
    from bridge.agent_records import AgentTurn

    for _ in range(4):  # two queued, two over the bound: dropped at once
        link.record(
            AgentTurn(
                session_id=link.session_id,
                learner_id="ana",
                transcript=turn_text,
                reply="Ah!",
                level="A2",
            )
        )
    await link.aclose(timeout_s=5)
    assert link.sent == 0 and link.dropped == 4
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 2  # one for the profile, one for the outage of turns
    for record in warnings:
        assert getattr(record, "error_type", None) or getattr(record, "op", None)
        assert "segredo" not in record.getMessage() and "segredo" not in str(record.__dict__)


def test_the_agent_door_goes_on_without_a_database() -> None:
    unreachable = f"postgresql://nobody@127.0.0.1:{free_port()}/parle"
    with make_stack(database_url=unreachable) as stack:
        started = httpx.post(
            f"{stack.url}/api/agent/sessions", json={"learner_id": "eva"}, timeout=10
        )
        assert started.status_code == 200  # nothing known: the room starts as for a newcomer
        assert started.json()["level"] is None and started.json()["note"] is None
        turn = {"session_id": started.json()["session_id"], "learner_id": "eva",
                "transcript": "Olá.", "reply": "Olá!", "level": "A2"}  # fmt: skip
        accepted = httpx.post(f"{stack.url}/api/agent/turns", json=turn, timeout=10)
        assert accepted.status_code == 202
        deadline = time.monotonic() + 10  # the writer counts it in the background
        while 'parle_store_errors_total{op="write"}' not in (
            metrics := httpx.get(f"{stack.url}/metrics", timeout=10).text
        ):
            assert time.monotonic() < deadline, metrics  # counted, as a server turn is
            time.sleep(0.05)
