"""`/v1/realtime` on the real `cpu` engines, driven by the official `openai` SDK: a spoken
conversation streamed at real time, a pause mid-sentence, and barge-in."""

from __future__ import annotations

import asyncio
import base64
import re
import time
from typing import Any

import httpx
import numpy as np
import pytest
from openai import AsyncOpenAI

from tests.integration.test_realtime import pause_clip, pcm16, silence, speech

pytestmark = pytest.mark.timeout(300)


async def stream(connection: Any, audio: np.ndarray) -> None:
    """24 kHz PCM16 in 20 ms appends, at real time."""
    pcm = pcm16(audio, 24_000)
    step = 960
    start = time.perf_counter()
    for i, offset in enumerate(range(0, len(pcm), step)):
        chunk = base64.b64encode(pcm[offset : offset + step]).decode()
        await connection.input_audio_buffer.append(audio=chunk)
        wait = start + (i + 1) * 0.02 - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)


async def collect(connection: Any, events: list[Any], until: str) -> Any:
    async with asyncio.timeout(120):
        async for event in connection:
            events.append(event)
            if event.type == until:
                return event
    raise AssertionError(f"the connection closed before {until}")


def words(text: str) -> list[str]:
    return re.sub(r"[^\w\s]", "", text.lower()).split()


def speculations(server: str, outcome: str) -> float:
    for line in httpx.get(server + "/metrics").text.splitlines():
        if line.startswith(f'parle_realtime_speculations_total{{outcome="{outcome}"}}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_the_openai_sdk_holds_a_spoken_conversation(server: str) -> None:
    client = AsyncOpenAI(api_key="unused", base_url=server + "/v1")
    async with client.realtime.connect(model="gpt-realtime") as connection:
        events: list[Any] = []
        await collect(connection, events, "session.created")
        await connection.session.update(
            session={
                "type": "realtime",
                "audio": {
                    "input": {"turn_detection": {"type": "server_vad", "silence_duration_ms": 500}}
                },
            }
        )
        await collect(connection, events, "session.updated")

        # 1. A turn with a pause mid-sentence: one turn, the early speculation discarded.
        discarded = speculations(server, "discarded")
        turn = np.concatenate([pause_clip(), silence(2.0)])
        sender = asyncio.create_task(stream(connection, turn))
        done = await collect(connection, events, "response.done")
        await sender
        assert done.response.status == "completed"
        transcripts = [
            e.transcript
            for e in events
            if e.type == "conversation.item.input_audio_transcription.completed"
        ]
        assert len(transcripts) == 1
        heard = words(transcripts[0])
        assert "como" in heard and "melhor" in heard  # both halves, one turn
        assert speculations(server, "discarded") > discarded
        audio = b"".join(
            base64.b64decode(e.delta) for e in events if e.type == "response.output_audio.delta"
        )
        assert len(audio) > 24_000  # over half a second of speech at 24 kHz PCM16
        transcript = [e for e in events if e.type == "response.output_audio_transcript.done"]
        assert transcript and transcript[0].transcript.strip()

        # 2. Barge-in: the learner speaks while the tutor answers.
        events.clear()
        turn = np.concatenate([silence(0.3), speech("u01"), silence(1.0)])
        sender = asyncio.create_task(stream(connection, turn))
        await collect(connection, events, "response.output_audio.delta")
        await sender
        await stream(connection, np.concatenate([speech("u09"), silence(0.2)]))
        done = await collect(connection, events, "response.done")
        assert done.response.status == "cancelled"
        kinds = [e.type for e in events]
        assert kinds.count("input_audio_buffer.speech_started") == 2
        assert kinds.index("input_audio_buffer.speech_started", kinds.index("response.created")) < (
            len(kinds) - 1
        )
        await stream(connection, silence(1.0))
        done = await collect(connection, events, "response.done")
        assert done.response.status == "completed"
