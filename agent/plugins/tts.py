"""`ParleTTS`: streams PCM from the PARLE server's `/v1/audio/speech` and pushes it as it
arrives, so time to first byte is the first synthesized piece, not the whole text."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from livekit.agents import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions, tts

from agent.plugins._http import HttpClientOwner, framework_errors, server_headers, settings

# The rate the framework is told up front (PARLE's TTS engines all speak at 24 kHz); each
# response's `X-Sample-Rate` is what its audio is played at.
SAMPLE_RATE = 24_000


class ParleTTS(HttpClientOwner, tts.TTS[Any]):
    """Text to speech through the PARLE server (Kokoro or Qwen3-TTS, loaded once there)."""

    def __init__(
        self,
        *,
        server_url: str | None = None,
        api_key: str | None = None,
        room: str | None = None,
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
        self._headers = server_headers(api_key, room=room)
        # The server answers once the first audio exists, and may take up to its own speech
        # limit when busy: giving up sooner (the framework's 10 s) leaves the server working
        # for no one, and the retry then waits behind the abandoned request.
        self._read_timeout_s = config.speech_timeout_s
        self.voice = voice
        self.speed = speed

    def update_options(self, *, voice: str | None = None, speed: float | None = None) -> None:
        """Options for the next texts (speech already requested keeps its own): the tutor
        sets the speaking speed of the learner's level here."""
        if voice is not None:
            self.voice = voice
        if speed is not None:
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
        # Fixed when the text is handed over: a later `update_options` is for the next one.
        self._voice = tts.voice
        self._speed = tts.speed

    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        body: dict[str, object] = {"input": self._input_text, "response_format": "pcm"}
        if self._voice:
            body["voice"] = self._voice
        if self._speed:
            body["speed"] = self._speed
        timeout = httpx.Timeout(
            self._conn_options.timeout,
            read=max(self._conn_options.timeout, self._parle._read_timeout_s),
        )
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
                rate = response.headers.get("x-sample-rate", "")
                output_emitter.initialize(
                    request_id=uuid.uuid4().hex,
                    sample_rate=int(rate) if rate.isdigit() else SAMPLE_RATE,
                    num_channels=1,
                    mime_type="audio/pcm",
                )
                async for chunk in response.aiter_bytes():
                    output_emitter.push(chunk)
        output_emitter.flush()
