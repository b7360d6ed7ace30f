"""Streaming client for any OpenAI-compatible `/v1/chat/completions` (vLLM, llama.cpp)."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from typing import Any

import httpx

from parle.engines.base import ChatMessage
from parle.errors import LlmContextError, LlmUnavailableError

log = logging.getLogger(__name__)


class OpenAIChatModel:
    """The `ChatModel` for an OpenAI-compatible server.

    Tokens are yielded as they arrive over SSE. Closing the iterator (or cancelling the task
    that consumes it) closes the HTTP response, and the server aborts the generation.
    """

    def __init__(
        self,
        base_url: str,
        *,
        model: str | None = None,
        max_tokens: int = 160,
        temperature: float = 0.6,
        timeout_s: float = 60.0,
        api_key: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.max_tokens = max_tokens
        self.temperature = temperature
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_s, connect=5.0), headers=headers
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def served_model(self) -> str:
        """The model id the server serves (its first one), cached after the first call."""
        if self.model is None:
            try:
                response = await self._client.get(f"{self.base_url}/models")
                response.raise_for_status()
                self.model = str(response.json()["data"][0]["id"])
            except (httpx.HTTPError, KeyError, IndexError, ValueError) as exc:
                raise LlmUnavailableError("The language model server is not answering.") from exc
        return self.model

    async def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> AsyncGenerator[str, None]:
        """Yield content deltas; raise `LlmContextError` when the prompt is over the model's
        context, `LlmUnavailableError` when the server fails or stops before the answer's end."""
        body: dict[str, Any] = {
            "model": await self.served_model(),
            "messages": list(messages),
            "stream": True,
            "max_tokens": max_tokens or self.max_tokens,
            "temperature": self.temperature if temperature is None else temperature,
        }
        try:
            async with self._client.stream(
                "POST", f"{self.base_url}/chat/completions", json=body
            ) as response:
                if response.status_code != 200:
                    answer = await response.aread()
                    log.warning("llm server error", extra={"status": response.status_code})
                    if response.status_code == 400 and _over_context(answer):
                        raise LlmContextError(_TOO_LONG)
                    raise LlmUnavailableError(
                        f"The language model server answered {response.status_code}."
                    )
                async for event in sse_payloads(response):
                    if "error" in event:  # a failure after the 200 (vLLM, llama.cpp's server)
                        log.warning("llm server error mid-stream")
                        if _over_context(json.dumps(event["error"]).encode()):
                            raise LlmContextError(_TOO_LONG)
                        raise LlmUnavailableError("The language model server failed mid-answer.")
                    choices = event.get("choices")
                    choice = choices[0] if isinstance(choices, list) and choices else {}
                    content = (choice.get("delta") or {}).get("content")
                    if content:
                        yield str(content)
                    if choice.get("finish_reason"):
                        return
        except httpx.HTTPError as exc:
            raise LlmUnavailableError("The language model server is not answering.") from exc
        # Every OpenAI-compatible server ends an answer with a finish reason. llama-cpp-python
        # streams a 200 and then nothing at all when the prompt is over its context: taken as
        # the end, that was an empty reply reported as complete.
        log.warning("llm stream ended without a finish reason")
        raise LlmUnavailableError("The language model server stopped before its answer's end.")


_TOO_LONG = "What was said is too long for the language model; please say it in fewer words."
# How llama.cpp's servers ("context_length_exceeded", "exceeds the available context size")
# and vLLM ("maximum context length", "longer than the maximum model length") word a prompt
# over the model's context.
_OVER_CONTEXT = re.compile(
    rb"context_length_exceeded|context length|context size|maximum model length|max_model_len"
)


def _over_context(answer: bytes) -> bool:
    """Whether an LLM server's error answer says the prompt is over the model's context."""
    return _OVER_CONTEXT.search(answer.lower()) is not None


async def sse_payloads(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    """The JSON objects of an OpenAI-style SSE stream, until `[DONE]`; other lines skipped."""
    async for line in response.aiter_lines():
        if not line.startswith("data:"):
            continue
        payload = line[5:].strip()
        if payload == "[DONE]":
            return
        try:
            event = json.loads(payload)
        except ValueError:
            continue
        if isinstance(event, dict):
            yield event
