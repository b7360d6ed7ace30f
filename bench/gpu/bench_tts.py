"""GPU benchmark of PARLE's torch TTS engines on random-weight models with the real
architectures, through PARLE's own engine code:

- `--engine qwen3` (default): Qwen3-TTS 12 Hz 0.6B CustomVoice (talker, code predictor, codec
  decoder), streamed: first audio leaves after two 80 ms codec frames. Random weights never
  say end-of-speech, so each piece runs to the engine's length guard, set here to speech
  length (0.8 frames, 64 ms, per character).
- `--engine kokoro-torch`: Kokoro-82M (its duration head set to speech-like phoneme lengths);
  a piece's audio comes out whole.

Measured: time to first audio of a tutor's first piece (3 words) and of a sentence, and the
cost per 80 ms frame; 1 / 8 / 32 concurrent sessions, each speaking three sentences back to
back: every stream's speed (seconds of audio per second of wall time; > 1 = faster than real
time) and the pieces' first audio. For qwen3 the same sessions also run unbatched (one stream
at a time), in the same run. GPU memory of the engine.

    python bench/gpu/bench_tts.py [--engine qwen3|kokoro-torch] [--device cuda] [--runs 5]
    python bench/gpu/bench_tts.py --device cpu --size tiny --sessions 1,2 --runs 1   # smoke run

Writes bench/results/gpu_tts_<engine>.json and prints the markdown tables.
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

from parle.engines.base import Synthesizer  # noqa: E402
from parle.engines.kokoro_torch import KokoroTorchSynthesizer  # noqa: E402
from parle.engines.qwen3_tts import Qwen3TtsSynthesizer  # noqa: E402
from parle.random_models import build_kokoro, build_qwen3_tts  # noqa: E402

FIRST_PIECE = "Muito bem, Ana!"
SENTENCES = (
    "Que legal que você mora no Brasil.",
    "Eu adoro o Rio de Janeiro, principalmente as praias.",
    "De qual cidade você é, e há quanto tempo você estuda português?",
)
SPEECH_FRAMES_PER_CHAR = 0.8


async def speak(engine: Synthesizer, text: str) -> tuple[float, float, float]:
    """(seconds to the first chunk, seconds of audio, seconds in all) for `text`."""
    started, first, audio = time.perf_counter(), None, 0.0
    async for chunk in engine.synthesize(text):
        first = first or time.perf_counter() - started
        audio += chunk.duration_s
    assert first is not None, "no audio"
    return first, audio, time.perf_counter() - started


async def latency(engine: Synthesizer, runs: int) -> dict[str, Any]:
    rows = {}
    for name, text in (("first piece", FIRST_PIECE), ("sentence", SENTENCES[1])):
        await speak(engine, text)
        results = [await speak(engine, text) for _ in range(runs)]
        audio = statistics.median(r[1] for r in results)
        rows[name] = {
            "first_audio_ms": round(statistics.median(r[0] for r in results) * 1000, 1),
            "audio_s": round(audio, 2),
            "ms_per_80ms_frame": round(
                statistics.median(r[2] / (r[1] / 0.08) for r in results) * 1000, 2
            ),
        }
    return rows


async def sessions_at_once(engine: Synthesizer, sessions: int) -> tuple[list[float], list[float]]:
    """`sessions` sessions at once, each speaking the three sentences back to back: each
    session's speed (x real time) and every piece's time to first audio (s)."""
    firsts: list[float] = []

    async def stream() -> float:
        started, audio = time.perf_counter(), 0.0
        for sentence in SENTENCES:
            first, seconds, _ = await speak(engine, sentence)
            firsts.append(first)
            audio += seconds
        return audio / (time.perf_counter() - started)

    return list(await asyncio.gather(*(stream() for _ in range(sessions)))), firsts


async def concurrent(engine: Synthesizer, sessions: int) -> dict[str, Any]:
    speeds, firsts = await sessions_at_once(engine, sessions)
    return {
        "slowest_stream_x_realtime": round(min(speeds), 2),
        "median": round(statistics.median(speeds), 2),
        "first_audio_ms_median": round(statistics.median(firsts) * 1000, 1),
        "first_audio_ms_max": round(max(firsts) * 1000, 1),
    }


def build_model(args: argparse.Namespace) -> tuple[str, Path]:
    """The benchmark's random-weight model folder (built once, loaded by each engine)."""
    folder = Path(tempfile.mkdtemp())
    if args.engine == "kokoro-torch":
        return "Kokoro-82M, random weights", build_kokoro(folder / "Kokoro-82M")
    name = f"Qwen3-TTS 12 Hz {args.size} CustomVoice, random weights"
    return name, build_qwen3_tts(folder / "Qwen3-TTS", args.size)


def load_engine(args: argparse.Namespace, model: Path, streams: int) -> Synthesizer:
    engine: Any
    if args.engine == "kokoro-torch":
        engine = KokoroTorchSynthesizer(model, device=args.device)
    else:
        engine = Qwen3TtsSynthesizer(
            model,
            device=args.device,
            max_streams=streams,
            max_frames_per_char=SPEECH_FRAMES_PER_CHAR,
        )
    engine.load()
    return engine


async def run(args: argparse.Namespace) -> dict[str, Any]:
    name, model = build_model(args)
    memory = GpuMemory(args.device)
    engine = load_engine(args, model, max(args.sessions))
    result: dict[str, Any] = {
        "model": name,
        "device": memory.device_name,
        "weights_gb": memory.in_use_gb(),
        "latency": await latency(engine, args.runs),
        "concurrency": {},
    }
    for sessions in args.sessions:
        result["concurrency"][str(sessions)] = await concurrent(engine, sessions)
    result["peak_gb"] = memory.peak_gb()
    if isinstance(engine, Qwen3TtsSynthesizer):
        result["shared_steps"] = round(engine.stream_steps / max(engine.steps, 1), 2)
        result["chunks_per_decoder_pass"] = round(
            engine.chunks_sent / max(engine.decoder_passes, 1), 2
        )
        engine.close()
        alone = load_engine(args, model, 1)  # the same model, one stream at a time
        assert isinstance(alone, Qwen3TtsSynthesizer)
        result["unbatched"] = {
            str(sessions): await concurrent(alone, sessions) for sessions in args.sessions
        }
        alone.close()
    return result


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--engine", default="qwen3", choices=["qwen3", "kokoro-torch"])
    parser.add_argument("--size", default="0.6b", choices=["0.6b", "tiny"], help="qwen3 only")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--sessions", default="1,8,32", type=lambda s: [int(n) for n in s.split(",")]
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    result = asyncio.run(run(args))
    save(result, args.out or REPO / "bench" / "results" / f"gpu_tts_{args.engine}.json")

    print(f"{result['model']} on {result['device']}, weights {result['weights_gb']} GB, "
          f"peak {result['peak_gb']} GB")  # fmt: skip
    print("\n| text | first audio ms | audio s | ms per 80 ms frame |\n|---|---|---|---|")
    for text, row in result["latency"].items():
        print(
            f"| {text} | {row['first_audio_ms']} | {row['audio_s']} | {row['ms_per_80ms_frame']} |"
        )
    print(
        "\n| sessions | batching | slowest stream (x real time) | median | first audio ms "
        "(median / max) |\n|---|---|---|---|---|"
    )
    together = "shared steps" if "unbatched" in result else "concurrent"
    tables = ((together, result["concurrency"]), ("one at a time", result.get("unbatched", {})))
    for label, table in tables:
        for sessions, row in table.items():
            print(
                f"| {sessions} | {label} | {row['slowest_stream_x_realtime']} | {row['median']} | "
                f"{row['first_audio_ms_median']} / {row['first_audio_ms_max']} |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
