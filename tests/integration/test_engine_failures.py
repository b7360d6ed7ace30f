"""An engine that fails mid-turn, behind the real server: every door answers with an error
carrying a stable code, counts it in the metrics, keeps the session and serves the next turn,
and the log holds neither the learner's words nor a traceback's text."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import httpx
import pytest
import websockets

from tests.doubles.clients import parse_sse, receive_turn
from tests.doubles.learner import speech_wav
from tests.doubles.stack import Stack, make_stack

# What a misbehaving engine library might raise: a bare error whose text must never reach a
# client or the log (it may hold a path or the learner's words).
SECRET = "/opt/models/whisper: learner said 'meu segredo'"


@pytest.fixture
def stack() -> Iterator[Stack]:
    with make_stack() as stack:
        yield stack


def break_engine(stack: Stack, stage: str) -> None:
    if stage == "stt":
        stack.stt.failure = RuntimeError(SECRET)
    elif stage == "tts":
        stack.tts.failure = RuntimeError(SECRET)
    else:
        stack.llm.fail_status = 500


def turn(stack: Stack, session: str) -> httpx.Response:
    files = {"audio": ("learner.wav", speech_wav(), "audio/wav")}
    data = {"session_id": session}
    return httpx.post(f"{stack.url}/api/stream-audio", files=files, data=data, timeout=30)


def mend_engines(stack: Stack) -> None:
    stack.stt.failure = stack.tts.failure = None
    stack.llm.fail_status = None


def error_count(stack: Stack, kind: str) -> float:
    for line in httpx.get(f"{stack.url}/metrics").text.splitlines():
        if line.startswith(f'parle_errors_total{{kind="{kind}"}}'):
            return float(line.split()[-1])
    return 0.0


CODES = {"stt": "stt_failed", "llm": "llm_unavailable", "tts": "tts_failed"}


@pytest.mark.parametrize("stage", ["stt", "llm", "tts"])
def test_sse_turn_with_a_failing_engine(
    stack: Stack, stage: str, caplog: pytest.LogCaptureFixture
) -> None:
    code = CODES[stage]
    break_engine(stack, stage)
    with caplog.at_level(logging.INFO):
        response = turn(stack, "s1")
    assert response.status_code == 200
    frames = parse_sse(response.text)
    assert frames[-1][0] == "error", frames
    assert frames[-1][1]["code"] == code
    assert SECRET not in response.text
    assert "segredo" not in caplog.text
    assert error_count(stack, code) == 1
    mend_engines(stack)
    again = parse_sse(turn(stack, "s1").text)
    assert again[-1][0] == "complete" and again[-1][1]["session_id"] == "s1"


@pytest.mark.parametrize("stage", ["stt", "llm", "tts"])
async def test_ws_turn_with_a_failing_engine(stack: Stack, stage: str) -> None:
    code = CODES[stage]
    async with websockets.connect(stack.ws_url + "?session_id=w1") as ws:
        assert json.loads(await ws.recv())["type"] == "ready"
        break_engine(stack, stage)
        await ws.send(speech_wav())
        messages, _ = await receive_turn(ws)
        assert messages[-1] == {"type": "error", "message": messages[-1]["message"], "code": code}
        assert SECRET not in messages[-1]["message"]
        assert error_count(stack, code) == 1
        mend_engines(stack)
        await ws.send(speech_wav())  # the same socket and session serve the next turn
        assert (await receive_turn(ws))[0][-1]["type"] == "complete"


def test_speech_api_with_failing_engines(stack: Stack) -> None:
    stack.stt.failure = RuntimeError(SECRET)
    files = {"file": ("u.wav", speech_wav(), "audio/wav")}
    refused = httpx.post(f"{stack.url}/v1/audio/transcriptions", files=files, timeout=30)
    assert refused.status_code == 500
    assert refused.json()["error"]["code"] == "stt_failed" and SECRET not in refused.text
    assert error_count(stack, "stt_failed") == 1

    stack.tts.failure = RuntimeError(SECRET)
    spoken = httpx.post(
        f"{stack.url}/v1/audio/speech", json={"input": "Olá!", "response_format": "pcm"}
    )
    assert spoken.status_code == 500 and spoken.json()["error"]["code"] == "tts_failed"
    assert error_count(stack, "tts_failed") == 1

    mend_engines(stack)
    heard = httpx.post(f"{stack.url}/v1/audio/transcriptions", files=files, timeout=30)
    assert heard.status_code == 200 and heard.json()["text"]
    assert httpx.post(f"{stack.url}/v1/audio/speech", json={"input": "Olá!"}).content
