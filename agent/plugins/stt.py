"""`ParleSTT`: the room's audio streamed to the PARLE server's `/v1/realtime` as a
transcription session (Silero VAD and Whisper there): interim transcripts while the learner
speaks, a preflight transcript at the first pause (the framework's preemptive generation
starts on it), and the final one on the framework's flush or the server's own end of the
segment. `recognize()` (one utterance) goes to `/v1/audio/transcriptions`; with
`streaming=False` the session segments the audio itself (its VAD) and uses only that."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import time
from typing import Any

import numpy as np
import websockets
from livekit import rtc
from livekit.agents import (
    DEFAULT_API_CONNECT_OPTIONS,
    APIConnectionError,
    APIConnectOptions,
    APIStatusError,
    stt,
    utils,
)
from livekit.agents.language import LanguageCode
from livekit.agents.types import NOT_GIVEN, NotGivenOr

from agent.plugins._http import HttpClientOwner, framework_errors, server_headers, settings

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000  # what the server's VAD and Whisper take; the framework resamples to it
# The server's own end of a segment, when the framework has not flushed first (its VAD ends
# speech sooner): long enough not to split a learner's sentence at a breath.
SEGMENT_SILENCE_MS = 1000


class ParleSTT(HttpClientOwner, stt.STT[Any]):
    """Speech to text through the PARLE server (Whisper, loaded once there)."""

    def __init__(
        self,
        *,
        server_url: str | None = None,
        api_key: str | None = None,
        room: str | None = None,
        language: str | None = None,
        streaming: bool = True,
    ) -> None:
        super().__init__(
            capabilities=stt.STTCapabilities(
                streaming=streaming, interim_results=streaming, manual_flush=streaming
            )
        )
        config = settings()
        base = (server_url or config.server_url).rstrip("/")
        self._url = base + "/v1/audio/transcriptions"
        self._ws_url = "ws" + base.removeprefix("http") + "/v1/realtime?intent=transcription"
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

    def stream(
        self,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
    ) -> ParleSpeechStream:
        chosen = language if isinstance(language, str) else self._language
        return ParleSpeechStream(
            stt=self,
            url=self._ws_url,
            headers=self._headers,
            language=chosen,
            conn_options=conn_options,
        )

    async def aclose(self) -> None:
        await self.close_client()
        await super().aclose()


class ParleSpeechStream(stt.SpeechStream):
    """One WebSocket for the stream's life; the server's transcription events as the
    framework's speech events."""

    def __init__(
        self,
        *,
        stt: ParleSTT,
        url: str,
        headers: dict[str, str],
        language: str | None,
        conn_options: APIConnectOptions,
    ) -> None:
        super().__init__(stt=stt, conn_options=conn_options, sample_rate=SAMPLE_RATE)
        self._url = url
        self._headers = headers
        self._language = language
        self._pushed_s = 0.0  # audio sent since the last usage report
        self._input_ended = False
        self._open_items: set[str] = set()  # committed, final transcript still to come
        self._synced = False  # the server has answered every event sent before the input ended
        self._drained = asyncio.Event()

    async def _run(self) -> None:
        try:
            ws = await asyncio.wait_for(
                websockets.connect(self._url, additional_headers=self._headers, max_size=None),
                self._conn_options.timeout,
            )
        except (OSError, TimeoutError, websockets.WebSocketException) as exc:
            raise APIConnectionError(f"PARLE streaming STT: {type(exc).__name__}") from exc
        async with ws:
            self.start_time = time.time()
            await ws.send(json.dumps(self._session_update()))
            sending = asyncio.create_task(self._send_audio(ws))
            try:
                with contextlib.suppress(websockets.ConnectionClosed):
                    await self._receive(ws)
            finally:
                await utils.aio.cancel_and_wait(sending)
        if not self._input_ended:
            raise APIConnectionError("PARLE streaming STT: the server closed the stream")

    def _session_update(self) -> dict[str, Any]:
        audio_in: dict[str, Any] = {
            "format": {"type": "audio/pcm", "rate": SAMPLE_RATE},
            "turn_detection": {"type": "server_vad", "silence_duration_ms": SEGMENT_SILENCE_MS},
        }
        if self._language:
            audio_in["transcription"] = {"language": self._language}
        return {
            "type": "session.update",
            "session": {"type": "transcription", "audio": {"input": audio_in}},
        }

    async def _send_audio(self, ws: websockets.ClientConnection) -> None:
        """The framework's frames as appends; each flush as a commit (answered by exactly one
        final transcript, empty when the server had already ended the segment)."""
        async for item in self._input_ch:
            if isinstance(item, self._FlushSentinel):
                await ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
                continue
            pcm = np.asarray(item.data, dtype=np.int16).tobytes()
            self._pushed_s += item.samples_per_channel / item.sample_rate
            audio = base64.b64encode(pcm).decode("ascii")
            await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": audio}))
        self._input_ended = True
        # Every flush's transcript comes before the close (the server may still decode):
        # the server answers events in order, so once this one is answered every commit
        # has been (committed, or refused as empty) and only open items remain.
        await ws.send(json.dumps({"type": "session.update", "session": {}}))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._drained.wait(), self._conn_options.timeout)
        await ws.close()  # the receiver sees the close and the stream ends

    async def _receive(self, ws: websockets.ClientConnection) -> None:
        interim = ""
        async for raw in ws:
            event = json.loads(raw)
            kind = event.get("type")
            self._track(kind, event)
            if kind == "input_audio_buffer.speech_started":
                interim = ""
                self._emit(stt.SpeechEventType.START_OF_SPEECH)
            elif kind == "conversation.item.input_audio_transcription.delta":
                interim += event.get("delta", "")
                self._emit(stt.SpeechEventType.INTERIM_TRANSCRIPT, interim.strip())
            elif kind == "parle.input_audio_transcription.draft":
                self._emit(stt.SpeechEventType.PREFLIGHT_TRANSCRIPT, event.get("transcript", ""))
            elif kind == "input_audio_buffer.speech_stopped":
                self._emit(stt.SpeechEventType.END_OF_SPEECH)
            elif kind == "conversation.item.input_audio_transcription.completed":
                interim = ""
                self._emit(stt.SpeechEventType.FINAL_TRANSCRIPT, event.get("transcript", ""))
                self._report_usage()
            elif kind == "conversation.item.input_audio_transcription.failed":
                # One segment lost (the server stays up, the stream too); the empty final
                # releases a framework waiting on it.
                code = (event.get("error") or {}).get("code")
                log.warning("a segment was not transcribed", extra={"code": code})
                self._emit(stt.SpeechEventType.FINAL_TRANSCRIPT, "")
            elif kind == "error":
                error = event.get("error") or {}
                if error.get("code") == "input_audio_buffer_commit_empty":
                    # A flush of nothing: answered now, unless a final is still to come.
                    if not self._open_items:
                        self._emit(stt.SpeechEventType.FINAL_TRANSCRIPT, "")
                elif error.get("code") != "rate_limited":
                    server = error.get("type") == "server_error"
                    raise APIStatusError(
                        f"PARLE streaming STT: {error.get('message', 'refused')}",
                        status_code=500 if server else 400,
                        body=error.get("code"),
                    )

    def _track(self, kind: str | None, event: dict[str, Any]) -> None:
        """Which committed segments still owe a final transcript, and whether the server has
        caught up with the end of the input."""
        item = event.get("item_id")
        if kind == "input_audio_buffer.committed" and isinstance(item, str):
            self._open_items.add(item)
        elif (
            kind
            and kind.startswith("conversation.item.input_audio_transcription.")
            and (kind.endswith(".completed") or kind.endswith(".failed"))
        ):
            self._open_items.discard(str(item))
        elif kind == "session.updated" and self._input_ended:
            self._synced = True
        if self._synced and not self._open_items:
            self._drained.set()

    def _emit(self, kind: stt.SpeechEventType, text: str | None = None) -> None:
        alternatives = []
        if text is not None:
            language = LanguageCode(self._language or "pt")
            alternatives = [stt.SpeechData(language=language, text=text, confidence=1.0)]
        self._event_ch.send_nowait(stt.SpeechEvent(type=kind, alternatives=alternatives))

    def _report_usage(self) -> None:
        """The audio streamed since the last final, for the framework's STT metrics."""
        usage = stt.RecognitionUsage(audio_duration=self._pushed_s)
        self._pushed_s = 0.0
        self._event_ch.send_nowait(
            stt.SpeechEvent(type=stt.SpeechEventType.RECOGNITION_USAGE, recognition_usage=usage)
        )
