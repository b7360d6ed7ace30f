"""On a CUDA box: Kokoro-82M (random weights, real architecture) in torch on the GPU."""

from __future__ import annotations

from pathlib import Path

from parle.engines.kokoro_torch import KokoroTorchSynthesizer
from parle.random_models import build_kokoro


def test_kokoro_speaks_on_cuda(tmp_path: Path) -> None:
    engine = KokoroTorchSynthesizer(build_kokoro(tmp_path / "Kokoro-82M"), device="cuda")
    engine.load()
    assert str(engine._pipeline.model.device).startswith("cuda")
    chunks = engine.synthesize_sync("Olá! Tudo bem com você?", voice="pm_alex")
    assert chunks and sum(len(c.pcm) for c in chunks) > 24_000  # more than half a second
