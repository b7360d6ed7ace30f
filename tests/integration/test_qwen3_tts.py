"""Qwen3-TTS 12 Hz CustomVoice through PARLE's streaming engine, on a tiny random-weight model
saved as the hub lays it out (same code paths as the 0.6B on a GPU; nonsense audio).

Greedy sampling makes runs comparable: a stream's audio must not depend on what else is
being spoken at the same time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from parle.audio import AudioChunk
from parle.config import load_settings
from parle.engines.qwen3_tts import Qwen3TtsSynthesizer
from parle.engines.qwen3_tts_model import Sampling
from parle.errors import EngineInputError, EngineUnavailableError
from parle.random_models import QWEN3_TTS_SPEAKERS, build_qwen3_tts
from parle.runtime import build_synthesizer

FRAME_SAMPLES = 1920  # one 80 ms codec frame at 24 kHz

GREEDY = Sampling(temperature=0, predictor_temperature=0)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_qwen3_tts(tmp_path_factory.mktemp("qwen3") / "Qwen3-TTS-tiny", "tiny")


@pytest.fixture(scope="module")
def engine(model_dir: Path) -> Qwen3TtsSynthesizer:
    synthesizer = Qwen3TtsSynthesizer(model_dir, device="cpu", sampling=GREEDY, max_streams=4)
    synthesizer.load()
    yield synthesizer
    synthesizer.close()


def pcm(chunks: list[AudioChunk]) -> np.ndarray:
    return np.frombuffer(b"".join(c.pcm for c in chunks), dtype="<i2").astype(np.int32)


async def collect(
    engine: Qwen3TtsSynthesizer, text: str, voice: str | None = None
) -> list[AudioChunk]:
    return [chunk async for chunk in engine.synthesize(text, voice=voice)]


def test_loads_the_hub_layout_with_the_nine_speakers(engine: Qwen3TtsSynthesizer) -> None:
    assert engine.speakers == sorted(QWEN3_TTS_SPEAKERS)
    assert engine.sample_rate == 24_000


async def test_first_audio_leaves_after_two_frames_not_after_the_piece(
    engine: Qwen3TtsSynthesizer,
) -> None:
    made_at_first, chunks = None, []
    async for chunk in engine.synthesize("Olá, tudo bem com você hoje?"):
        if made_at_first is None:
            made_at_first = engine.stream_steps  # frames made when the first audio arrived
        chunks.append(chunk)
    made = engine.stream_steps
    assert made_at_first is not None and made - made_at_first > 20  # most frames came later
    assert len(chunks[0].pcm) // 2 == 2 * FRAME_SAMPLES  # the first chunk: two 80 ms frames
    # Then chunks of 8 frames at steps shared by every stream (the second may be shorter).
    assert len(chunks[1].pcm) // 2 <= 8 * FRAME_SAMPLES
    assert all(len(c.pcm) // 2 == 8 * FRAME_SAMPLES for c in chunks[2:-1])


async def test_a_stream_sounds_the_same_alone_and_among_others(
    engine: Qwen3TtsSynthesizer,
) -> None:
    texts = ["Muito bem!", "Você mora no Brasil?", "Eu gosto de café com leite."]
    alone = [pcm(await collect(engine, text)) for text in texts]
    steps, frames = engine.steps, engine.stream_steps
    together = await asyncio.gather(*(collect(engine, text) for text in texts))
    for solo, shared in zip(alone, together, strict=True):
        mixed = pcm(shared)
        assert mixed.shape == solo.shape
        assert np.abs(mixed - solo).max() <= 2  # float noise of a padded batch, in PCM LSBs
    # The three streams shared decode steps: fewer steps than frames made.
    assert engine.steps - steps < engine.stream_steps - frames


async def test_steady_streams_share_codec_decoder_passes(engine: Qwen3TtsSynthesizer) -> None:
    passes, chunks = engine.decoder_passes, engine.chunks_sent
    texts = [f"Esta é a frase número {n}, e ela é bem comprida." for n in range(4)]
    streams = []
    for text in texts:  # each starts a few steps after the one before
        streams.append(engine.synthesize(text))
        await anext(streams[-1])
        await asyncio.sleep(0.03)

    async def drain(stream: AsyncIterator[AudioChunk]) -> None:
        async for _ in stream:
            pass

    await asyncio.gather(*(drain(stream) for stream in streams))
    assert engine.chunks_sent - chunks > 1.5 * (engine.decoder_passes - passes)


async def test_more_streams_than_rows_wait_for_a_free_row(engine: Qwen3TtsSynthesizer) -> None:
    texts = [f"Frase número {n}." for n in range(6)]  # 6 streams, 4 rows
    results = await asyncio.gather(*(collect(engine, text) for text in texts))
    assert all(len(chunks) > 1 for chunks in results)


async def test_leaving_a_stream_early_frees_it(engine: Qwen3TtsSynthesizer) -> None:
    stream = engine.synthesize("Esta frase é bem longa e ninguém vai ouvir até o fim, não.")
    first = await anext(stream)
    assert first.pcm
    await stream.aclose()
    for _ in range(100):
        if engine.active_streams == 0:
            break
        await asyncio.sleep(0.02)
    assert engine.active_streams == 0
    assert await collect(engine, "Ainda estou aqui.")  # the engine keeps serving


async def test_speakers_are_chosen_per_call(engine: Qwen3TtsSynthesizer) -> None:
    serena = pcm(await collect(engine, "Bom dia!"))
    ryan = pcm(await collect(engine, "Bom dia!", voice="Ryan"))
    assert not np.array_equal(serena[: len(ryan)], ryan[: len(serena)])
    with pytest.raises(EngineInputError, match=r"Unknown voice 'pf_dora'.*serena"):
        await collect(engine, "Bom dia!", voice="pf_dora")


async def test_punctuation_alone_says_nothing(engine: Qwen3TtsSynthesizer) -> None:
    assert await collect(engine, " ... ") == []


def test_a_checkpoint_that_does_not_fit_is_refused(model_dir: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    broken = tmp_path / "broken"
    broken.mkdir()
    for item in model_dir.iterdir():
        if item.name != "model.safetensors":
            (broken / item.name).symlink_to(item)
    tensors = load_file(model_dir / "model.safetensors")
    tensors.pop("talker.codec_head.weight")
    save_file(tensors, broken / "model.safetensors")
    with pytest.raises(ValueError, match=r"missing.*codec_head"):
        Qwen3TtsSynthesizer(broken, device="cpu").load()


def test_unknown_language_or_speaker_stops_loading(model_dir: Path) -> None:
    with pytest.raises(EngineUnavailableError, match="language 'klingon'"):
        Qwen3TtsSynthesizer(model_dir, device="cpu", language="klingon").load()
    with pytest.raises(EngineUnavailableError, match=r"speaker 'pf_dora'.*serena"):
        Qwen3TtsSynthesizer(model_dir, device="cpu", speaker="pf_dora").load()


def test_runtime_builds_it_from_settings(model_dir: Path) -> None:
    settings = load_settings(
        profile="gpu", tts_model=str(model_dir), tts_device="cpu", qwen3_speaker="ryan",
        qwen3_max_streams=3,
    )  # fmt: skip
    synthesizer = build_synthesizer(settings)
    assert isinstance(synthesizer, Qwen3TtsSynthesizer)
    assert (synthesizer.speaker, synthesizer.language, synthesizer.max_streams) == (
        "ryan",
        "portuguese",
        3,
    )
    assert synthesizer.cuda_graphs is False  # graphs only where the device is CUDA
    on_cuda = load_settings(profile="gpu", tts_model=str(model_dir), qwen3_cuda_graphs=False)
    assert build_synthesizer(on_cuda).cuda_graphs is False  # type: ignore[attr-defined]
    assert build_synthesizer(load_settings(profile="gpu", tts_model=str(model_dir))).cuda_graphs


def test_the_streaming_tts_benchmark_runs_its_smoke_size(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    out = tmp_path / "gpu_tts.json"
    script = Path(__file__).resolve().parents[2] / "bench" / "gpu" / "bench_tts.py"
    command = [sys.executable, str(script), "--engine", "qwen3", "--size", "tiny"]
    command += ["--device", "cpu", "--sessions", "1,2", "--runs", "1", "--out", str(out)]
    subprocess.run(command, check=True, capture_output=True, timeout=600)
    result = json.loads(out.read_text())
    assert set(result["latency"]) == {"first piece", "sentence"}
    assert set(result["unbatched"]) == {"1", "2"} and result["shared_steps"] > 1
    assert result["concurrency"]["2"]["slowest_stream_x_realtime"] > 0


async def test_another_speed_time_stretches_the_audio(engine: Qwen3TtsSynthesizer) -> None:
    text = "Vamos falar bem devagar."
    normal = pcm(await collect(engine, text))
    slow = pcm([chunk async for chunk in engine.synthesize(text, speed=0.85)])
    assert abs(len(slow) - len(normal) / 0.85) < 0.02 * 24_000
    same = pcm([chunk async for chunk in engine.synthesize(text, speed=1.0)])
    assert same.shape == normal.shape and np.abs(same - normal).max() <= 2  # not stretched
