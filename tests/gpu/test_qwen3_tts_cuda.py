"""On a CUDA box: Qwen3-TTS 12 Hz 0.6B (random weights, the published architecture) streamed
in bf16 through PARLE's engine; several streams share the decode steps; memory in budget."""

from __future__ import annotations

import asyncio
from pathlib import Path

from parle.engines.qwen3_tts import Qwen3TtsSynthesizer
from parle.random_models import build_qwen3_tts


async def test_the_0_6b_streams_on_cuda(tmp_path: Path) -> None:
    import torch

    folder = build_qwen3_tts(tmp_path / "Qwen3-TTS-0.6B", "0.6b")
    before = torch.cuda.memory_allocated()
    engine = Qwen3TtsSynthesizer(folder, device="cuda", max_streams=8, max_frames_per_char=0.8)
    engine.load()
    try:
        # bf16 talker 1.8 GB + fp32 codec decoder 0.8 GB + 8 cache rows x 768 positions 0.7 GB
        assert (torch.cuda.memory_allocated() - before) / 1e9 < 4.0
        texts = ["Muito bem!", "Você mora no Brasil?", "Eu gosto de café com leite."] * 2

        async def speak(text: str) -> int:
            return sum([len(chunk.pcm) async for chunk in engine.synthesize(text)])

        steps, frames = engine.steps, engine.stream_steps
        sizes = await asyncio.gather(*(speak(text) for text in texts))
        assert all(size > 24_000 for size in sizes)  # each more than half a second
        assert engine.steps - steps < engine.stream_steps - frames
    finally:
        engine.close()
