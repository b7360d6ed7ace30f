"""GPU benchmark of the torch Kokoro engine on a random-weight Kokoro-82M (the real
architecture; its duration head set to speech-like phoneme lengths, so the audio, and so the
work, is real-sized), through PARLE's own engine code:

- time to first audio of a tutor's first piece (3 words) and of a whole sentence, and the cost
  per 80 ms of audio;
- 1 / 8 / 32 concurrent sessions, each speaking three sentences back to back: every stream's
  speed (seconds of audio per second of wall time; > 1 = faster than real time);
- GPU memory of the engine.

    python bench/gpu/bench_tts.py [--device cuda] [--runs 5]
    python bench/gpu/bench_tts.py --device cpu --sessions 1,2 --runs 1   # smoke run (CI)

Writes bench/results/gpu_tts.json and prints the markdown tables.
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

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from gpu_common import GpuMemory, save  # noqa: E402  (this folder is on sys.path)

from parle.engines.kokoro_torch import KokoroTorchSynthesizer  # noqa: E402
from parle.random_models import build_kokoro  # noqa: E402

FIRST_PIECE = "Muito bem, Ana!"
SENTENCES = (
    "Que legal que você mora no Brasil.",
    "Eu adoro o Rio de Janeiro, principalmente as praias.",
    "De qual cidade você é, e há quanto tempo você estuda português?",
)


async def speak(engine: KokoroTorchSynthesizer, text: str) -> tuple[float, float]:
    """(seconds to the first chunk, seconds of audio) for `text`."""
    started, first, audio = time.perf_counter(), None, 0.0
    async for chunk in engine.synthesize(text):
        first = first or time.perf_counter() - started
        audio += len(chunk.pcm) / 2 / chunk.sample_rate
    assert first is not None, "no audio"
    return first, audio


async def latency(engine: KokoroTorchSynthesizer, runs: int) -> dict[str, Any]:
    rows = {}
    for name, text in (("first piece", FIRST_PIECE), ("sentence", SENTENCES[1])):
        await speak(engine, text)
        firsts, audios = [], []
        for _ in range(runs):
            first, audio = await speak(engine, text)
            firsts.append(first)
            audios.append(audio)
        median = statistics.median(firsts)
        per_frame = median / (statistics.median(audios) / 0.08)
        rows[name] = {
            "first_audio_ms": round(median * 1000, 1),
            "audio_s": round(statistics.median(audios), 2),
            "ms_per_80ms_frame": round(per_frame * 1000, 2),
        }
    return rows


async def concurrent(engine: KokoroTorchSynthesizer, sessions: int) -> dict[str, Any]:
    async def stream() -> float:
        started, audio = time.perf_counter(), 0.0
        for sentence in SENTENCES:
            audio += (await speak(engine, sentence))[1]
        return audio / (time.perf_counter() - started)

    speeds = await asyncio.gather(*(stream() for _ in range(sessions)))
    return {
        "slowest_stream_x_realtime": round(min(speeds), 2),
        "median": round(statistics.median(speeds), 2),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    folder = build_kokoro(Path(tempfile.mkdtemp()) / "Kokoro-82M")
    memory = GpuMemory(args.device)
    engine = KokoroTorchSynthesizer(folder, device=args.device)
    engine.load()
    result: dict[str, Any] = {
        "model": "Kokoro-82M, random weights",
        "device": memory.device_name,
        "weights_gb": memory.in_use_gb(),
        "latency": await latency(engine, args.runs),
        "concurrency": {},
    }
    for sessions in args.sessions:
        result["concurrency"][str(sessions)] = await concurrent(engine, sessions)
    result["peak_gb"] = memory.peak_gb()
    return result


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--sessions", default="1,8,32", type=lambda s: [int(n) for n in s.split(",")]
    )
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "gpu_tts.json")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    save(result, args.out)

    print(f"{result['model']} on {result['device']}, weights {result['weights_gb']} GB, "
          f"peak {result['peak_gb']} GB")  # fmt: skip
    print("\n| text | first audio ms | audio s | ms per 80 ms frame |\n|---|---|---|---|")
    for name, row in result["latency"].items():
        print(
            f"| {name} | {row['first_audio_ms']} | {row['audio_s']} | {row['ms_per_80ms_frame']} |"
        )
    print("\n| sessions | slowest stream (x real time) | median |\n|---|---|---|")
    for sessions, row in result["concurrency"].items():
        print(f"| {sessions} | {row['slowest_stream_x_realtime']} | {row['median']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
