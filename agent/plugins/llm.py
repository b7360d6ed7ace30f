"""`ParleLLM`: streams chat completions from the OpenAI-compatible LLM server (vLLM or
llama.cpp) at `PARLE_LLM_URL`. An interrupted turn closes the HTTP stream, so the server
stops generating.

Why not `livekit-plugins-openai` with a `base_url`: it would work, but it pulls the OpenAI SDK
and its own retry layer in for one endpoint, and PARLE already speaks this protocol (the same
SSE parsing as `parle.engines.chat`), with the settings the server uses."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import httpx
from livekit.agents import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions, APIError, llm
from livekit.agents.types import NOT_GIVEN, NotGivenOr

from agent.plugins._http import HttpClientOwner, framework_errors, settings
from parle.engines.chat import sse_payloads

log = logging.getLogger(__name__)


class ParleLLM(HttpClientOwner, llm.LLM[Any]):
    """The tutor LLM behind PARLE's OpenAI-compatible server."""

    def __init__(
        self,
        *,
        base_url: str | None = None,
        model: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> None:
        super().__init__()
        config = settings()
        self._base_url = (base_url or config.llm_url).rstrip("/")
        self._model = model
        self.max_tokens = max_tokens or config.llm_max_tokens
        self.temperature = config.llm_temperature if temperature is None else temperature

    def update_options(self, *, max_tokens: int | None = None) -> None:
        """Options for the next requests (a request already sent keeps its own): the tutor
        sets the reply length of the learner's level here."""
        if max_tokens is not None:
            self.max_tokens = max_tokens

    @property
    def model(self) -> str:
        return self._model or settings().llm_model

    @property
    def provider(self) -> str:
        return "parle"

    async def served_model(self) -> str:
        if self._model is None:
            with framework_errors("LLM server"):
                response = await self.client().get(f"{self._base_url}/models", timeout=5)
                response.raise_for_status()
            self._model = str(response.json()["data"][0]["id"])
        return self._model

    async def prefill(self, chat_ctx: llm.ChatContext) -> None:
        """Has the server prefill `chat_ctx`'s prompt (one token, not streamed), so a later
        request that starts the same way finds it in the server's prefix cache. Best effort:
        a failure only leaves the cache cold."""
        messages, _ = chat_ctx.to_provider_format("openai")
        try:
            body = {
                "model": await self.served_model(),
                "messages": messages,
                "stream": False,
                "max_tokens": 1,
            }
            response = await self.client().post(
                f"{self._base_url}/chat/completions", json=body, timeout=60
            )
            response.raise_for_status()
        except (httpx.HTTPError, APIError) as exc:
            log.info("prompt prefill failed", extra={"error": type(exc).__name__})

    def chat(
        self,
        *,
        chat_ctx: llm.ChatContext,
        tools: list[Any] | None = None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
        parallel_tool_calls: NotGivenOr[bool] = NOT_GIVEN,
        tool_choice: NotGivenOr[Any] = NOT_GIVEN,
        extra_kwargs: NotGivenOr[dict[str, Any]] = NOT_GIVEN,
    ) -> ParleLLMStream:
        return ParleLLMStream(self, chat_ctx=chat_ctx, tools=tools or [], conn_options=conn_options)

    async def aclose(self) -> None:
        await self.close_client()


class ParleLLMStream(llm.LLMStream):
    def __init__(self, parle: ParleLLM, **kwargs: Any) -> None:
        super().__init__(parle, **kwargs)
        self._parle = parle
        # Fixed when the request is made: a later `update_options` is for the next one.
        self._max_tokens = parle.max_tokens
        self._temperature = parle.temperature

    async def _run(self) -> None:
        messages, _ = self._chat_ctx.to_provider_format("openai")
        body = {
            "model": await self._parle.served_model(),
            "messages": messages,
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": self._max_tokens,
            "temperature": self._temperature,
        }
        request_id = uuid.uuid4().hex
        timeout = httpx.Timeout(self._conn_options.timeout)
        with framework_errors("LLM server"):
            async with self._parle.client().stream(
                "POST", f"{self._parle._base_url}/chat/completions", json=body, timeout=timeout
            ) as response:
                if response.status_code != 200:
                    await response.aread()
                    response.raise_for_status()
                async for event in sse_payloads(response):
                    for choice in event.get("choices") or []:
                        content = (choice.get("delta") or {}).get("content")
                        if content:
                            self._event_ch.send_nowait(
                                llm.ChatChunk(
                                    id=request_id,
                                    delta=llm.ChoiceDelta(role="assistant", content=content),
                                )
                            )
                    usage = event.get("usage")
                    if isinstance(usage, dict):
                        self._event_ch.send_nowait(
                            llm.ChatChunk(
                                id=request_id,
                                usage=llm.CompletionUsage(
                                    completion_tokens=int(usage.get("completion_tokens", 0)),
                                    prompt_tokens=int(usage.get("prompt_tokens", 0)),
                                    total_tokens=int(usage.get("total_tokens", 0)),
                                ),
                            )
                        )
