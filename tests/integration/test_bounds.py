"""Bounds a hostile-input probe found missing (issue 24, sections 3 and 5), on the real server
with real clients: realtime text awaiting a response is a typed turn at most; a prompt over the
LLM's context is a clear error or a shorter history, never an empty reply reported complete;
a realtime client that stops reading is disconnected; WebSockets are counted against
`PARLE_MAX_CONNECTIONS` before they are accepted, and open ones never make `/ready` a 503; an
unknown scenario is refused by `session.update`; an agent turn needs its session id."""

from __future__ import annotations

import asyncio
import contextlib
import json
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest
import websockets
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from bridge.app import EngineSet, create_app
from harness.uvicorn_thread import UvicornThread, free_port
from parle.config import load_settings
from parle.engines.base import ChatMessage
from parle.engines.chat import OpenAIChatModel
from parle.errors import LlmUnavailableError
from parle.realtime.session import NOT_READING
from parle.testing import InstantSynthesizer, InstantTranscriber
from parle.turn import MAX_TYPED_CHARS
from parle.tutor.levels import LexicalLevelEstimator
from parle.tutor.scenarios import scenarios
from tests.doubles.stack import make_stack
from tests.integration.test_hostile_input import serve
from tests.integration.test_realtime import Client, connect, metric

pytestmark = pytest.mark.timeout(120)


def words(count: int) -> str:
    """Learner-like text of `count` characters."""
    return ("Eu gosto de ler livros e de andar no parque. " * (count // 40 + 1))[:count].strip()


# --- realtime text awaiting a response: a typed turn at most ----------------------------------


async def test_realtime_text_past_a_typed_turn_is_refused() -> None:
    with make_stack() as stack:
        async with connect(stack) as client:
            await client.until("session.created")
            whole = words(MAX_TYPED_CHARS)
            await client.type_text(whole)
            await client.until("conversation.item.added")
            # One character more, in a second item or in a second part: refused, not kept.
            await client.type_text("a", event_id="e1")
            error = (await client.until("error"))["error"]
            assert (error["code"], error["event_id"]) == ("text_too_long", "e1")
            assert error["type"] == "invalid_request_error"
            await client.send("response.create")
            done = await client.until("response.done")
            assert done["response"]["status"] == "completed"
            assert stack.llm.requests[-1]["messages"][-2] == {"role": "user", "content": whole}
            half = words(MAX_TYPED_CHARS // 2 + 1)
            await client.type_text(half, half, event_id="e2")
            error = (await client.until("error"))["error"]
            assert (error["code"], error["event_id"]) == ("text_too_long", "e2")
            assert len(client.of("conversation.item.added")) == 1
            assert len(stack.llm.requests) == 1


# --- a prompt over the LLM's context ----------------------------------------------------------


class ContextLimitedLlm:
    """An OpenAI-compatible chat server whose model holds `limit` characters of conversation
    (its system messages aside). A prompt over it is answered as llama-cpp-python's server
    answers one (`empty`: a 200 stream with nothing in it, then the end; measured with
    SmolLM2 and `--n_ctx 256`), or as vLLM's and llama.cpp's own server do (`refuse`: a 400
    naming the context length)."""

    def __init__(self, limit: int, over: Literal["empty", "refuse"]) -> None:
        self.limit = limit
        self.over = over
        self.requests: list[list[dict[str, str]]] = []
        self._server = UvicornThread(self._app(), lifespan="off").start()
        self.url = f"{self._server.base_url}/v1"

    def _app(self) -> Starlette:
        async def models(_: Request) -> Response:
            return JSONResponse({"object": "list", "data": [{"id": "limited"}]})

        async def chat(request: Request) -> Response:
            messages = (await request.json())["messages"]
            self.requests.append(messages)
            held = sum(len(m["content"]) for m in messages if m["role"] != "system")
            if held <= self.limit:
                reply = _events(["Muito bem!", " E você?"])
                return StreamingResponse(reply, media_type="text/event-stream")
            if self.over == "empty":
                return StreamingResponse(_events([]), media_type="text/event-stream")
            error = {
                "message": f"This model's maximum context length is {self.limit} tokens.",
                "type": "invalid_request_error",
                "code": "context_length_exceeded",
            }
            return JSONResponse({"error": error}, status_code=400)

        return Starlette(
            routes=[
                Route("/v1/models", models),
                Route("/v1/chat/completions", chat, methods=["POST"]),
            ]
        )

    def stop(self) -> None:
        self._server.stop()


async def _events(tokens: list[str]) -> AsyncIterator[str]:
    if not tokens:
        return  # llama-cpp-python: the prompt was refused inside the stream, after the 200
    for token in tokens:
        yield f"data: {json.dumps({'choices': [{'delta': {'content': token}}]})}\n\n"
    yield 'data: {"choices": [{"delta": {}, "finish_reason": "stop"}]}\n\n'
    yield "data: [DONE]\n\n"


class LimitedServer:
    """The PARLE app (instant engines) on uvicorn with a `ContextLimitedLlm`; as the realtime
    tests' helpers (`connect`, `metric`) use a `Stack`."""

    def __init__(self, llm: ContextLimitedLlm, folder: str) -> None:
        self.llm = llm
        estimator = LexicalLevelEstimator()
        estimator.load()
        engines = EngineSet(
            InstantTranscriber(), OpenAIChatModel(llm.url), InstantSynthesizer(),
            estimator=estimator,
        )  # fmt: skip
        settings = load_settings(database_url=f"sqlite:///{folder}/parle.db")
        self.server = UvicornThread(create_app(settings, engines=engines)).start()
        self.url = self.server.base_url


@contextlib.contextmanager
def limited_server(limit: int, over: Literal["empty", "refuse"]) -> Iterator[LimitedServer]:
    llm = ContextLimitedLlm(limit, over)
    try:
        with tempfile.TemporaryDirectory(prefix="parle-bounds-") as folder:
            server = LimitedServer(llm, folder)
            try:
                yield server
            finally:
                server.server.stop()
    finally:
        llm.stop()


async def typed_turn(client: Client, text: str) -> dict[str, Any]:
    await client.type_text(text)
    await client.send("response.create")
    return dict((await client.until("response.done"))["response"])


async def test_a_prompt_over_the_context_cut_off_after_its_200_is_an_error() -> None:
    with limited_server(limit=1500, over="empty") as server:
        async with connect(server) as client:
            await client.until("session.created")
            response = await typed_turn(client, words(1800))
            assert response["status"] == "failed"
            error = client.of("error")[-1]["error"]
            assert (error["code"], error["type"]) == ("llm_unavailable", "server_error")
            assert "response.output_audio_transcript.done" not in client.types()
            assert metric(server, 'parle_turns_total{outcome="ok",protocol="realtime"}') == 0


async def test_a_prompt_over_the_context_drops_the_older_history_then_fails_clearly() -> None:
    with limited_server(limit=1800, over="refuse") as server:
        llm = server.llm
        async with connect(server) as client:
            await client.until("session.created")
            first, second = words(1000), words(990)
            assert (await typed_turn(client, first))["status"] == "completed"
            # With the first exchange the prompt is over the context: sent again without it.
            response = await typed_turn(client, second)
            assert response["status"] == "completed"
            over, fitted = llm.requests[-2:]
            assert [m["content"] for m in over if m["role"] == "user"] == [first, second]
            assert [m["content"] for m in fitted if m["role"] == "user"] == [second]
            # The words alone are over the context: no history left to drop, a clear error.
            response = await typed_turn(client, words(1900))
            assert response["status"] == "failed"
            error = client.of("error")[-1]["error"]
            assert error["code"] == "llm_context_exceeded"
            assert "too long" in error["message"]


async def test_llama_cpp_python_cuts_a_prompt_over_its_context_and_the_client_says_so(
    tmp_path: Path,
) -> None:
    """The real llama-cpp-python server (the `cpu` profile's), whose stream the fake above
    copies: a 200, then nothing."""
    from parle.engines.llm_server import LlmServer
    from parle.models import llm_spec, require

    base = load_settings(profile="cpu")
    settings = load_settings(
        profile="cpu",
        llm_url=f"http://127.0.0.1:{free_port()}/v1",
        cache_dir=tmp_path,
        llm_gguf=str(require(llm_spec(base), base).path),
        llm_context=256,
        llm_threads=1,
    )
    server = LlmServer(settings, gguf=Path(settings.llm_gguf))
    await server.start()
    try:
        chat = OpenAIChatModel(settings.llm_url)
        with pytest.raises(LlmUnavailableError, match="before its answer's end"):
            async for _ in chat.stream([{"role": "user", "content": "olá " * 600}]):
                pass
        await chat.aclose()  # the server drops that connection: not one to reuse at once
        chat = OpenAIChatModel(settings.llm_url)
        short: list[ChatMessage] = [{"role": "user", "content": "Olá!"}]
        assert [token async for token in chat.stream(short, max_tokens=4)]
        await chat.aclose()
    finally:
        await server.stop()


# --- a realtime client that stops reading -----------------------------------------------------


async def test_a_realtime_client_that_stops_reading_is_closed() -> None:
    # The outbox holds what a client may send in one event (PARLE_MAX_UPLOAD_BYTES): 1 MiB.
    # Long replies (0.6 MB of audio each, at once: a reading client keeps up), uncompressed
    # (the instant synthesizer's tone deflates to nothing), fill the socket's buffers fast.
    with make_stack(max_upload_bytes=1024 * 1024, client_turns_per_minute=10_000) as stack:
        stack.llm.tokens = stack.llm.tokens * 20
        async with connect(stack, max_queue=4, compression=None) as client:
            await client.until("session.created")
            refused = 'parle_errors_total{kind="client_not_reading"}'
            deadline = time.monotonic() + 30  # the client's own keepalive gives up at 40 s
            while await asyncio.to_thread(metric, stack, refused) == 0:
                assert time.monotonic() < deadline, "a client that never reads was kept"
                await client.type_text("Oi!")
                await client.send("response.create")
                await asyncio.sleep(0.05)
            # Reading again: what was sent before the session ended, then its close.
            with pytest.raises(websockets.ConnectionClosed) as closed:
                async with asyncio.timeout(30):
                    while True:
                        await client.ws.recv()
            assert closed.value.rcvd is not None
            assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1008, NOT_READING)
        # The server is fine: a new session is served.
        async with connect(stack) as client:
            await client.until("session.created")
            assert (await typed_turn(client, "Bom dia"))["status"] == "completed"


# --- WebSockets against PARLE_MAX_CONNECTIONS -------------------------------------------------


async def test_websockets_past_the_limit_are_refused_and_probes_still_answer() -> None:
    with serve(max_connections=3) as server:
        realtime_url = f"ws://127.0.0.1:{server.port}/v1/realtime"

        async def probes() -> None:
            for path in ("/health", "/ready", "/metrics"):
                probe = await asyncio.to_thread(httpx.get, f"{server.url}{path}", timeout=5)
                assert probe.status_code == 200, (path, probe.text)

        async with contextlib.AsyncExitStack() as held:
            for url in (server.ws_url, server.ws_url, realtime_url):
                ws = await held.enter_async_context(websockets.connect(url))
                first = json.loads(await asyncio.wait_for(ws.recv(), 10))
                assert first["type"] in ("ready", "session.created")
            await probes()  # every slot is taken: the probes still answer
            for url in (server.ws_url, realtime_url):  # each door refuses past the limit
                async with websockets.connect(url) as refused:
                    answer = json.loads(await asyncio.wait_for(refused.recv(), 10))
                    assert answer["type"] == "error", answer
                    error = answer if url == server.ws_url else answer["error"]
                    assert error["code"] == "too_many_connections", answer
                    with pytest.raises(websockets.ConnectionClosed) as closed:
                        await asyncio.wait_for(refused.recv(), 10)
                    assert closed.value.rcvd is not None
                    assert closed.value.rcvd.code == 1013
            await probes()
            sockets = 'parle_active_sessions{kind="websocket"}'
            assert await asyncio.to_thread(metric, server, sockets) == 3
            refusals = 'parle_errors_total{kind="too_many_connections"}'
            assert await asyncio.to_thread(metric, server, refusals) == 2
        # The slots are free again once the sockets close.
        async with websockets.connect(server.ws_url) as ws:
            assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "ready"


# --- session.update with an unknown scenario ---------------------------------------------------


async def test_realtime_refuses_an_unknown_scenario_at_once() -> None:
    known = next(iter(scenarios()))
    with make_stack() as stack:
        async with connect(stack) as client:
            await client.until("session.created")
            update = {"parle": {"scenario": "no-such-lesson", "level": "B1"}}
            await client.send("session.update", session=update, event_id="e1")
            error = (await client.until("error"))["error"]
            assert (error["code"], error["event_id"]) == ("bad_scenario", "e1")
            await client.send("session.update", session={})
            session = (await client.until("session.updated"))["session"]
            assert session["parle"]["scenario"] is None
            assert session["parle"]["level"] == "A2"  # nothing of the refused update applied
            await client.send("session.update", session={"parle": {"scenario": known.upper()}})
            session = (await client.until("session.updated"))["session"]
            assert session["parle"]["scenario"] == known


# --- an agent turn needs its session id --------------------------------------------------------


def test_an_agent_turn_without_a_session_id_is_refused() -> None:
    turn = {"session_id": "", "learner_id": "caio", "transcript": "Eu gosto de futebol.",
            "reply": "Legal!", "level": "A2"}  # fmt: skip
    with make_stack() as stack:
        url = f"{stack.url}/api/agent/turns"
        refused = httpx.post(url, json=turn, timeout=10)
        assert refused.status_code == 422, refused.text
        assert "session_id" in refused.json()["error"]["message"]
        bad = httpx.post(url, json={**turn, "session_id": "a/b"}, timeout=10)
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "bad_session_id"
        accepted = httpx.post(url, json={**turn, "session_id": "s1"}, timeout=10)
        assert accepted.status_code == 202, accepted.text
