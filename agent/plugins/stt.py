"""`ParleSTT`: each VAD-segmented utterance goes to the PARLE server's
`/v1/audio/transcriptions` (non-streaming; the session's VAD segments for it)."""

from __future__ import annotations

from typing import Any

from livekit import rtc
from livekit.agents import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions, stt, utils
from livekit.agents.language import LanguageCode
from livekit.agents.types import NOT_GIVEN, NotGivenOr

from agent.plugins._http import HttpClientOwner, framework_errors, server_headers, settings


class ParleSTT(HttpClientOwner, stt.STT[Any]):
    """Speech to text through the PARLE server (Whisper, loaded once there)."""

    def __init__(
        self,
        *,
        server_url: str | None = None,
        api_key: str | None = None,
        room: str | None = None,
        language: str | None = None,
    ) -> None:
        super().__init__(capabilities=stt.STTCapabilities(streaming=False, interim_results=False))
        config = settings()
        self._url = (server_url or config.server_url).rstrip("/") + "/v1/audio/transcriptions"
        self._headers = server_headers(api_key, room=room)
        self._language = language or config.stt_language

    @property
    def model(self) -> str:
        return settings().stt_model

    @property
    def provider(self) -> str:
        return "parle"

    async def _recognize_impl(
        self,
        buffer: utils.AudioBuffer,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
    ) -> stt.SpeechEvent:
        wav = rtc.combine_audio_frames(buffer).to_wav_bytes()
        chosen = language if isinstance(language, str) else self._language
        with framework_errors("PARLE transcription"):
            response = await self.client().post(
                self._url,
                files={"file": ("utterance.wav", wav, "audio/wav")},
                data={"language": chosen, "response_format": "verbose_json"},
                headers=self._headers,
                timeout=conn_options.timeout,
            )
            response.raise_for_status()
        body = response.json()
        return stt.SpeechEvent(
            type=stt.SpeechEventType.FINAL_TRANSCRIPT,
            alternatives=[
                stt.SpeechData(
                    language=LanguageCode(str(body.get("language") or chosen)),
                    text=body.get("text", ""),
                    confidence=float(body.get("confidence", 0.0)),
                    end_time=float(body.get("duration", 0.0)),
                )
            ],
        )

    async def aclose(self) -> None:
        await self.close_client()
        await super().aclose()
