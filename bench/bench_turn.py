"""Time to first audio (TTFA) of the streamed turn vs the sequential baseline, on the `cpu`
profile's real engines, loaded once, in one process; plus the pipeline's own overhead with
instant engines, and peak memory.

    .venv/bin/python bench/bench_turn.py [--runs 5] [--clips u01,u05,u09]

Prints a markdown table and writes bench/results/turn.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from parle.audio import FloatAudio, wav_bytes
from parle.config import load_settings
from parle.runtime import ParleRuntime
from parle.sessions import SessionMemory
from parle.testing import InstantSynthesizer, InstantTranscriber, ScriptedChatModel
from parle.turn import CompleteEvent, TurnOptions, TurnPipeline, TurnTimings

REPO = Path(__file__).resolve().parent.parent
AUDIO = REPO / "tests" / "data" / "audio" / "utterances"


async def one_turn(
    pipeline: TurnPipeline, audio: bytes | FloatAudio, *, sequential: bool = False
) -> TurnTimings:
    """One turn in a fresh conversation; its timings (it must have spoken)."""
    timings = None
    memory = SessionMemory(0)  # every run starts the same conversation
    async for event in pipeline.run(
        audio, session=memory, options=TurnOptions(sequential=sequential)
    ):
        if isinstance(event, CompleteEvent):
            timings = event.timings
    assert timings is not None and timings.ttfa_ms is not None, "the turn produced no audio"
    return timings


def median(values: list[float]) -> float:
    return round(statistics.median(values), 1)


async def real_engines(clips: list[str], runs: int) -> dict[str, Any]:
    # Greedy decoding so the streamed and the sequential run speak the same reply.
    settings = load_settings(profile="cpu", llm_temperature=0.0)
    results: dict[str, Any] = {}
    async with ParleRuntime(settings) as runtime:
        assert runtime.pipeline is not None
        for clip in clips:
            data = (AUDIO / f"{clip}.wav").read_bytes()
            rows: dict[str, list[TurnTimings]] = {"streamed": [], "sequential": []}
            for _ in range(runs):  # interleaved, so drift hits both modes alike
                rows["streamed"].append(await one_turn(runtime.pipeline, data, sequential=False))
                rows["sequential"].append(await one_turn(runtime.pipeline, data, sequential=True))
            results[clip] = {
                mode: {
                    key: median([getattr(t, key) for t in timings])
                    for key in (
                        "stt_ms",
                        "llm_first_token_ms",
                        "llm_ms",
                        "tts_first_chunk_ms",
                        "tts_ms",
                        "ttfa_ms",
                        "total_ms",
                    )
                }
                | {"ttfa_runs": [t.ttfa_ms for t in timings]}
                for mode, timings in rows.items()
            }
    return results


async def overhead(turns: int = 300) -> dict[str, float]:
    """TTFA with engines that take no time: what the pipeline itself costs."""
    reply = ["Muito bem", ", Ana!", " De onde", " você é?"]
    pipeline = TurnPipeline(
        InstantTranscriber(vad=False), ScriptedChatModel(reply), InstantSynthesizer()
    )
    tone = (np.sin(np.arange(16_000) / 5) * 8000).astype("<i2").tobytes()
    data = wav_bytes(tone, 16_000)
    samples = await pipeline.decode(data)
    from_bytes, from_samples = [], []
    for _ in range(turns):
        from_bytes.append((await one_turn(pipeline, data)).ttfa_ms or 0.0)
        from_samples.append((await one_turn(pipeline, samples)).ttfa_ms or 0.0)
    return {
        "ttfa_ms_with_1s_wav_decode": median(from_bytes),
        "ttfa_ms_from_pcm": median(from_samples),
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--clips", default="u01,u05,u09")
    args = parser.parse_args()
    clips = args.clips.split(",")

    started = time.time()
    engines = asyncio.run(real_engines(clips, args.runs))
    instant = asyncio.run(overhead())
    self_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    llm_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024

    streamed = [v for c in clips for v in engines[c]["streamed"]["ttfa_runs"]]
    sequential = [v for c in clips for v in engines[c]["sequential"]["ttfa_runs"]]
    summary = {
        "runs_per_clip": args.runs,
        "clips": clips,
        "median_ttfa_ms_streamed": median(streamed),
        "median_ttfa_ms_sequential": median(sequential),
        "ratio_streamed_over_sequential": round(median(streamed) / median(sequential), 3),
        "overhead": instant,
        "peak_rss_mb_parle": round(self_mb),
        "peak_rss_mb_llm_server": round(llm_mb),
        "seconds": round(time.time() - started),
    }
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "turn.json").write_text(json.dumps({"summary": summary, "clips": engines}, indent=1))

    print("| clip | mode | stt_ms | llm first token | tts first chunk | ttfa_ms | total_ms |")
    print("|---|---|---|---|---|---|---|")
    for clip in clips:
        for mode in ("streamed", "sequential"):
            row = engines[clip][mode]
            print(
                f"| {clip} | {mode} | {row['stt_ms']} | {row['llm_first_token_ms']} | "
                f"{row['tts_first_chunk_ms']} | {row['ttfa_ms']} | {row['total_ms']} |"
            )
    print()
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
