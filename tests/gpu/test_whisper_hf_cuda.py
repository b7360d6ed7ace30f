"""On a CUDA box: the real-size random-weight Whisper large-v3-turbo through the transformers
engine in fp16 with the static cache (compiled by transformers, with CUDA-graph trees),
batched; decodes asked from other threads than the one that loaded it; memory in budget."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import numpy as np

from parle.engines.whisper_hf import HfWhisperTranscriber
from parle.random_models import build_whisper


async def test_large_v3_turbo_on_cuda_batches_sessions_from_any_thread(
    tmp_path: Path, whisper_tokenizer: Path | None
) -> None:
    import torch

    folder = build_whisper(tmp_path / "turbo", "large-v3-turbo", tokenizer_json=whisper_tokenizer)
    before = torch.cuda.memory_allocated()
    engine = HfWhisperTranscriber(
        folder, device="cuda", dtype="float16", max_new_tokens=20, max_batch=4
    )
    engine.load()
    try:
        assert (torch.cuda.memory_allocated() - before) / 1e9 < 2.5  # ~1.6 GB of fp16 weights
        rng = np.random.default_rng(0)
        audios = [(rng.standard_normal(16_000 * 5) * 0.1).astype(np.float32) for _ in range(3)]
        results: list[object] = []
        caller = threading.Thread(target=lambda: results.append(engine.decode_batch(audios)))
        caller.start()
        caller.join()
        decoded = results[0]
        assert isinstance(decoded, list) and len(decoded) == 3
        # From asyncio's worker threads too (where the server's calls come from).
        again = await asyncio.to_thread(engine.decode_batch, audios)
        assert [d.tokens for d in again] == [d.tokens for d in decoded]
        tokenizer = engine._processor.tokenizer
        for item in decoded:
            assert tokenizer.convert_ids_to_tokens(list(item.tokens[:2])) == [
                "<|startoftranscript|>",
                "<|pt|>",
            ]
    finally:
        engine.close()
