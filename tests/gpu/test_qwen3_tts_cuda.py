"""On a CUDA box: Qwen3-TTS 12 Hz 0.6B (random weights, the published architecture) streamed
in bf16 through PARLE's engine with its step as CUDA graphs: greedy audio identical to the
same step run eagerly, 32 streams sharing the steps, memory in budget."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from parle.engines.qwen3_tts import Qwen3TtsSynthesizer
from parle.engines.qwen3_tts_model import Sampling
from parle.random_models import build_qwen3_tts

GREEDY = Sampling(temperature=0, predictor_temperature=0)
TEXTS = ["Muito bem!", "Você mora no Brasil?", "Eu gosto de café com leite."]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_qwen3_tts(tmp_path_factory.mktemp("qwen3") / "Qwen3-TTS-0.6B", "0.6b")


async def speak(engine: Qwen3TtsSynthesizer, text: str) -> np.ndarray:
    pcm = b"".join([chunk.pcm async for chunk in engine.synthesize(text)])
    return np.frombuffer(pcm, dtype="<i2")


async def test_graphs_speak_as_the_eager_step_does(folder: Path) -> None:
    engines = {
        graphs: Qwen3TtsSynthesizer(
            folder,
            device="cuda",
            max_streams=4,
            max_frames_per_char=0.8,
            sampling=GREEDY,
            cuda_graphs=graphs,
        )
        for graphs in (True, False)
    }
    for engine in engines.values():
        engine.load()
    try:
        assert engines[True]._graphs is not None and engines[False]._graphs is None
        for together in (False, True):  # alone (batch 1), then three at once (batch 4)
            audio = {}
            for graphs, engine in engines.items():
                if together:
                    audio[graphs] = await asyncio.gather(*(speak(engine, t) for t in TEXTS))
                else:
                    audio[graphs] = [await speak(engine, text) for text in TEXTS]
            for graphed, eager in zip(audio[True], audio[False], strict=True):
                assert graphed.size > 24_000 and np.array_equal(graphed, eager)
    finally:
        for engine in engines.values():
            engine.close()


async def test_32_streams_share_the_steps_within_the_memory_budget(folder: Path) -> None:
    import torch

    before = torch.cuda.memory_allocated()
    engine = Qwen3TtsSynthesizer(folder, device="cuda", max_streams=32, max_frames_per_char=0.8)
    engine.load()
    try:
        # bf16 talker 1.8 GB + fp32 codec decoder 0.8 GB + 32 rows x 768 positions of KV
        # cache (88 MB each) 2.8 GB + the graphs' pool
        assert (torch.cuda.memory_allocated() - before) / 1e9 < 6.5
        steps, frames = engine.steps, engine.stream_steps
        sizes = await asyncio.gather(*(speak(engine, TEXTS[n % 3]) for n in range(32)))
        assert all(size.size > 24_000 for size in sizes)  # each more than half a second
        assert (engine.stream_steps - frames) / (engine.steps - steps) > 16
    finally:
        engine.close()
