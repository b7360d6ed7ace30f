"""The PARLE server on real uvicorn, spoken to by real HTTP and WebSocket clients. Engines are
instant doubles and the LLM a scripted OpenAI-compatible server, so every byte is known; the
real `cpu` engines behind the same server are tested in tests/e2e/test_server_cpu.py."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import time
import wave
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets

from parle.tenants import key_tenant
from tests.doubles.clients import parse_sse, receive_turn
from tests.doubles.learner import speech_wav
from tests.doubles.stack import REPLY, Stack, make_stack


@pytest.fixture
def stack() -> Iterator[Stack]:
    with make_stack(llm_delay=0.01) as stack:
        yield stack


# --- SSE --------------------------------------------------------------------------------------


def post_audio(stack: Stack, data: bytes, **kwargs: Any) -> httpx.Response:
    files = {"audio": ("learner.wav", data, "audio/wav")}
    return httpx.post(f"{stack.url}/api/stream-audio", files=files, timeout=30, **kwargs)


CORRECTION = (
    '<correcao>{"original": "meu nome é Ana", "corrected": "o meu nome é Ana", '
    '"explanation": "artigo", "kind": "grammar"}</correcao>'
)


def old_client_view(frames: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    known = {"status", "transcript", "response", "audio", "complete", "error"}
    return [(event, data) for event, data in frames if event in known]


def test_sse_turn_as_the_old_client_reads_it(stack: Stack) -> None:
    response = post_audio(stack, speech_wav(), params={"order": "strict"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["x-accel-buffering"] == "no"
    frames = old_client_view(parse_sse(response.text))
    names = [event for event, _ in frames]
    audio_count = names.count("audio")
    assert names == [
        "status", "transcript", "status", "response", "status", *["audio"] * audio_count,
        "complete",
    ]  # fmt: skip
    assert [d["stage"] for e, d in frames if e == "status"] == ["stt", "llm", "tts"]
    transcript = frames[1][1]
    assert transcript["transcript"] == "Olá, meu nome é Ana."
    assert frames[3][1]["response"] == "".join(REPLY) and frames[3][1]["llm_ms"] > 0
    chunks = [d for e, d in frames if e == "audio"]
    assert [c["index"] for c in chunks] == list(range(len(chunks))) and len(chunks) == 3
    for chunk in chunks:
        with wave.open(io.BytesIO(base64.b64decode(chunk["chunk"]))) as wav:
            assert wav.getframerate() == 24_000 and wav.getnframes() > 0
    complete = frames[-1][1]
    assert complete["transcript"] == "Olá, meu nome é Ana."
    assert complete["response"] == "".join(REPLY)
    timing = complete["timing"]
    assert transcript["stt_ms"] == timing["stt_ms"]  # one measurement, reported twice
    assert 0 <= timing["stt_ms"] <= timing["ttfa_ms"] <= timing["total_ms"]
    assert timing["llm_ms"] > 0
    assert timing["tts_first_chunk_ms"] is not None
    assert timing["tts_first_chunk_ms"] <= timing["tts_ms"] <= timing["total_ms"]


def test_sse_default_order_streams_audio_before_the_whole_response(stack: Stack) -> None:
    frames = parse_sse(post_audio(stack, speech_wav()).text)
    names = [event for event, _ in frames]
    assert names.index("audio") < names.index("response")
    assert "response_delta" in names  # additive: old clients ignore it


@pytest.mark.parametrize("field", ["audio", "file"])
def test_sse_accepts_audio_or_file_and_form_fields(stack: Stack, field: str) -> None:
    response = httpx.post(
        f"{stack.url}/api/stream-audio",
        files={field: ("x.wav", speech_wav(), "audio/wav")},
        data={"session_id": "form-1", "level": "b1"},
        timeout=30,
    )
    frames = parse_sse(response.text)
    assert frames[-1][0] == "complete" and frames[-1][1]["session_id"] == "form-1"
    system = stack.llm.requests[-1]["messages"][0]["content"]
    assert "(B1)" in system


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        ({"content": b"{}", "headers": {"content-type": "application/json"}}, 415, "bad_type"),
        ({"files": {"other": ("x.wav", b"123", "audio/wav")}}, 400, "no_audio"),
        ({"files": {"audio": ("x.wav", b"", "audio/wav")}}, 400, "empty"),
        ({"files": {"audio": ("x.wav", b"\x89PNG....", "audio/wav")}}, 415, "undecodable"),
        ({"files": {"audio": ("x.wav", speech_wav(0.05), "audio/wav")}}, 422, "too_short"),
        (
            {"files": {"audio": ("x.wav", speech_wav()), "level": (None, "Z9")}},
            422,
            "bad_level",
        ),
        (
            {"files": {"audio": ("x.wav", speech_wav()), "session_id": (None, "../x")}},
            422,
            "bad_session_id",
        ),
    ],
)
def test_sse_bad_requests_get_clear_4xx(
    stack: Stack, kwargs: dict[str, Any], status: int, code: str
) -> None:
    response = httpx.post(f"{stack.url}/api/stream-audio", timeout=30, **kwargs)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["code"] == code and error["message"]
    assert "Traceback" not in response.text and "/work" not in response.text
    assert post_audio(stack, speech_wav()).status_code == 200  # still serving


def test_sse_engine_failure_is_an_error_event(stack: Stack) -> None:
    stack.llm.fail_status = 500
    frames = parse_sse(post_audio(stack, speech_wav()).text)
    assert frames[-1][0] == "error"
    assert "500" in frames[-1][1]["message"]


def test_upload_cap_declared_or_streamed() -> None:
    with make_stack(max_upload_bytes=100_000) as stack:
        big = speech_wav(4.0)  # 128 kB
        assert post_audio(stack, big).status_code == 413

        def chunked() -> Iterator[bytes]:
            yield (
                b'--xyz\r\nContent-Disposition: form-data; name="audio"; '
                b'filename="a.wav"\r\nContent-Type: audio/wav\r\n\r\n'
            )
            for _ in range(100):  # 1.6 MB, no Content-Length: counted as it arrives
                yield b"\x00" * 16_384

        response = httpx.post(
            f"{stack.url}/api/stream-audio",
            content=chunked(),
            headers={"content-type": "multipart/form-data; boundary=xyz"},
            timeout=30,
        )
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "too_large"
        assert post_audio(stack, speech_wav(2.0)).status_code == 200  # 64 kB: under the cap


def test_client_disconnect_stops_the_llm_and_tts() -> None:
    with make_stack(llm_delay=0.3, tts_delay=5.0) as stack:
        with (
            httpx.Client(timeout=30) as client,
            client.stream(
                "POST",
                f"{stack.url}/api/stream-audio",
                files={"audio": ("x.wav", speech_wav(), "audio/wav")},
            ) as response,
        ):
            for line in response.iter_lines():
                if line == 'data: {"stage": "tts"}':
                    break
        closed = time.monotonic()
        assert asyncio.run(stack.llm.wait_for(lambda: stack.llm.disconnected == 1))
        assert stack.llm.completed == 0
        assert stack.tts.cancelled == 1
        assert stack.llm.disconnected_at is not None
        assert stack.llm.disconnected_at - closed < 1.0


# --- limits, auth, CORS, operations -----------------------------------------------------------


async def test_busy_answer_when_the_queue_is_full() -> None:
    with make_stack(max_active_turns=1, max_queued_turns=0, llm_delay=0.2) as stack:
        async with httpx.AsyncClient(timeout=30) as client:
            files = {"audio": ("x.wav", speech_wav(), "audio/wav")}
            slow = asyncio.create_task(client.post(f"{stack.url}/api/stream-audio", files=files))
            assert await stack.llm.wait_for(lambda: len(stack.llm.requests) == 1)
            busy = await client.post(
                f"{stack.url}/api/stream-audio", files=files, headers={"x-api-key": "other"}
            )
            assert busy.status_code == 429 and busy.json()["error"]["code"] == "busy"
            assert "retry-after" in busy.headers
            assert (await slow).status_code == 200


def test_rate_limit_per_client() -> None:
    with make_stack(client_turns_per_minute=2, api_keys="app-one,app-two") as stack:
        one, two = {"x-api-key": "app-one"}, {"x-api-key": "app-two"}
        codes = [post_audio(stack, speech_wav(), headers=one).status_code for _ in range(3)]
        assert codes == [200, 200, 429]
        other = post_audio(stack, speech_wav(), headers=two)
        assert other.status_code == 200  # limits are per client (a verified key)


def test_api_keys_on_http() -> None:
    with make_stack(api_keys="k1, k2") as stack:
        assert httpx.get(f"{stack.url}/health").status_code == 200
        assert post_audio(stack, speech_wav()).status_code == 401
        bad = post_audio(stack, speech_wav(), headers={"authorization": "Bearer nope"})
        assert bad.status_code == 401
        good = post_audio(stack, speech_wav(), headers={"authorization": "Bearer k2"})
        assert good.status_code == 200


async def test_api_keys_on_websocket() -> None:
    with make_stack(api_keys="k1, k2") as stack:
        async with websockets.connect(stack.ws_url) as ws:
            assert json.loads(await ws.recv())["code"] == "unauthorized"
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
        async with websockets.connect(stack.ws_url + "?api_key=k1") as ws:
            assert json.loads(await ws.recv())["type"] == "ready"


def test_cors_allowlist() -> None:
    with make_stack(cors_origins="https://app.example") as stack:
        headers = {"origin": "https://app.example", "access-control-request-method": "POST"}
        allowed = httpx.options(f"{stack.url}/api/stream-audio", headers=headers)
        assert allowed.headers.get("access-control-allow-origin") == "https://app.example"
        headers["origin"] = "https://evil.example"
        denied = httpx.options(f"{stack.url}/api/stream-audio", headers=headers)
        assert "access-control-allow-origin" not in denied.headers


def test_health_ready_and_metrics(stack: Stack) -> None:
    assert httpx.get(f"{stack.url}/health").json() == {"status": "ok"}
    ready = httpx.get(f"{stack.url}/ready")
    assert ready.status_code == 200 and ready.json()["ready"] is True
    post_audio(stack, speech_wav())
    post_audio(stack, b"garbage")
    metrics = httpx.get(f"{stack.url}/metrics").text
    assert 'parle_turns_total{outcome="ok",protocol="sse"} 1.0' in metrics
    assert "parle_ttfa_seconds_count 1.0" in metrics
    assert 'parle_stage_seconds_count{stage="stt"} 1.0' in metrics
    for name in ("parle_queue_depth", "parle_active_sessions", "parle_errors_total"):
        assert name in metrics


def test_agent_turn_metrics_are_exported_behind_the_keys() -> None:
    with make_stack(api_keys="k1") as stack:
        url, auth = f"{stack.url}/api/agent/metrics", {"authorization": "Bearer k1"}
        report = {"end_of_turn_s": 0.6, "llm_ttft_s": 0.2, "tts_ttfb_s": 0.1, "end_to_end_s": 0.9}
        assert httpx.post(url, json=report).status_code == 401
        assert httpx.post(url, json=report, headers=auth).status_code == 204
        for bad in ({"end_to_end_s": -1}, {"words": "olá"}, {"stt_s": "fast"}):
            response = httpx.post(url, json=bad, headers=auth)
            assert response.status_code == 422, bad
        assert httpx.post(url, content=b"{{{", headers=auth).status_code == 422
        metrics = httpx.get(f"{stack.url}/metrics").text
        assert 'parle_agent_stage_seconds_count{stage="end_to_end"} 1.0' in metrics
        assert 'parle_agent_stage_seconds_sum{stage="llm_ttft"} 0.2' in metrics
        assert 'parle_agent_stage_seconds_count{stage="stt"} 0.0' not in metrics


def test_reset_forgets_a_session(stack: Stack) -> None:
    files = {"audio": ("x.wav", speech_wav(), "audio/wav")}
    httpx.post(f"{stack.url}/api/stream-audio", files=files, data={"session_id": "r1"}, timeout=30)
    reset = httpx.post(f"{stack.url}/api/reset", json={"session_id": "r1"})
    assert reset.json() == {"session_id": "r1", "reset": True}
    httpx.post(f"{stack.url}/api/stream-audio", files=files, data={"session_id": "r1"}, timeout=30)
    assert [m["role"] for m in stack.llm.requests[-1]["messages"]] == ["system", "user", "system"]
    assert httpx.post(f"{stack.url}/api/reset", json={}).status_code == 422
    assert httpx.post(f"{stack.url}/api/reset", content=b"{{{").status_code == 422


# --- WebSocket --------------------------------------------------------------------------------


async def test_ws_turn_sequence(stack: Stack) -> None:
    async with websockets.connect(stack.ws_url + "?session_id=ws-1") as ws:
        ready = json.loads(await ws.recv())
        assert ready["type"] == "ready" and ready["session_id"] == "ws-1"
        await ws.send(speech_wav())
        messages, audio = await receive_turn(ws)
    types = [m["type"] for m in messages]
    assert types[:4] == ["stage", "transcript", "level", "stage"]
    assert types[-1] == "complete"
    assert messages[1]["transcript"] == "Olá, meu nome é Ana."
    response = next(m for m in messages if m["type"] == "response")
    assert response["response"] == "".join(REPLY)
    announced = [m for m in messages if m["type"] == "audio"]
    assert [m["index"] for m in announced] == [0, 1, 2] and len(audio) == 3
    for meta, data in zip(announced, audio, strict=True):
        assert meta["bytes"] == len(data)
        with wave.open(io.BytesIO(data)) as wav:
            assert wav.getframerate() == 24_000 and wav.getnframes() > 0
    complete = messages[-1]
    assert complete["chunks"] == 3
    assert complete["timing"]["ttfa_ms"] <= complete["timing"]["total_ms"]


async def test_ws_control_messages(stack: Stack) -> None:
    async with websockets.connect(stack.ws_url) as ws:
        await ws.recv()
        await ws.send(json.dumps({"type": "ping"}))
        assert json.loads(await ws.recv()) == {"type": "pong"}
        for garbage in ("not json", json.dumps({"type": "dance"}), json.dumps({"type": "text"})):
            await ws.send(garbage)
            error = json.loads(await ws.recv())
            assert error["type"] == "error" and error["code"] == "bad_message"
        await ws.send(json.dumps({"type": "config", "level": "C1", "speed": 0.8}))
        ack = json.loads(await ws.recv())
        assert ack["type"] == "config" and ack["config"]["level"] == "C1"
        await ws.send(json.dumps({"type": "config", "voice": "nobody"}))
        assert json.loads(await ws.recv())["code"] == "bad_voice"
        await ws.send(json.dumps({"type": "text", "text": "Oi, tudo bem?"}))
        messages, audio = await receive_turn(ws)
        assert "transcript" not in [m["type"] for m in messages] and audio
        assert stack.llm.requests[-1]["messages"][-2]["content"] == "Oi, tudo bem?"
        assert "(C1)" in stack.llm.requests[-1]["messages"][0]["content"]
        await ws.send(b"garbage bytes")
        error = json.loads(await ws.recv())
        assert error["type"] == "error" and error["code"] == "undecodable"
        await ws.send(json.dumps({"type": "ping"}))
        assert json.loads(await ws.recv()) == {"type": "pong"}


async def test_ws_cancel_and_close_stop_the_work() -> None:
    with make_stack(llm_delay=0.3, tts_delay=5.0) as stack:
        async with websockets.connect(stack.ws_url) as ws:
            await ws.recv()
            await ws.send(speech_wav())
            while json.loads(await ws.recv()).get("stage") != "tts":
                pass
            await ws.send(json.dumps({"type": "cancel"}))
            while (message := json.loads(await ws.recv()))["type"] != "cancelled":
                assert message["type"] != "complete"
            assert await stack.llm.wait_for(lambda: stack.llm.disconnected == 1)
            assert stack.tts.cancelled == 1
            await ws.send(speech_wav())
            while json.loads(await ws.recv()).get("stage") != "tts":
                pass
        # closing the socket mid-reply stops the second turn too
        assert await stack.llm.wait_for(lambda: stack.llm.disconnected == 2)
        assert stack.llm.completed == 0


async def test_ws_sessions_are_separate_and_reset_forgets(stack: Stack) -> None:
    async with (
        websockets.connect(stack.ws_url + "?session_id=ana") as ana,
        websockets.connect(stack.ws_url + "?session_id=bia") as bia,
    ):
        await ana.recv()
        await bia.recv()
        await ana.send(json.dumps({"type": "text", "text": "Eu sou a Ana."}))
        await bia.send(json.dumps({"type": "text", "text": "Eu sou a Bia."}))
        await asyncio.gather(receive_turn(ana), receive_turn(bia))
        await ana.send(json.dumps({"type": "text", "text": "Quem sou eu?"}))
        await receive_turn(ana)
        history = [m["content"] for m in stack.llm.requests[-1]["messages"]]
        assert "Eu sou a Ana." in history and "Eu sou a Bia." not in history
        await ana.send(json.dumps({"type": "reset"}))
        assert json.loads(await ana.recv())["type"] == "reset"
        await ana.send(json.dumps({"type": "text", "text": "E agora?"}))
        await receive_turn(ana)
        roles = [m["role"] for m in stack.llm.requests[-1]["messages"]]
        assert roles == ["system", "user", "system"]


async def test_many_parallel_sessions_all_finish() -> None:
    with make_stack(max_active_turns=4, max_queued_turns=64, client_max_turns=64) as stack:

        async def one(i: int) -> str:
            async with websockets.connect(f"{stack.ws_url}?session_id=p{i}") as ws:
                await ws.recv()
                await ws.send(speech_wav(0.5))
                messages, _ = await receive_turn(ws)
                return str(messages[-1]["type"])

        results = await asyncio.gather(*(one(i) for i in range(20)))
        assert results == ["complete"] * 20


# --- speech API -------------------------------------------------------------------------------


def test_transcriptions_openai_compatible(stack: Stack) -> None:
    files = {"file": ("x.wav", speech_wav(), "audio/wav")}
    url = f"{stack.url}/v1/audio/transcriptions"
    assert httpx.post(url, files=files, data={"model": "whisper-1"}).json() == {
        "text": "Olá, meu nome é Ana."
    }
    text = httpx.post(url, files=files, data={"response_format": "text"})
    assert text.text == "Olá, meu nome é Ana."
    verbose = httpx.post(url, files=files, data={"response_format": "verbose_json"}).json()
    assert verbose["language"] == "pt" and verbose["duration"] == pytest.approx(4.469)
    assert httpx.post(url, files={"file": ("x", b"junk")}).status_code == 415


async def test_speech_streams_pcm_and_wav(stack: Stack) -> None:
    text = "Bom dia! Como vai você? Eu vou bem."
    async with httpx.AsyncClient(timeout=30) as client:
        pcm = await client.post(
            f"{stack.url}/v1/audio/speech", json={"input": text, "response_format": "pcm"}
        )
        assert pcm.headers["content-type"] == "audio/pcm"
        assert pcm.headers["x-sample-rate"] == "24000"
        assert len(pcm.content) == sum(len(p) for p in stack.tts.texts) * 240 * 2
        wav = await client.post(f"{stack.url}/v1/audio/speech", json={"input": text})
        assert wav.content[:4] == b"RIFF" and wav.content[44:] == pcm.content
        # Over PARLE_SPEECH_MAX_CHARS (1000): refused before it can hold a compute slot.
        too_long = await client.post(f"{stack.url}/v1/audio/speech", json={"input": "a" * 1001})
        assert too_long.status_code == 413
        assert too_long.json()["error"]["code"] == "input_too_long"
        bad_speed = await client.post(
            f"{stack.url}/v1/audio/speech", json={"input": "oi", "speed": 9}
        )
        assert bad_speed.status_code == 422


def test_sse_level_and_correction_events(stack: Stack) -> None:
    stack.llm.tokens = [*REPLY, " ", CORRECTION[:20], CORRECTION[20:]]
    frames = parse_sse(post_audio(stack, speech_wav()).text)
    names = [event for event, _ in frames]
    assert names.index("transcript") < names.index("level") < names.index("response")
    level = frames[names.index("level")][1]
    assert level["level"] == "A2" and level["estimate"] == "A1" and len(level["scores"]) == 6
    assert names.index("response") < names.index("correction")
    correction = frames[names.index("correction")][1]
    assert correction == {
        "original": "meu nome é Ana",
        "corrected": "o meu nome é Ana",
        "explanation": "artigo",
        "kind": "grammar",
    }
    assert frames[-1][1]["response"] == "".join(REPLY)
    assert "correcao" not in " ".join(stack.tts.texts)
    # what the old client reads is unchanged
    assert [e for e, _ in old_client_view(frames)][-1] == "complete"


async def test_ws_level_and_correction_messages(stack: Stack) -> None:
    stack.llm.tokens = [*REPLY, " ", CORRECTION]
    async with websockets.connect(stack.ws_url) as ws:
        await ws.recv()
        await ws.send(json.dumps({"type": "config", "level": "B2"}))
        await ws.recv()
        await ws.send(speech_wav())
        messages, _ = await receive_turn(ws)
    by_type = {m["type"]: m for m in messages}
    assert by_type["level"]["level"] == "B2"  # the client's level, not moved by one utterance
    assert by_type["correction"]["corrected"] == "o meu nome é Ana"
    assert stack.llm.requests[-1]["max_tokens"] == 120


def test_livekit_token_needs_livekit_configured(stack: Stack) -> None:
    response = httpx.post(f"{stack.url}/api/token", json={})
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "livekit_not_configured"


def test_livekit_token_is_room_scoped_short_lived_and_dispatches_the_tutor() -> None:
    import jwt

    secret = "s" * 40
    with make_stack(
        livekit_url="wss://lk.example", livekit_api_key="APIkey", livekit_api_secret=secret,
        api_keys="k1", token_ttl_s=300,
    ) as stack:  # fmt: skip
        url = f"{stack.url}/api/token"
        assert httpx.post(url, json={}).status_code == 401  # behind the server's keys
        headers = {"authorization": "Bearer k1"}
        body = httpx.post(url, json={"level": "b1"}, headers=headers).json()
        claims = jwt.decode(body["token"], secret, algorithms=["HS256"])
        assert claims["iss"] == "APIkey" and claims["sub"] == body["identity"]
        assert body["room"].startswith("parle-") and body["identity"].startswith("learner-")
        assert claims["video"]["room"] == body["room"] and claims["video"]["roomJoin"] is True
        assert 0 < claims["exp"] - claims["nbf"] <= 300
        assert claims["roomConfig"]["agents"][0]["agentName"] == "parle-tutor"
        assert claims["attributes"] == {"parle.level": "B1", "parle.tenant": key_tenant("k1")}
        assert body["url"] == "wss://lk.example" and body["expires_in"] == 300
        fresh = httpx.post(url, headers=headers).json()
        assert fresh["room"].startswith("parle-") and fresh["room"] != body["room"]
        # The server names rooms and identities (a caller's choice: tests/integration/
        # test_hostile_input.py, with PARLE_TOKEN_TRUST_CLIENT_NAMES).
        chosen = httpx.post(url, json={"room": "aula-1"}, headers=headers)
        assert chosen.status_code == 403
        assert chosen.json()["error"]["code"] == "client_names_not_allowed"


def test_the_page_is_offered_webrtc_only_with_livekit_and_its_client(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    from bridge.routes import page

    bundle = tmp_path / "livekit-client.umd.js"
    bundle.write_text("window.LivekitClient = {};")
    monkeypatch.setattr(page, "LIVEKIT_CLIENT_FILE", bundle)
    livekit = {"livekit_url": "wss://lk.example", "livekit_api_key": "k", "livekit_api_secret": "s"}
    with make_stack(api_keys="k1", **livekit) as stack:
        config_url, auth = f"{stack.url}/api/client-config", {"authorization": "Bearer k1"}
        assert httpx.get(config_url).status_code == 401
        config = httpx.get(config_url, headers=auth).json()
        assert config == {"livekit": True, "livekit_client": "/vendor/livekit-client.umd.js"}
        script = httpx.get(f"{stack.url}/vendor/livekit-client.umd.js")  # public, like the page
        assert script.status_code == 200 and script.headers["content-type"].startswith(
            "text/javascript"
        )
        bundle.unlink()  # not installed: no WebRTC offer, and a clear 404
        assert httpx.get(config_url, headers=auth).json() == {
            "livekit": False,
            "livekit_client": None,
        }
        missing = httpx.get(f"{stack.url}/vendor/livekit-client.umd.js")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_installed"
    with make_stack() as stack:  # no LiveKit configured
        assert httpx.get(f"{stack.url}/api/client-config").json()["livekit"] is False
