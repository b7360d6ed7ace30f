"""`ParleTTS`: streams PCM from the PARLE server's `/v1/audio/speech` and pushes it as it
arrives, so time to first byte is the first synthesized piece, not the whole text."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from livekit.agents import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions, tts

from agent.plugins._http import HttpClientOwner, framework_errors, server_headers, settings

SAMPLE_RATE = 24_000


class ParleTTS(HttpClientOwner, tts.TTS[Any]):
    """Text to speech through the PARLE server (Kokoro or Qwen3-TTS, loaded once there)."""

    def __init__(
        self,
        *,
        server_url: str | None = None,
        api_key: str | None = None,
        voice: str | None = None,
        speed: float | None = None,
    ) -> None:
        super().__init__(
            capabilities=tts.TTSCapabilities(streaming=False),
            sample_rate=SAMPLE_RATE,
            num_channels=1,
        )
        config = settings()
        self._url = (server_url or config.server_url).rstrip("/") + "/v1/audio/speech"
        self._headers = server_headers(api_key)
        self.voice = voice
        self.speed = speed

    @property
    def model(self) -> str:
        return settings().tts_model

    @property
    def provider(self) -> str:
        return "parle"

    def synthesize(
        self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> ParleChunkedStream:
        return ParleChunkedStream(tts=self, input_text=text, conn_options=conn_options)

    async def aclose(self) -> None:
        await self.close_client()
        await super().aclose()


class ParleChunkedStream(tts.ChunkedStream):
    """One text's speech, pushed chunk by chunk as the server streams it."""

    def __init__(self, *, tts: ParleTTS, input_text: str, conn_options: APIConnectOptions):
        super().__init__(tts=tts, input_text=input_text, conn_options=conn_options)
        self._parle = tts

    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        body: dict[str, object] = {"input": self._input_text, "response_format": "pcm"}
        if self._parle.voice:
            body["voice"] = self._parle.voice
        if self._parle.speed:
            body["speed"] = self._parle.speed
        output_emitter.initialize(
            request_id=uuid.uuid4().hex,
            sample_rate=SAMPLE_RATE,
            num_channels=1,
            mime_type="audio/pcm",
        )
        timeout = httpx.Timeout(self._conn_options.timeout, read=self._conn_options.timeout)
        with framework_errors("PARLE speech"):
            async with self._parle.client().stream(
                "POST",
                self._parle._url,
                json=body,
                headers=self._parle._headers,
                timeout=timeout,
            ) as response:
                if response.status_code != 200:
                    await response.aread()
                    response.raise_for_status()
                async for chunk in response.aiter_bytes():
                    output_emitter.push(chunk)
        output_emitter.flush()
