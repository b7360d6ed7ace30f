"""The GPU path's engines behind the real server, on the CPU: the transformers Whisper backend
(random-weight tiny Whisper) with each GPU TTS engine (Kokoro in torch, random-weight
Kokoro-82M; streaming Qwen3-TTS, tiny random-weight), built from settings by the runtime as
`parle serve` builds them, a scripted LLM; one SSE turn streams."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bridge.app import create_app
from harness.scripted_llm import ScriptedLlmServer
from harness.uvicorn_thread import UvicornThread
from parle.config import load_settings
from parle.random_models import build_kokoro, build_qwen3_tts, build_whisper


@pytest.fixture(scope="module", params=["kokoro-torch", "qwen3"])
def server(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[str]:
    models = tmp_path_factory.mktemp("gpu-path")
    tts_model = (
        build_kokoro(models / "kokoro")
        if request.param == "kokoro-torch"
        else build_qwen3_tts(models / "qwen3", "tiny")
    )
    llm = ScriptedLlmServer(["Muito bem!", " Você mora", " no Brasil?"]).start()
    settings = load_settings(
        profile="cpu",
        stt_backend="transformers",
        stt_model=str(build_whisper(models / "whisper", "tiny")),
        tts_engine=request.param,
        tts_model=str(tts_model),
        tts_device="cpu",
        llm_url=llm.url,
        llm_launch=False,
        # The engines under test are speech's; the real LanguageTool has its own tests
        # (test_languagetool.py, and every e2e turn), and a JVM here would only slow this down.
        grammar="rules",
    )
    thread = UvicornThread(create_app(settings)).start()
    yield thread.wait_ready()
    thread.stop()
    llm.stop()


def test_a_turn_streams_through_the_gpu_path_engines(server: str, audio_dir: Path) -> None:
    clip = (audio_dir / "utterances/u01.wav").read_bytes()
    response = httpx.post(
        f"{server}/api/stream-audio",
        files={"audio": ("u01.wav", clip, "audio/wav")},
        timeout=120,
    )
    assert response.status_code == 200
    events = [line[7:] for line in response.text.splitlines() if line.startswith("event: ")]
    assert "transcript" in events and "complete" in events
    assert events.count("audio") >= 1  # the TTS engine spoke the scripted reply
    assert "error" not in events
