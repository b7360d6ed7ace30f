"""A real room: livekit-server in dev mode on loopback, the worker (`parle agent start`) as its
own process, the PARLE server (instant engines, scripted LLM) minting the learner's token, and
a learner joining with the Python SDK: the tutor is dispatched by the token, greets, hears the
learner's published microphone track, answers, and publishes the level on `parle.tutor`.

Runs only where the `livekit-server` binary is on PATH (it is not on this project's machines).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from parle.audio import decode_audio
from tests.doubles.stack import Stack, make_stack
from tests.doubles.uvicorn_thread import free_port

LIVEKIT_SERVER = shutil.which("livekit-server")
pytestmark = pytest.mark.skipif(
    LIVEKIT_SERVER is None, reason="needs the livekit-server binary on PATH"
)
DEV_KEY, DEV_SECRET = "devkey", "secret"  # livekit-server --dev's fixed credentials


@pytest.fixture
def livekit_url() -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [str(LIVEKIT_SERVER), "--dev", "--bind", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}", timeout=1)
            break
        except httpx.HTTPError:
            assert time.monotonic() < deadline, "livekit-server did not start"
            time.sleep(0.2)
    yield f"ws://127.0.0.1:{port}"
    process.terminate()
    process.wait(10)


@pytest.fixture
def stack(livekit_url: str) -> Iterator[Stack]:
    with make_stack(
        livekit_url=livekit_url, livekit_api_key=DEV_KEY, livekit_api_secret=DEV_SECRET
    ) as stack:
        yield stack


@pytest.fixture
def worker(stack: Stack, livekit_url: str) -> Iterator[subprocess.Popen[bytes]]:
    env = {
        **os.environ,
        "LIVEKIT_URL": livekit_url,
        "LIVEKIT_API_KEY": DEV_KEY,
        "LIVEKIT_API_SECRET": DEV_SECRET,
        "PARLE_SERVER_URL": stack.url,
        "PARLE_LLM_URL": stack.llm.url,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "parle", "agent", "start"], env=env, stdout=subprocess.DEVNULL
    )
    yield process
    process.terminate()
    process.wait(30)


async def speak(source: Any, clip: bytes) -> None:
    """The clip, then a second of silence, as 20 ms frames in real time."""
    from livekit import rtc

    audio = (decode_audio(clip) * 32767).astype(np.int16)
    audio = np.concatenate([audio, np.zeros(16_000, dtype=np.int16)])
    for start in range(0, audio.size - 320, 320):
        frame = audio[start : start + 320]
        await source.capture_frame(rtc.AudioFrame(frame.tobytes(), 16_000, 1, 320))


async def test_the_tutor_joins_greets_and_answers_in_a_real_room(
    stack: Stack, worker: subprocess.Popen[bytes], audio_dir: Path
) -> None:
    from livekit import rtc

    async with httpx.AsyncClient() as client:
        grant = (await client.post(f"{stack.url}/api/token", json={"level": "A2"})).json()
    room = rtc.Room()
    texts: dict[str, list[str]] = {"lk.transcription": [], "parle.tutor": []}
    agents: list[str] = []
    tasks: set[asyncio.Task[None]] = set()

    def on_text(reader: Any, _identity: str) -> None:
        async def read() -> None:
            texts[reader.info.topic].append(await reader.read_all())

        task = asyncio.create_task(read())
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    for topic in texts:
        room.register_text_stream_handler(topic, on_text)
    room.on(
        "participant_connected",
        lambda p: (
            p.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT and agents.append(p.identity)
        ),
    )
    await room.connect(grant["url"], grant["token"])
    agents += [  # in case the tutor was in the room before our handler could see it join
        p.identity
        for p in room.remote_participants.values()
        if p.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT
    ]
    try:
        source = rtc.AudioSource(16_000, 1)
        track = rtc.LocalAudioTrack.create_audio_track("microphone", source)
        options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        await room.local_participant.publish_track(track, options)

        async def until(predicate: Any, within_s: float, what: str) -> None:
            deadline = time.monotonic() + within_s
            while not predicate():
                assert time.monotonic() < deadline, f"{what}: {texts}"
                await asyncio.sleep(0.1)

        await until(lambda: agents, 60, "the tutor was not dispatched")
        await until(lambda: texts["lk.transcription"], 60, "no greeting")
        greeted = len(texts["lk.transcription"])
        await speak(source, (audio_dir / "utterances/u01.wav").read_bytes())
        await until(lambda: texts["parle.tutor"], 60, "no level event")
        await until(
            lambda: any("De onde você é?" in t for t in texts["lk.transcription"][greeted:]),
            60,
            "no spoken reply",
        )
        level = json.loads(texts["parle.tutor"][0])
        assert level["type"] == "level" and level["level"] in ("A1", "A2", "B1")
        assert stack.stt.calls  # the learner's track reached PARLE's STT
    finally:
        await room.disconnect()
