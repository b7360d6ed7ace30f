"""A scripted OpenAI-compatible chat server on loopback (real uvicorn, real HTTP/SSE).

It stands in for llama.cpp's and vLLM's servers (the real llama.cpp server is tested in
tests/integration/test_llamacpp_server.py) when a test must know exactly what the LLM says.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from harness.uvicorn_thread import UvicornThread


class ScriptedLlmServer:
    """Streams `tokens`, `delay_s` apart, to every streamed chat completion request
    (`requests`). A request that is not streamed (the agent's prompt prefill: one token) is
    answered whole and kept apart (`prefills`)."""

    def __init__(self, tokens: list[str], *, delay_s: float = 0.0, model: str = "scripted") -> None:
        self.tokens = tokens
        self.delay_s = delay_s
        self.model = model
        self.fail_status: int | None = None
        self.requests: list[dict[str, Any]] = []
        self.prefills: list[dict[str, Any]] = []
        self.completed = 0
        self.disconnected = 0
        self.disconnected_at: float | None = None
        self._server = UvicornThread(self._app(), lifespan="off")

    @property
    def url(self) -> str:
        return f"{self._server.base_url}/v1"

    def _app(self) -> Starlette:
        async def models(_: Request) -> Response:
            return JSONResponse({"object": "list", "data": [{"id": self.model, "object": "model"}]})

        async def chat(request: Request) -> Response:
            body = await request.json()
            (self.requests if body.get("stream") else self.prefills).append(body)
            if self.fail_status is not None:
                return JSONResponse({"error": "scripted failure"}, status_code=self.fail_status)
            if not body.get("stream"):
                message = {"role": "assistant", "content": self.tokens[0] if self.tokens else ""}
                choice = {"index": 0, "message": message, "finish_reason": "length"}
                return JSONResponse({"object": "chat.completion", "choices": [choice]})
            return StreamingResponse(self._events(), media_type="text/event-stream")

        return Starlette(
            routes=[
                Route("/v1/models", models),
                Route("/v1/chat/completions", chat, methods=["POST"]),
            ]
        )

    async def _events(self) -> AsyncIterator[str]:
        finished = False
        try:
            for token in self.tokens:
                if self.delay_s:
                    await asyncio.sleep(self.delay_s)
                chunk = {"choices": [{"index": 0, "delta": {"content": token}}]}
                yield f"data: {json.dumps(chunk)}\n\n"
            yield 'data: {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}\n\n'
            yield "data: [DONE]\n\n"
            finished = True
        finally:
            if finished:
                self.completed += 1
            else:
                self.disconnected += 1
                self.disconnected_at = time.monotonic()

    def start(self) -> ScriptedLlmServer:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    async def wait_for(self, predicate: Any, within_s: float = 5.0) -> bool:
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            if predicate():
                return True
            await asyncio.sleep(0.01)
        return bool(predicate())
