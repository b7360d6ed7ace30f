"""Hostile and careless clients against the PARLE server (issue 13 section 5): made-up API keys,
unknown languages, deeply nested JSON, chosen LiveKit names, slow and oversized requests,
secrets and tracebacks in the logs, foreign origins, failing turns, the OpenAPI document.

The server runs on real uvicorn with the options `parle serve` uses (`bridge.serving`), and
is spoken to with real HTTP and WebSocket clients, or raw sockets where a client misbehaves
on purpose. Every wait is bounded: a test fails, it never hangs."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from websockets.exceptions import InvalidStatus

from bridge.app import EngineSet, create_app
from bridge.serving import server_options
from harness.scripted_llm import ScriptedLlmServer
from harness.uvicorn_thread import UvicornThread, free_port
from parle.audio import FloatAudio
from parle.config import Settings, load_settings
from parle.cutter import SentenceCutter
from parle.engines.base import Transcript
from parle.engines.chat import OpenAIChatModel
from parle.testing import InstantSynthesizer, InstantTranscriber
from parle.tutor.levels import LexicalLevelEstimator
from tests.doubles.clients import parse_sse
from tests.doubles.learner import speech_wav
from tests.doubles.stack import REPLY

REPO = Path(__file__).resolve().parents[2]
HEARD = "Olá, meu nome é Ana."


class WhisperLikeTranscriber(InstantTranscriber):
    """Fails as faster-whisper does on a language it does not know (a ValueError inside the
    engine), so an unchecked `language` shows what it did to a real server."""

    async def transcribe(self, audio: FloatAudio, *, language: str | None = None) -> Transcript:
        if language is not None and language not in self.languages:
            raise ValueError(f"'{language}' is not a valid language code")
        return await super().transcribe(audio, language=language)


class Server:
    """The PARLE app (instant engines, a scripted LLM) on uvicorn with `parle serve`'s options."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.llm = ScriptedLlmServer(REPLY).start()
        self.stt = WhisperLikeTranscriber(HEARD)
        estimator = LexicalLevelEstimator()
        estimator.load()
        engines = EngineSet(
            self.stt, OpenAIChatModel(self.llm.url), InstantSynthesizer(), estimator=estimator
        )
        app = create_app(settings, engines=engines)
        self.server = UvicornThread(app, **server_options(settings)).start()
        self.port = self.server.port
        self.url = self.server.base_url
        self.ws_url = f"ws://127.0.0.1:{self.port}/ws/stream"

    def close(self) -> None:
        self.server.stop()
        self.llm.stop()


@contextlib.contextmanager
def serve(**overrides: Any) -> Iterator[Server]:
    server = Server(load_settings(**overrides))
    try:
        yield server
    finally:
        server.close()


def post_audio(server: Server, path: str = "/api/stream-audio", **kwargs: Any) -> httpx.Response:
    field = "file" if path.startswith("/v1") else "audio"
    files = {field: ("learner.wav", speech_wav(), "audio/wav")}
    return httpx.post(f"{server.url}{path}", files=files, timeout=30, **kwargs)


def error_code(response: httpx.Response) -> str:
    return str(response.json()["error"]["code"])


def raw_connection(server: Server) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    sock.settimeout(0.2)
    return sock


def read_until_closed(sock: socket.socket, within_s: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection (or `within_s` passes), and
    how long that took."""
    started, answer = time.monotonic(), b""
    while time.monotonic() - started < within_s:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        except OSError:
            break
        if not chunk:
            break
        answer += chunk
    return answer, time.monotonic() - started


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0


def json_body_of(answer: bytes) -> dict[str, Any]:
    return dict(json.loads(answer.split(b"\r\n\r\n", 1)[1]))


def metric(server: Server, line_start: str) -> float:
    for line in httpx.get(f"{server.url}/metrics").text.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


# --- 1. per-client limits belong to a verified key, else to the address ---------------------


def test_made_up_keys_do_not_buy_fresh_limits_when_keys_are_off() -> None:
    with serve(client_turns_per_minute=2) as server:
        codes = [
            post_audio(server, headers={"x-api-key": "first-made-up"}).status_code,
            post_audio(server, params={"api_key": "second-made-up"}).status_code,
            post_audio(server, headers={"authorization": "Bearer third-made-up"}).status_code,
        ]
        assert codes == [200, 200, 429]  # one address, one budget, whatever keys it shows


def test_valid_keys_sharing_a_prefix_have_separate_limits() -> None:
    keys = "learner-app-key-aaaa,learner-app-key-bbbb"
    with serve(api_keys=keys, client_turns_per_minute=1) as server:
        first, second = ({"x-api-key": key} for key in keys.split(","))
        assert post_audio(server, headers=first).status_code == 200
        limited = post_audio(server, headers=first)
        assert limited.status_code == 429 and error_code(limited) == "rate_limited"
        assert post_audio(server, headers=second).status_code == 200


def test_an_agent_keys_rooms_are_clients_of_their_own_and_no_one_elses_are() -> None:
    with serve(
        api_keys="worker-key,app-key", agent_api_keys="worker-key", client_turns_per_minute=1
    ) as server:
        path = "/v1/audio/transcriptions"  # the agent's path

        def as_room(key: str, room: str) -> int:
            headers = {"x-api-key": key, "x-parle-room": room}
            return post_audio(server, path, headers=headers).status_code

        # The worker's rooms each have their own budget; each is still limited.
        assert [as_room("worker-key", "aula-1"), as_room("worker-key", "aula-2")] == [200, 200]
        assert as_room("worker-key", "aula-1") == 429
        # Another key naming rooms buys nothing: the header counts for agent keys only.
        assert [as_room("app-key", "r1"), as_room("app-key", "r2")] == [200, 429]


def test_without_keys_a_workers_rooms_are_clients_of_their_own() -> None:
    """A laptop (keyless, loopback) running two calls at once: each room the worker names has
    its own budget, as with an agent key; without the header, one address is one client."""
    with serve(client_turns_per_minute=1) as server:
        path = "/v1/audio/transcriptions"

        def as_room(room: str | None) -> int:
            headers = {"x-parle-room": room} if room else {}
            return post_audio(server, path, headers=headers).status_code

        assert [as_room("aula-1"), as_room("aula-2"), as_room("aula-1")] == [200, 200, 429]
        assert [as_room(None), as_room(None)] == [200, 429]
        assert as_room("not a room!") == 429  # a malformed name is the address's own budget


# --- 2. a language the recognizer does not know is the client's error -----------------------


def test_unknown_language_is_refused_on_sse_and_transcriptions() -> None:
    with serve() as server:
        for path in ("/api/stream-audio", "/v1/audio/transcriptions"):
            refused = post_audio(server, path, data={"language": "zz"})
            assert refused.status_code == 422, (path, refused.text)
            assert error_code(refused) == "bad_language"
            assert post_audio(server, path, data={"language": "pt-BR"}).status_code == 200
        assert server.stt.calls == 2  # the refused requests never reached the engine


async def test_unknown_language_in_ws_config_is_refused_and_later_turns_work() -> None:
    with serve() as server:
        async with websockets.connect(server.ws_url) as ws:
            assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "ready"
            await ws.send(json.dumps({"type": "config", "language": "zz"}))
            answer = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert answer == {"type": "error", "message": answer["message"], "code": "bad_language"}
            await ws.send(speech_wav())
            last: dict[str, Any] = {}
            while last.get("type") not in ("complete", "error"):
                message = await asyncio.wait_for(ws.recv(), 30)
                if isinstance(message, str):
                    last = json.loads(message)
            assert last["type"] == "complete" and last["transcript"] == HEARD, last


# --- 3. deeply nested JSON ---------------------------------------------------------------------


def test_deeply_nested_json_is_a_client_error_on_every_json_route() -> None:
    # Under the JSON body cap (64 KiB), so the parser itself meets the nesting.
    nested = b"[" * 60_000
    headers = {"content-type": "application/json"}
    with serve(
        livekit_url="wss://lk.example", livekit_api_key="k", livekit_api_secret="s" * 40
    ) as server:
        reset = httpx.post(f"{server.url}/api/reset", content=nested, headers=headers)
        assert reset.status_code == 422 and error_code(reset) == "no_session_id"
        for path in ("/api/token", "/v1/audio/speech", "/api/agent/metrics"):
            response = httpx.post(f"{server.url}{path}", content=nested, headers=headers)
            assert 400 <= response.status_code < 500, (path, response.status_code)
            assert response.json()["error"]["code"], path
        assert httpx.get(f"{server.url}/health").status_code == 200


# --- 4. LiveKit names are the server's to choose -------------------------------------------


LIVEKIT = {"livekit_url": "wss://lk.example", "livekit_api_key": "APIkey"}
SECRET = "s" * 40


def test_token_refuses_client_chosen_room_and_identity_by_default() -> None:
    import jwt

    with serve(**LIVEKIT, livekit_api_secret=SECRET) as server:
        url = f"{server.url}/api/token"
        for chosen in ({"room": "parle-abc123"}, {"identity": "learner-1234"}):
            refused = httpx.post(url, json=chosen)
            assert refused.status_code == 403, chosen
            assert error_code(refused) == "client_names_not_allowed"
        body = httpx.post(url, json={"name": "Ana", "level": "b1"}).json()
        claims = jwt.decode(body["token"], SECRET, algorithms=["HS256"])
        assert body["room"].startswith("parle-") and body["identity"].startswith("learner-")
        assert claims["video"]["room"] == body["room"] and claims["sub"] == body["identity"]
        assert claims["name"] == "Ana"


def test_token_signs_chosen_names_only_for_a_trusted_backend() -> None:
    import jwt

    with serve(**LIVEKIT, livekit_api_secret=SECRET, token_trust_client_names=True) as server:
        url = f"{server.url}/api/token"
        body = httpx.post(url, json={"room": "aula-1", "identity": "ana"}).json()
        claims = jwt.decode(body["token"], SECRET, algorithms=["HS256"])
        assert claims["video"]["room"] == "aula-1" and claims["sub"] == "ana"
        bad = httpx.post(url, json={"room": "../x"})
        assert bad.status_code == 422 and error_code(bad) == "bad_session_id"


# --- 5. slow and oversized request heads and bodies -----------------------------------------


def test_headers_sent_slowly_are_cut_off() -> None:
    with serve(header_timeout_s=1.0) as server:
        sock = raw_connection(server)
        with sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\n")
            started, answer = time.monotonic(), b""
            while time.monotonic() - started < 8:  # a slowloris: a header line every 0.2 s
                try:
                    chunk = sock.recv(4096)
                except TimeoutError:
                    with contextlib.suppress(OSError):
                        sock.sendall(b"X-Slow: 1\r\n")
                    continue
                except OSError:
                    break
                if not chunk:
                    break
                answer += chunk
            held = time.monotonic() - started
        assert held < 3.0, f"a slow client held its connection {held:.1f} s"
        assert status_of(answer) == 408
        assert json_body_of(answer)["error"]["code"] == "request_timeout"


def test_a_connection_that_sends_nothing_is_closed() -> None:
    with serve(header_timeout_s=1.0) as server, raw_connection(server) as sock:
        answer, held = read_until_closed(sock, within_s=8)
        assert held < 3.0 and answer == b""  # nothing asked, nothing answered: closed


def test_body_sent_slowly_is_cut_off() -> None:
    with serve(body_timeout_s=1.0) as server, raw_connection(server) as sock:
        sock.sendall(
            b"POST /api/reset HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n{"
        )
        started, answer = time.monotonic(), b""
        while time.monotonic() - started < 8:  # one byte every 0.2 s
            try:
                chunk = sock.recv(4096)
            except TimeoutError:
                with contextlib.suppress(OSError):
                    sock.sendall(b" ")
                continue
            except OSError:
                break
            if not chunk:
                break
            answer += chunk
        held = time.monotonic() - started
        assert held < 3.0, f"a slow body held its connection {held:.1f} s"
        assert status_of(answer) == 408
        assert json_body_of(answer)["error"]["code"] == "request_timeout"


WS_UPGRADE = (
    b"Host: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
)


@pytest.mark.parametrize(
    ("head", "status"),
    [
        (b"GET /ws/stream?pad=" + b"a" * 10_000 + b" HTTP/1.1\r\n" + WS_UPGRADE, 414),
        (b"GET /ws/stream HTTP/1.1\r\n" + WS_UPGRADE + b"X-Big: " + b"b" * 10_000 + b"\r\n", 431),
        (b"GET /ws/stream HTTP/1.1\r\n" + WS_UPGRADE + b"X-Many: 1\r\n" * 130, 431),
        (b"GET /health?pad=" + b"a" * 10_000 + b" HTTP/1.1\r\nHost: x\r\n", 414),
        (b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"X-Pad: " + b"c" * 5_000 + b"\r\n" * 1, 200),
        (b"GET /health HTTP/1.1\r\nHost: x\r\n" + (b"X-Pad: " + b"c" * 5_000 + b"\r\n") * 4, 431),
    ],
    ids=["ws-long-line", "ws-long-header", "ws-many-headers", "long-line", "fine", "big-head"],
)
def test_oversized_request_heads_are_answered_at_once(head: bytes, status: int) -> None:
    with serve() as server, raw_connection(server) as sock:
        sock.sendall(head + b"Connection: close\r\n\r\n" if status == 200 else head + b"\r\n")
        started = time.monotonic()
        answer, _ = read_until_closed(sock, within_s=5)
        assert status_of(answer) == status, answer[:200]
        assert time.monotonic() - started < 2.0


def test_keep_alive_requests_and_websockets_still_work_through_the_guard() -> None:
    with serve(header_timeout_s=1.0) as server:
        with raw_connection(server) as sock:
            for _ in range(2):  # two requests on one connection, each head in two pieces
                sock.sendall(b"GET /health HTTP/1.1\r\n")
                time.sleep(0.1)
                sock.sendall(b"Host: localhost\r\n\r\n")
                answer = b""
                while b'"ok"}' not in answer:
                    answer += sock.recv(4096)
                assert status_of(answer) == 200
                time.sleep(0.6)  # 1.2 s in all on this connection: over the head time limit

        async def ready() -> str:
            async with websockets.connect(server.ws_url) as ws:
                await asyncio.sleep(1.5)  # an open WebSocket is not a slow request head
                await ws.send(json.dumps({"type": "ping"}))
                assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "ready"
                return str(json.loads(await asyncio.wait_for(ws.recv(), 10))["type"])

        assert asyncio.run(ready()) == "pong"


def test_connections_beyond_the_limit_are_answered_busy() -> None:
    with serve(max_connections=3) as server:
        idle = [raw_connection(server) for _ in range(3)]
        try:
            time.sleep(0.2)
            over = httpx.get(f"{server.url}/health", timeout=5)
            assert over.status_code == 503
        finally:
            for sock in idle:
                sock.close()
        deadline = time.monotonic() + 5
        while httpx.get(f"{server.url}/health", timeout=5).status_code != 200:
            assert time.monotonic() < deadline, "the server did not recover"
            time.sleep(0.1)


# --- 6. a chunked body over the cap is refused while it streams ---------------------------


@pytest.mark.parametrize("path", ["/api/reset", "/api/agent/metrics", "/v1/audio/speech"])
def test_chunked_json_over_the_cap_is_413_while_it_streams(path: str) -> None:
    # /api/reset reads its body itself; FastAPI parses the others' (and used to turn the
    # refusal into a 400, after reading the whole body).
    with serve() as server, raw_connection(server) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: localhost\r\n".encode()
            + b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        chunk = b"4000\r\n" + b" " * 0x4000 + b"\r\n"
        sent = 0
        while sent < 11 * 1024 * 1024:  # what the probe sent; the server should stop us early
            if select.select([sock], [], [], 0)[0]:
                break
            try:
                sock.sendall(chunk)
            except OSError:
                break
            sent += 0x4000
        answer, _ = read_until_closed(sock, within_s=5)
        assert status_of(answer) == 413, answer[:200]
        assert json_body_of(answer)["error"]["code"] == "too_large"
        # Socket buffers hold a few MB on loopback; the point is that the answer came while
        # the body was still streaming, not after all of it.
        assert sent < 11 * 1024 * 1024, "the server answered only after the whole body"


def test_json_bodies_have_a_small_cap() -> None:
    with serve() as server:
        big = {"session_id": "s", "padding": "x" * 100_000}
        refused = httpx.post(f"{server.url}/api/reset", json=big)
        assert refused.status_code == 413 and error_code(refused) == "too_large"
        fine = httpx.post(f"{server.url}/api/reset", json={"session_id": "s"})
        assert fine.status_code == 200
        assert post_audio(server).status_code == 200  # uploads keep their own, larger cap


# --- 7. logs: JSON lines, no keys, no tracebacks --------------------------------------------

SERVE_SCRIPT = """
import sys
from bridge.app import EngineSet, create_app
from bridge.serving import serve
from parle.config import load_settings
from parle.engines.chat import OpenAIChatModel
from parle.logs import configure_logging
from parle.testing import InstantSynthesizer, InstantTranscriber
from parle.tutor.levels import LexicalLevelEstimator

port, llm_url, key = int(sys.argv[1]), sys.argv[2], sys.argv[3]
configure_logging("INFO")  # as `parle --log-level INFO serve` does
settings = load_settings(api_keys=key)
estimator = LexicalLevelEstimator()
estimator.load()
engines = EngineSet(
    InstantTranscriber(sys.argv[4], vad=False), OpenAIChatModel(llm_url), InstantSynthesizer(),
    estimator=estimator,
)
serve(create_app(settings, engines=engines), settings, host="127.0.0.1", port=port,
      log_level="INFO")
"""


def test_logs_at_info_are_json_lines_without_keys_or_tracebacks() -> None:
    key = "sekrit-key-5f3a9c"
    llm = ScriptedLlmServer(REPLY).start()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [sys.executable, "-c", SERVE_SCRIPT, str(port), llm.url, key, HEARD],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
        cwd=REPO,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, "the server exited"
            assert time.monotonic() < deadline, "the server did not start"
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            time.sleep(0.2)
        files = {"audio": ("x.wav", speech_wav(), "audio/wav")}
        turn = httpx.post(f"{url}/api/stream-audio?api_key={key}", files=files, timeout=30)
        assert parse_sse(turn.text)[-1][1]["transcript"] == HEARD  # a whole turn, logged
        assert httpx.get(f"{url}/api/client-config", params={"api_key": key}).status_code == 200

        async def open_socket() -> None:
            async with websockets.connect(f"ws://127.0.0.1:{port}/ws/stream?api_key={key}") as ws:
                assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "ready"

        asyncio.run(open_socket())
        # An abandoned upload: a declared 200 kB body, 10 kB of it, then the client is gone.
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(
                b"POST /api/stream-audio HTTP/1.1\r\nHost: localhost\r\nX-API-Key: " + key.encode()
                + b"\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                b"Content-Length: 200000\r\n\r\n--b\r\nContent-Disposition: form-data; "
                b'name="audio"; filename="a.wav"\r\n\r\n' + b"\x00" * 10_000
            )  # fmt: skip
            time.sleep(0.3)
        time.sleep(0.5)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            _, stderr = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            _, stderr = process.communicate(timeout=10)
        llm.stop()
    lines = stderr.decode("utf-8").splitlines()
    entries = []
    for line in lines:
        try:
            entries.append(json.loads(line))
        except ValueError:
            pytest.fail(f"not a JSON line: {line!r}")
    assert key not in stderr.decode("utf-8")
    assert any("api_key=[redacted]" in entry["event"] for entry in entries)  # logged, blanked
    assert any(entry["logger"] == "uvicorn.access" for entry in entries)
    assert HEARD not in stderr.decode("utf-8")  # a learner's words only at DEBUG
    left = [entry for entry in entries if entry["event"] == "client left during its request"]
    assert left and left[0]["level"] == "info"
    assert [entry for entry in entries if entry["level"] in ("error", "critical")] == []


# --- 8. origins: CORS headers on refusals, and the WebSocket's Origin checked ---------------


def test_a_refusal_to_an_allowed_origin_carries_the_cors_headers() -> None:
    with serve(api_keys="k1", cors_origins="https://app.example") as server:
        refused = httpx.post(
            f"{server.url}/api/reset",
            json={"session_id": "s"},
            headers={"origin": "https://app.example"},
        )
        assert refused.status_code == 401
        assert refused.headers.get("access-control-allow-origin") == "https://app.example"


async def test_websocket_from_a_foreign_origin_is_refused() -> None:
    with serve(cors_origins="https://app.example") as server:
        with pytest.raises(InvalidStatus) as refused:
            async with websockets.connect(server.ws_url, origin="https://evil.example"):  # type: ignore[arg-type]
                pass
        assert refused.value.response.status_code == 403
        own = f"http://127.0.0.1:{server.port}"
        for origin in ("https://app.example", own, None):  # listed, same-origin, no browser
            async with websockets.connect(server.ws_url, origin=origin) as ws:  # type: ignore[arg-type]
                assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "ready"


# --- 9. failing turns are counted; the OpenAPI document describes uploads and errors --------


def test_failing_turns_are_counted_by_outcome(monkeypatch: pytest.MonkeyPatch) -> None:
    with serve() as server:
        server.llm.fail_status = 500
        failed = parse_sse(post_audio(server).text)[-1]
        assert failed[0] == "error"
        outcome = failed[1]["code"]
        assert metric(server, f'parle_turns_total{{outcome="{outcome}",protocol="sse"}}') == 1.0
        server.llm.fail_status = None

        # A failing level estimate costs the turn only its estimate: the reply goes on.
        def broken(self: LexicalLevelEstimator, text: str) -> Any:
            raise RuntimeError("estimator broke")

        monkeypatch.setattr(LexicalLevelEstimator, "estimate", broken)
        names = [name for name, _ in parse_sse(post_audio(server).text)]
        assert "level" not in names and names[-1] == "complete"

        # A bug in PARLE's own code mid-turn: answered as `internal`, and counted.
        def cutter_bug(self: SentenceCutter, text: str) -> list[str]:
            raise KeyError("cutter broke")

        monkeypatch.setattr(SentenceCutter, "push", cutter_bug)
        unexpected = parse_sse(post_audio(server).text)[-1]
        assert unexpected == (
            "error",
            {"message": "Internal error; the turn was stopped.", "code": "internal"},
        )
        assert metric(server, 'parle_turns_total{outcome="internal",protocol="sse"}') == 1.0


def test_openapi_describes_the_uploads_and_the_errors() -> None:
    with serve() as server:
        document = httpx.get(f"{server.url}/openapi.json").json()
        assert "ErrorBody" in document["components"]["schemas"]
        uploads = {"/api/stream-audio": "audio", "/v1/audio/transcriptions": "file"}
        for path, field in uploads.items():
            operation = document["paths"][path]["post"]
            body = operation["requestBody"]["content"]["multipart/form-data"]["schema"]
            assert body["required"] == [field]
            assert body["properties"][field]["format"] == "binary"
            assert "language" in body["properties"]
            for status in ("413", "415", "422", "429"):
                schema = operation["responses"][status]["content"]["application/json"]["schema"]
                assert schema["$ref"].endswith("/ErrorBody"), (path, status)
        speech = document["paths"]["/v1/audio/speech"]["post"]["responses"]
        assert "audio/wav" in speech["200"]["content"] and "422" in speech
