"""Kokoro-82M in torch (`KokoroTorchSynthesizer`) on a random-weight Kokoro-82M with the real
architecture, laid out as the hub's `hexgrad/Kokoro-82M`: loading, pt-br phonemes, voices,
speed, and the runtime building it from settings. On the CPU here; `tts_device=cuda` on a GPU."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from parle.engines.kokoro_torch import KokoroTorchSynthesizer
from parle.errors import EngineInputError
from parle.random_models import build_kokoro

PHRASE = "Olá! Tudo bem com você?"


@pytest.fixture(scope="module")
def kokoro_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_kokoro(tmp_path_factory.mktemp("kokoro") / "Kokoro-82M")


@pytest.fixture(scope="module")
def engine(kokoro_dir: Path) -> Iterator[KokoroTorchSynthesizer]:
    synthesizer = KokoroTorchSynthesizer(kokoro_dir, device="cpu")
    synthesizer.load()
    yield synthesizer


def seconds(chunks: list) -> float:  # type: ignore[type-arg]
    return sum(len(c.pcm) // 2 for c in chunks) / 24_000


def test_the_real_architecture_and_the_portuguese_voices(engine: KokoroTorchSynthesizer) -> None:
    model = engine._pipeline.model
    assert 80e6 < sum(p.numel() for p in model.parameters()) < 84e6  # Kokoro-82M
    assert engine.voices == ["pf_dora", "pm_alex"]
    assert engine.sample_rate == 24_000


def test_speaks_a_phrase_at_the_requested_speed(engine: KokoroTorchSynthesizer) -> None:
    chunks = engine.synthesize_sync(PHRASE)
    assert chunks and all(c.sample_rate == 24_000 for c in chunks)
    normal = seconds(chunks)
    assert 1.0 < normal < 4.0  # ~75 ms a phoneme, as speech
    assert seconds(engine.synthesize_sync(PHRASE, speed=0.8)) > normal
    assert seconds(engine.synthesize_sync(PHRASE, speed=1.25)) < normal


def test_voices_differ_and_unknown_ones_are_refused(engine: KokoroTorchSynthesizer) -> None:
    dora = engine.synthesize_sync(PHRASE, voice="pf_dora")[0].pcm
    alex = engine.synthesize_sync(PHRASE, voice="pm_alex")[0].pcm
    assert dora != alex
    with pytest.raises(EngineInputError, match="available: pf_dora, pm_alex"):
        engine.synthesize_sync(PHRASE, voice="af_bella")
    assert engine.synthesize_sync("?!") == []


async def test_synthesize_streams_off_the_event_loop(engine: KokoroTorchSynthesizer) -> None:
    chunks = [chunk async for chunk in engine.synthesize("Bom dia.")]
    assert chunks and all(chunk.pcm for chunk in chunks)


def test_the_runtime_builds_it_from_settings(kokoro_dir: Path) -> None:
    from parle.config import load_settings
    from parle.models import tts_specs
    from parle.runtime import build_synthesizer

    settings = load_settings(
        profile="cpu", tts_engine="kokoro-torch", tts_model=str(kokoro_dir), tts_voice="pm_alex"
    )
    built = build_synthesizer(settings)
    assert isinstance(built, KokoroTorchSynthesizer)
    assert (built.model_dir, built.voice, built.device) == (kokoro_dir, "pm_alex", "cpu")
    hub = load_settings(profile="legacy", tts_engine="kokoro-torch")
    assert tts_specs(hub)[0].hub_repo == "hexgrad/Kokoro-82M"


def test_the_gpu_tts_benchmark_runs_its_smoke_size(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    out = tmp_path / "gpu_tts.json"
    script = Path(__file__).resolve().parents[2] / "bench" / "gpu" / "bench_tts.py"
    command = [sys.executable, str(script), "--engine", "kokoro-torch", "--device", "cpu"]
    command += ["--sessions", "1", "--runs", "1"]
    subprocess.run([*command, "--out", str(out)], check=True, capture_output=True, timeout=600)
    result = json.loads(out.read_text())
    assert set(result["latency"]) == {"first piece", "sentence"}
    assert result["concurrency"]["1"]["slowest_stream_x_realtime"] > 0
