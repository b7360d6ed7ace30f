"""GPU benchmark of the transformers Whisper engine on a random-weight Whisper large-v3-turbo
(the real architecture; words are nonsense, timing is real), through PARLE's own loading and
batching code:

- STT latency for 2 / 5 / 10 s utterances, one request at a time (the decoder writes a fixed
  number of tokens per utterance: ~4 per second of speech, as Portuguese speech does);
- throughput with 1 / 8 / 32 concurrent sessions, batched (one encoder pass for requests within
  the 3 ms window) vs unbatched (`max_batch=1`), same run;
- GPU memory of the engine.

    python bench/gpu/bench_stt.py [--device cuda] [--runs 5] [--tokenizer-json PATH]
    python bench/gpu/bench_stt.py --device cpu --size tiny --runs 1   # smoke run (CI)

Needs torch with CUDA and transformers; PARLE's base dependencies (pydantic-settings, httpx,
numpy) for `parle.*`. Writes bench/results/gpu_stt.json and prints the markdown tables.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from gpu_common import GpuMemory, save  # noqa: E402  (this folder is on sys.path)

from parle.engines.whisper_hf import HfWhisperTranscriber, SpeechRequest  # noqa: E402
from parle.random_models import build_whisper  # noqa: E402

TOKENS_PER_SECOND = 4
DURATIONS_S = (2.0, 5.0, 10.0)
CONCURRENCY = (1, 8, 32)


def utterance(seconds: float, seed: int = 0) -> np.ndarray:
    """Speech-like noise (the VAD gate is not what is measured here)."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(int(16_000 * seconds)) * 0.1).astype(np.float32)


def ms(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"p50": round(statistics.median(ordered) * 1000, 1), "p95": round(p95 * 1000, 1)}


async def latency(engine: HfWhisperTranscriber, memory: GpuMemory, runs: int) -> dict[str, Any]:
    rows = {}
    for seconds in DURATIONS_S:
        engine.max_new_tokens = int(seconds * TOKENS_PER_SECOND)
        audio = utterance(seconds)
        await engine.batcher.submit(SpeechRequest(audio, "pt"))  # this shape's warm-up
        times = []
        for _ in range(runs):
            memory.synchronize()
            started = time.perf_counter()
            await engine.batcher.submit(SpeechRequest(audio, "pt"))
            times.append(time.perf_counter() - started)
        rows[f"{seconds:g}s"] = {**ms(times), "tokens": engine.max_new_tokens}
    return rows


async def throughput(engine: HfWhisperTranscriber, sessions: int, runs: int) -> dict[str, Any]:
    engine.max_new_tokens = int(5 * TOKENS_PER_SECOND)
    audios = [utterance(5.0, seed) for seed in range(sessions)]
    latencies, walls = [], []
    for _ in range(runs):
        started = time.perf_counter()

        async def one(audio: np.ndarray, started: float = started) -> None:
            await engine.batcher.submit(SpeechRequest(audio, "pt"))
            latencies.append(time.perf_counter() - started)

        await asyncio.gather(*(one(a) for a in audios))
        walls.append(time.perf_counter() - started)
    wall = statistics.median(walls)
    return {**ms(latencies), "utterances_per_s": round(sessions / wall, 1)}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp()) / f"whisper-{args.size}-random"
    build_whisper(folder, args.size, tokenizer_json=args.tokenizer_json)
    memory = GpuMemory(args.device)
    engine = HfWhisperTranscriber(folder, device=args.device, dtype=args.dtype)
    engine.load()
    result: dict[str, Any] = {
        "model": f"whisper {args.size}, random weights",
        "device": memory.device_name,
        "dtype": args.dtype,
        "weights_gb": memory.in_use_gb(),
        "latency": await latency(engine, memory, args.runs),
        "concurrency": {},
    }
    batched, unbatched = engine.batcher, type(engine.batcher)(engine._decode_requests, max_batch=1)
    for sessions in CONCURRENCY:
        row = {}
        for name, batcher in (("batched", batched), ("unbatched", unbatched)):
            engine.batcher = batcher
            await throughput(engine, sessions, 1)  # warm-up of this batch shape
            row[name] = await throughput(engine, sessions, args.runs)
        result["concurrency"][str(sessions)] = row
    result["peak_gb"] = memory.peak_gb()
    return result


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", default="float16")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tokenizer-json", type=Path, default=None)
    parser.add_argument("--size", default="large-v3-turbo", choices=["large-v3-turbo", "tiny"])
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "gpu_stt.json")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    save(result, args.out)

    print(f"{result['model']} on {result['device']}, {result['dtype']}, "
          f"weights {result['weights_gb']} GB, peak {result['peak_gb']} GB")  # fmt: skip
    print("\n| utterance | tokens | p50 ms | p95 ms |\n|---|---|---|---|")
    for name, row in result["latency"].items():
        print(f"| {name} | {row['tokens']} | {row['p50']} | {row['p95']} |")
    print("\n| sessions | mode | latency p50 ms | p95 ms | utterances/s |\n|---|---|---|---|---|")
    for sessions, rows in result["concurrency"].items():
        for mode, row in rows.items():
            print(
                f"| {sessions} | {mode} | {row['p50']} | {row['p95']} | {row['utterances_per_s']} |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
