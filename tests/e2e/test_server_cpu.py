"""The PARLE server as `parle serve` runs it on the `cpu` profile: real Whisper, a launched
llama.cpp server, real Kokoro; clients written only from docs/protocols.md."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import wave
from pathlib import Path

import httpx
import websockets

from harness.wer import word_error_rate
from tests.conftest import write_over_cap_wav
from tests.doubles.clients import parse_sse

U01 = "Olá, meu nome é Ana e eu sou dos Estados Unidos."


def test_sse_spoken_turn(server: str, audio_dir: Path) -> None:
    data = (audio_dir / "utterances/u01.wav").read_bytes()
    response = httpx.post(
        f"{server}/api/stream-audio", files={"audio": ("u01.wav", data, "audio/wav")}, timeout=120
    )
    assert response.status_code == 200
    frames = parse_sse(response.text)
    events = [event for event, _ in frames]
    assert events[0] == "status" and events[-1] == "complete"
    transcript = next(d for e, d in frames if e == "transcript")["transcript"]
    assert word_error_rate(U01, transcript) <= 0.25
    level = next(d for e, d in frames if e == "level")
    assert level["level"] == "A2" and level["estimate"] in ("A1", "A2")
    chunks = [d for e, d in frames if e == "audio"]
    assert chunks and [c["index"] for c in chunks] == list(range(len(chunks)))
    for chunk in chunks:
        with wave.open(io.BytesIO(base64.b64decode(chunk["chunk"]))) as wav:
            assert wav.getframerate() == 24_000 and wav.getnframes() > 0
    complete = frames[-1][1]
    assert complete["response"].strip()
    timing = complete["timing"]
    assert 0 < timing["stt_ms"] <= timing["ttfa_ms"] <= timing["total_ms"]


async def test_ws_spoken_turn(server: str, audio_dir: Path) -> None:
    url = server.replace("http", "ws") + "/ws/stream"
    async with websockets.connect(url, max_size=None) as ws:
        assert json.loads(await ws.recv())["type"] == "ready"
        await ws.send((audio_dir / "variants/u09_opus.webm").read_bytes())
        messages, audio = [], []
        while True:
            raw = await asyncio.wait_for(ws.recv(), 120)
            if isinstance(raw, bytes):
                audio.append(raw)
                continue
            messages.append(json.loads(raw))
            if messages[-1]["type"] in ("complete", "error"):
                break
    assert messages[-1]["type"] == "complete", messages[-1]
    transcript = next(m for m in messages if m["type"] == "transcript")["transcript"]
    assert word_error_rate("Professora, qual é a diferença entre ser e estar?", transcript) <= 0.25
    assert audio and messages[-1]["chunks"] == len(audio)
    for data in audio:
        with wave.open(io.BytesIO(data)) as wav:
            assert wav.getframerate() == 24_000


def test_bad_inputs_never_take_the_server_down(
    server: str, audio_dir: Path, tmp_path: Path
) -> None:
    write_over_cap_wav(tmp_path / "over_cap_12mb.wav")
    manifest = json.loads((audio_dir / "bad/manifest.json").read_text())
    for item in manifest["items"]:
        name = Path(item["file"]).name
        path = tmp_path / name if not item["shipped"] else audio_dir / item["file"]
        response = httpx.post(
            f"{server}/api/stream-audio",
            files={"audio": (name, path.read_bytes(), "audio/wav")},
            timeout=120,
        )
        if response.status_code == 200:
            assert item["expect"] != "error_4xx", name
            frames = parse_sse(response.text)
            assert frames[-1][0] in ("complete", "error"), name
            if "reference" in item:
                heard = next(d for e, d in frames if e == "transcript")["transcript"]
                assert word_error_rate(item["reference"], heard) <= 0.25, (name, heard)
        else:
            assert response.status_code in item["suggested_status"], (name, response.text)
            assert response.json()["error"]["message"]
        # the next good request is still served
        assert httpx.get(f"{server}/ready").status_code == 200


def test_transcriptions_endpoint_with_real_whisper(server: str, audio_dir: Path) -> None:
    data = (audio_dir / "utterances/u05.wav").read_bytes()
    response = httpx.post(
        f"{server}/v1/audio/transcriptions",
        files={"file": ("u05.wav", data, "audio/wav")},
        data={"model": "whisper-1", "language": "pt"},
        timeout=60,
    )
    assert word_error_rate("A minha casa é muito bonito e grande.", response.json()["text"]) == 0
