"""Lessons with a shape (scenarios) and spoken commands, at the server's two legacy doors: the
PARLE app on real uvicorn with instant engines and a scripted LLM that records every request
(tests/doubles/stack.py). Spoken turns come through the STT double (it "hears" what the test
says); typed turns are WebSocket `text` messages, which run the same pipeline."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets

from parle.tutor import commands
from parle.tutor.levels import POLICIES
from parle.tutor.scenarios import get_scenario, scenarios
from tests.doubles.clients import parse_sse, receive_turn
from tests.doubles.learner import speech_wav
from tests.doubles.stack import Stack, make_stack

BLOCK = (
    '<correcao>{"original": "Eu vai na praia", "corrected": "Eu fui à praia", '
    '"explanation": "passado de ir", "kind": "tense"}</correcao>'
)
REPLY = ["Que legal!", " E o que", " você comeu lá?", " " + BLOCK]
SPOKEN_REPLY = "Que legal! E o que você comeu lá?"
CAFE = get_scenario("no-cafe")


@pytest.fixture
def stack() -> Iterator[Stack]:
    with make_stack() as running:
        running.llm.tokens = list(REPLY)
        yield running


def sse_turn(stack: Stack, heard: str | None, **fields: str) -> list[tuple[str, dict[str, Any]]]:
    """One SSE request; `heard`: what the STT double hears (None: no audio sent)."""
    files: dict[str, Any] = {name: (None, value) for name, value in fields.items()}
    if heard is not None:
        stack.stt.text = heard
        files["audio"] = ("learner.wav", speech_wav(), "audio/wav")
    response = httpx.post(f"{stack.url}/api/stream-audio", files=files, timeout=30)
    assert response.status_code == 200, response.text
    return parse_sse(response.text)


async def say(ws: Any, text: str) -> tuple[list[dict[str, Any]], list[bytes]]:
    await ws.send(json.dumps({"type": "text", "text": text}))
    return await receive_turn(ws)


def spoken_since(stack: Stack, count: int) -> str:
    """What the TTS was asked to say after its first `count` pieces, as one text."""
    return " ".join(stack.tts.texts[count:])


def of_type(messages: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [m for m in messages if m["type"] == kind]


# --- the catalogue ----------------------------------------------------------------------------


def test_scenarios_are_listed_with_every_field(stack: Stack) -> None:
    listed = httpx.get(f"{stack.url}/api/scenarios").json()["scenarios"]
    ids = {s["id"] for s in listed}
    assert {
        "apresentar-se",
        "no-cafe",
        "no-aeroporto",
        "no-medico",
        "pedir-direcoes",
        "entrevista-de-emprego",
    } <= ids
    for scenario in listed:
        assert set(scenario) == {
            "id",
            "title",
            "levels",
            "setting",
            "role",
            "goals",
            "vocabulary",
            "opener",
            "closer",
        }
        assert scenario["goals"] and scenario["vocabulary"] and scenario["opener"]
    assert listed == [s.as_dict() for s in scenarios().values()]


# --- WebSocket --------------------------------------------------------------------------------


async def test_ws_a_scenario_opens_in_role_and_the_llm_stays_in_it(stack: Stack) -> None:
    async with websockets.connect(stack.ws_url + "?session_id=cafe-1") as ws:
        await ws.recv()
        await ws.send(json.dumps({"type": "config", "scenario": "No-Cafe"}))
        ack = json.loads(await ws.recv())
        assert ack == {"type": "config", "config": {"scenario": "no-cafe", "sequential": False}}
        messages, audio = await receive_turn(ws)
        assert [m["type"] for m in messages[:3]] == ["command", "response_delta", "response"]
        assert messages[0] == {"type": "command", "command": "open", "scenario": "no-cafe"}
        assert messages[2]["response"] == CAFE.opener
        assert audio and len(audio) == len(of_type(messages, "audio"))
        assert messages[-1]["response"] == CAFE.opener and messages[-1]["transcript"] == ""
        assert stack.llm.requests == []  # the opener needs no LLM
        assert spoken_since(stack, 0) == CAFE.opener

        await say(ws, "Eu quero um cafezinho.")
        request = stack.llm.requests[-1]["messages"]
        # The system prompt is the level's own (prefix cache); the scenario follows it.
        assert "Seu Carlos" not in request[0]["content"]
        assert request[1]["role"] == "system" and "Seu Carlos" in request[1]["content"]
        assert all(word in request[1]["content"] for word in CAFE.vocabulary)
        assert CAFE.opener in request[1]["content"]

        await ws.send(json.dumps({"type": "config", "scenario": "nowhere"}))
        error = json.loads(await ws.recv())
        assert error["type"] == "error" and error["code"] == "bad_scenario"


async def test_ws_spoken_commands_answer_without_the_llm(stack: Stack) -> None:
    a2 = POLICIES["A2"]
    async with websockets.connect(stack.ws_url + "?session_id=commands") as ws:
        await ws.recv()
        await ws.send(json.dumps({"type": "config", "level": "A2"}))
        await ws.recv()
        first, first_audio = await say(ws, "Eu vai na praia ontem.")
        assert of_type(first, "response")[0]["response"] == SPOKEN_REPLY
        assert len(stack.llm.requests) == 1
        synthesized = len(stack.tts.texts)

        # "repete": the same audio again, no LLM and no TTS.
        messages, audio = await say(ws, "Repete, por favor.")
        assert messages[0] == {"type": "command", "command": "repeat"}
        assert of_type(messages, "response")[0]["response"] == SPOKEN_REPLY
        assert audio == first_audio
        assert messages[-1]["transcript"] == "Repete, por favor."
        assert len(stack.llm.requests) == 1 and len(stack.tts.texts) == synthesized

        # "mais devagar": one step slower, acknowledged at the new speed, kept for the session.
        slower = round(a2.tts_speed - commands.SPEED_STEP, 2)
        messages, _ = await say(ws, "Mais devagar!")
        assert messages[0] == {"type": "command", "command": "slower", "speed": slower}
        assert spoken_since(stack, synthesized) == commands.SLOWER
        assert set(stack.tts.speeds[synthesized:]) == {slower}
        # The last reply sounded faster: "repete" now speaks it again at the new speed.
        synthesized = len(stack.tts.texts)
        await say(ws, "Pode repetir?")
        assert spoken_since(stack, synthesized) == SPOKEN_REPLY
        assert set(stack.tts.speeds[synthesized:]) == {slower}
        await say(ws, "Eu gosto de praia.")
        assert stack.tts.speeds[-1] == slower
        assert len(stack.llm.requests) == 2
        # Commands stay out of the history the LLM sees.
        contents = [m["content"] for m in stack.llm.requests[-1]["messages"]]
        assert "Mais devagar!" not in contents and "Repete, por favor." not in contents

        # "nível B1": the level moves, and the client's own `level` (A2) does not undo it.
        synthesized = len(stack.tts.texts)
        messages, _ = await say(ws, "Mudar para o nível B1.")
        assert messages[0] == {"type": "command", "command": "level", "level": "B1"}
        assert spoken_since(stack, synthesized) == commands.level_changed("B1")
        await say(ws, "Eu gosto de praia.")
        assert "(B1)" in stack.llm.requests[-1]["messages"][0]["content"]
        requests = len(stack.llm.requests)

        # A translation is declined above A2, without the LLM...
        messages, _ = await say(ws, "Em inglês?")
        assert of_type(messages, "response")[0]["response"] == commands.TRANSLATION_DECLINED
        assert len(stack.llm.requests) == requests
        # ... and given at A1-A2, by one short LLM call.
        await say(ws, "level A2")
        stack.llm.tokens = ["Did you", " like", " the beach?"]
        messages, _ = await say(ws, "Tradução, por favor.")
        assert messages[0] == {"type": "command", "command": "translate", "level": "A2"}
        assert of_type(messages, "stage")[0]["stage"] == "llm"
        assert of_type(messages, "response")[0]["response"] == "Em inglês: Did you like the beach?"
        request = stack.llm.requests[-1]
        assert request["max_tokens"] == commands.TRANSLATION_MAX_TOKENS
        assert request["messages"][-1] == {"role": "user", "content": SPOKEN_REPLY}

        # An ordinary sentence that merely contains the words is talk.
        stack.llm.tokens = list(REPLY)
        messages, _ = await say(ws, "Eu falo mais devagar quando estou cansado.")
        assert not of_type(messages, "command")
        assert stack.llm.requests[-1]["messages"][-2]["content"].startswith("Eu falo mais")


async def test_ws_end_closes_with_a_recap_of_the_corrections(stack: Stack) -> None:
    async with websockets.connect(stack.ws_url) as ws:
        await ws.recv()
        await ws.send(json.dumps({"type": "config", "scenario": "no-cafe"}))
        await ws.recv()
        await receive_turn(ws)
        await say(ws, "Eu vai na praia ontem.")  # corrected by the tutor
        await ws.send(json.dumps({"type": "end"}))
        messages, audio = await receive_turn(ws)
        assert messages[0] == {"type": "command", "command": "end", "scenario": "no-cafe"}
        closing = of_type(messages, "response")[0]["response"]
        assert closing.startswith(CAFE.closer)
        assert "em vez de Eu vai na praia, diga Eu fui à praia" in closing
        assert audio and stack.tts.texts[-1] in closing
        # The role-play is over: the next turn has no scenario note.
        await say(ws, "Oi de novo.")
        assert [m["role"] for m in stack.llm.requests[-1]["messages"]][:2] == ["system", "user"]


# --- SSE --------------------------------------------------------------------------------------


def test_sse_the_first_turn_of_a_scenario_is_answered_with_its_opener(stack: Stack) -> None:
    events = sse_turn(stack, "Oi, bom dia!", session_id="s-cafe", scenario="no-cafe")
    names = [name for name, _ in events]
    assert names[:4] == ["status", "transcript", "command", "response_delta"]
    assert events[2][1] == {"command": "open", "scenario": "no-cafe"}
    assert "audio" in names and names[-1] == "complete"
    assert events[-1][1]["response"] == CAFE.opener
    assert stack.llm.requests == []
    # The next turn, same scenario: the LLM, in role, with the opener in the history.
    events = sse_turn(stack, "Um cafezinho, por favor.", session_id="s-cafe", scenario="no-cafe")
    assert "command" not in [name for name, _ in events]
    messages = stack.llm.requests[-1]["messages"]
    assert "Seu Carlos" in messages[1]["content"]
    assert messages[2:5] == [
        {"role": "user", "content": "Oi, bom dia!"},
        messages[-1],  # the level's reminder, after each of the learner's messages
        {"role": "assistant", "content": CAFE.opener},
    ]


def test_sse_spoken_commands_and_the_end_of_the_lesson(stack: Stack) -> None:
    sse_turn(stack, "Eu vai na praia ontem.", session_id="s-cmd")
    events = sse_turn(stack, "Could you repeat that?", session_id="s-cmd")
    assert ("command", {"command": "repeat"}) in events
    assert dict(events)["response"]["response"] == SPOKEN_REPLY
    assert len(stack.llm.requests) == 1
    # Spoken: "that's all" ends the lesson with the recap.
    events = sse_turn(stack, "That's all for today.", session_id="s-cmd")
    assert ("command", {"command": "end"}) in events
    closing = dict(events)["response"]["response"]
    assert "Eu fui à praia" in closing and len(stack.llm.requests) == 1
    # By the form field, without audio: the closing (no corrections left to recap).
    events = sse_turn(stack, None, session_id="s-cmd", end="true")
    assert [name for name, _ in events][:2] == ["command", "response_delta"]
    assert commands.NOTHING_YET not in dict(events)["response"]["response"]
    assert "nenhuma correção" in dict(events)["response"]["response"]


def test_sse_bad_scenario_and_missing_audio_are_refused(stack: Stack) -> None:
    files = {"audio": ("learner.wav", speech_wav(), "audio/wav")}
    bad = httpx.post(
        f"{stack.url}/api/stream-audio", files=files, data={"scenario": "lua"}, timeout=30
    )
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "bad_scenario"
    no_audio = httpx.post(f"{stack.url}/api/stream-audio", files={"x": ("a", b"")}, timeout=30)
    assert no_audio.json()["error"]["code"] == "no_audio"
    bad_end = httpx.post(
        f"{stack.url}/api/stream-audio", files=files, data={"end": "maybe"}, timeout=30
    )
    assert bad_end.status_code == 422 and bad_end.json()["error"]["code"] == "bad_end"
