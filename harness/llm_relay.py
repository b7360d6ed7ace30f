"""A pass-through in front of a real OpenAI-compatible LLM server (llama.cpp in the `cpu`
profile) on loopback: the LiveKit agent talks to the real model through it, and a test can see
each chat stream (read to the end, or closed by the agent first) and slow the tokens down.

Why a relay: SmolLM2-135M writes a whole reply in about a second, long before the tutor has
spoken it, so "an interruption closes the LLM stream" cannot be observed on it as it is. Paced
to a large model's speed, the reply is still being written while it is spoken, as in
production, and a barge-in must close the stream (which stops the real server generating).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from harness.uvicorn_thread import UvicornThread


@dataclass
class RelayedStream:
    """One streamed chat completion as the relay saw it."""

    started_at: float
    chunks: int = 0
    finished: bool = False  # the upstream's [DONE] reached the client
    closed_early: bool = False  # the client went away before [DONE]
    ended_at: float | None = None


class LlmRelay:
    """Relays `/v1/*` to `upstream` (".../v1"); streamed chat completions are recorded in
    `streams`, paced `pace_s` apart per content chunk (0: as fast as the model), and held open
    `hold_end_s` after their last chunk (a reply still being written, however short the small
    model's was)."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.pace_s = 0.0
        self.hold_end_s = 0.0
        self.streams: list[RelayedStream] = []
        self._server = UvicornThread(self._app(), lifespan="off")

    @property
    def url(self) -> str:
        return f"{self._server.base_url}/v1"

    def start(self) -> LlmRelay:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def _app(self) -> Starlette:
        async def relay(request: Request) -> Response:
            path = request.path_params["path"]
            body = await request.body()
            headers = {"content-type": request.headers.get("content-type", "application/json")}
            client = httpx.AsyncClient(timeout=httpx.Timeout(120, connect=5))
            upstream = client.build_request(
                request.method, f"{self.upstream}/{path}", content=body, headers=headers
            )
            response = await client.send(upstream, stream=True)
            if path == "chat/completions" and _streamed(body):
                return StreamingResponse(
                    self._stream(client, response), media_type="text/event-stream"
                )
            content = await response.aread()
            await response.aclose()
            await client.aclose()
            return Response(content, status_code=response.status_code,
                            media_type=response.headers.get("content-type"))  # fmt: skip

        return Starlette(routes=[Route("/v1/{path:path}", relay, methods=["GET", "POST"])])

    async def _stream(
        self, client: httpx.AsyncClient, response: httpx.Response
    ) -> AsyncIterator[str]:
        record = RelayedStream(started_at=time.monotonic())
        self.streams.append(record)
        try:
            async for line in response.aiter_lines():
                if not line.startswith("data:"):
                    continue
                payload = line[5:].strip()
                if payload == "[DONE]":
                    if self.hold_end_s:
                        await asyncio.sleep(self.hold_end_s)
                    yield "data: [DONE]\n\n"
                    record.finished = True
                    break
                if '"content"' in payload:
                    record.chunks += 1
                    if self.pace_s and record.chunks > 1:
                        await asyncio.sleep(self.pace_s)
                yield f"data: {payload}\n\n"
        finally:
            # Reached when the client disconnects too (the response task is cancelled): closing
            # the upstream stream is what stops the real server generating.
            record.closed_early = not record.finished
            record.ended_at = time.monotonic()
            await response.aclose()
            await client.aclose()


def _streamed(body: bytes) -> bool:
    try:
        return bool(json.loads(body).get("stream"))
    except (ValueError, AttributeError):
        return False
