"""`parle turn` as a user runs it: real Whisper, a real llama.cpp server, real Kokoro."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import wave
from pathlib import Path

import pytest

from harness.wer import word_error_rate


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def parle(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PARLE_LLM_URL": f"http://127.0.0.1:{free_port()}/v1"}
    return subprocess.run(
        [sys.executable, "-m", "parle", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def test_a_whole_turn_from_a_portuguese_clip(audio_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "reply.wav"
    session = f"e2e-{os.getpid()}"
    done = parle(
        "turn",
        str(audio_dir / "utterances/u01.wav"),
        "--out",
        str(out),
        "--json",
        "--session",
        session,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert (
        word_error_rate("Olá, meu nome é Ana e eu sou dos Estados Unidos.", result["transcript"])
        <= 0.25
    )
    assert result["response"].strip()
    timing = result["timing"]
    for key in ("stt_ms", "llm_ms", "tts_ms", "ttfa_ms", "total_ms"):
        assert isinstance(timing[key], (int, float)) and timing[key] > 0, key
    assert timing["ttfa_ms"] <= timing["total_ms"]
    with wave.open(str(out)) as wav:
        assert wav.getframerate() == 24_000 and wav.getnchannels() == 1
        assert wav.getnframes() > 24_000 // 2

    # The named session goes on in the next run.
    second = parle(
        "turn", str(audio_dir / "utterances/u09.wav"), "--out", str(out), "--session", session
    )
    assert second.returncode == 0, second.stderr
    assert "learner:" in second.stdout and "timing:" in second.stdout
    history = Path.home() / ".cache" / "parle" / "sessions" / f"{session}.json"
    if os.environ.get("PARLE_CACHE_DIR"):
        history = Path(os.environ["PARLE_CACHE_DIR"]) / "sessions" / f"{session}.json"
    messages = json.loads(history.read_text("utf-8"))
    history.unlink()
    assert [m["role"] for m in messages] == ["user", "assistant"] * 2


@pytest.mark.parametrize(
    ("file", "message"),
    [
        ("bad/png_renamed.wav", "Send WAV, WebM/Opus"),
        ("bad/empty_0_bytes.wav", "empty"),
        ("bad/short_50ms.wav", "too short"),
    ],
)
def test_bad_input_exits_non_zero_with_a_clear_message(
    audio_dir: Path, tmp_path: Path, file: str, message: str
) -> None:
    done = parle("turn", str(audio_dir / file), "--out", str(tmp_path / "r.wav"), timeout=60)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "r.wav").exists()


def test_missing_file_and_bad_config(tmp_path: Path) -> None:
    done = parle("turn", str(tmp_path / "nope.wav"), "--out", str(tmp_path / "r.wav"), timeout=60)
    assert done.returncode == 2 and "cannot read" in done.stderr
    env = {**os.environ, "PARLE_TTS_SPEED": "fast"}
    bad = subprocess.run(
        [sys.executable, "-m", "parle", "models"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert bad.returncode == 2 and "PARLE_TTS_SPEED" in bad.stderr


def test_models_lists_each_role_and_its_source() -> None:
    done = parle("models", timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    for role in ("stt", "tts", "tts-voices", "llm"):
        assert f"  {role} " in done.stdout


def test_level_command_works_offline() -> None:
    simple = parle("level", "--text", "Eu gosto de gato.", timeout=60)
    assert simple.returncode == 0, simple.stderr
    result = json.loads(simple.stdout)
    assert result["level"] == "A1" and set(result["scores"]) == {"A1", "A2", "B1", "B2", "C1", "C2"}
    hard = parle("level", "--text", "Embora eu tivesse estudado, não passei, portanto tentarei.")
    assert json.loads(hard.stdout)["level"] in ("B1", "B2", "C1")
