"""On a CUDA box: the real-size random-weight Whisper large-v3-turbo through the transformers
engine in fp16 with the static cache, batched; its memory within the documented budget."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from parle.engines.whisper_hf import HfWhisperTranscriber
from parle.random_models import build_whisper


async def test_large_v3_turbo_on_cuda_batches_sessions(tmp_path: Path) -> None:
    import torch

    folder = build_whisper(tmp_path / "turbo", "large-v3-turbo")
    before = torch.cuda.memory_allocated()
    engine = HfWhisperTranscriber(folder, device="cuda", dtype="float16", max_new_tokens=20)
    engine.load()
    assert (torch.cuda.memory_allocated() - before) / 1e9 < 2.0  # ~1.6 GB of fp16 weights
    rng = np.random.default_rng(0)
    audios = [(rng.standard_normal(16_000 * 5) * 0.1).astype(np.float32) for _ in range(3)]
    decoded = engine.decode_batch(audios, "pt")
    assert len(decoded) == 3
    tokenizer = engine._processor.tokenizer
    for item in decoded:
        assert tokenizer.convert_ids_to_tokens(list(item.tokens[:2])) == [
            "<|startoftranscript|>",
            "<|pt|>",
        ]
