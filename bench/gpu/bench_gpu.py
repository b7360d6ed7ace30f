"""The GPU box in one run: the `gpu` profile's engines on random-weight models with the real
architectures, through PARLE's own engine code, sized to fit one device call (~8 minutes).

1. Qwen3-TTS 12 Hz 0.6B streamed (`Qwen3TtsSynthesizer`), the step as CUDA graphs: first audio
   of a 3-word piece and of a sentence, wall time per 80 ms frame of a lone stream; 1 / 8 /
   32 / 64 sessions at once, each speaking three sentences back to back: each stream's speed
   (x real time) and the pieces' first audio (p50 / p95 / max). Then the same engine eagerly
   (the fixed-shape step without graphs), lone stream and 8 sessions, for the ratio.
2. Whisper large-v3-turbo through transformers (`HfWhisperTranscriber`, fp16, static cache,
   compiled, batches padded to compiled sizes): 2 / 5 / 10 s utterances one at a time (p50,
   p95), and 1 / 8 / 32 concurrent 5 s utterances (utterances per second).
3. A whole turn in process, as the server runs it (`TurnPipeline`: Whisper, a scripted
   OpenAI-compatible LLM server streaming at 50 tokens/s on loopback, Qwen3-TTS): time to the
   first audio, 1 and 8 sessions at once.

Each row is printed as soon as it is measured (flushed) and the JSON is rewritten after each,
so a run cut short keeps what it measured. Random weights never say end-of-speech: each piece
runs to the engine's length guard, set here to speech length (0.8 frames, 64 ms, a character).

    make bench-gpu          # python3 bench/gpu/bench_gpu.py  (CUDA; the device's own python)
    make bench-gpu-smoke    # --smoke: the CPU, tiny models, few runs (CI-safe, < 3 minutes)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")  # its per-call notes drown the rows

# This folder is on sys.path (the script's own): the component benchmarks' pieces.
from bench_stt import TOKENS_PER_SECOND, utterance  # noqa: E402
from bench_stt import latency as stt_latency  # noqa: E402
from bench_stt import throughput as stt_throughput  # noqa: E402
from bench_tts import SPEECH_FRAMES_PER_CHAR, sessions_at_once  # noqa: E402
from bench_tts import latency as tts_latency  # noqa: E402
from gpu_common import GpuMemory, save  # noqa: E402

from parle.engines.qwen3_tts import Qwen3TtsSynthesizer  # noqa: E402
from parle.engines.whisper_hf import HfWhisperTranscriber  # noqa: E402
from parle.random_models import build_qwen3_tts, build_whisper  # noqa: E402

LLM_REPLY = "Muito bem! Você mora no Brasil há muito tempo? Eu adoro o Rio de Janeiro."


def percentiles(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(seconds)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p95_ms": round(p95 * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
    }


class Report:
    """Rows printed as they come and kept in one JSON file, rewritten after each row."""

    def __init__(self, out: Path, header: dict[str, Any]) -> None:
        self.out = out
        self.result: dict[str, Any] = {**header, "rows": []}
        print(json.dumps(header), flush=True)

    def row(self, section: str, name: str, **values: Any) -> None:
        self.result["rows"].append({"section": section, "name": name, **values})
        cells = " | ".join(f"{key} {value}" for key, value in values.items())
        print(f"| {section} | {name} | {cells} |", flush=True)
        save(self.result, self.out)


async def report_alone(
    report: Report, section: str, engine: Qwen3TtsSynthesizer, runs: int
) -> None:
    """A lone stream's first audio and cost per frame (bench_tts's), and its speed."""
    for name, row in (await tts_latency(engine, runs)).items():
        speed = round(80 / row["ms_per_80ms_frame"], 2)
        report.row(section, f"alone, {name}", **row, x_realtime=speed)


async def tts_sessions(engine: Qwen3TtsSynthesizer, sessions: int) -> dict[str, float]:
    speeds, firsts = await sessions_at_once(engine, sessions)
    return {
        "slowest_x_realtime": round(min(speeds), 2),
        "median_x_realtime": round(statistics.median(speeds), 2),
        **{f"first_audio_{k}": v for k, v in percentiles(firsts).items()},
    }


async def turns(pipeline: Any, sessions: int, runs: int) -> dict[str, Any]:
    from parle.events import CompleteEvent, TurnOptions

    audio = utterance(3.0)
    ttfa: list[float] = []
    stt: list[float] = []

    async def session(number: int) -> None:
        for run in range(runs):
            options = TurnOptions(level="B1")  # speed 1: no time-stretch
            name = f"bench-{sessions}-{number}-{run}"
            async for event in pipeline.run(audio, session=name, options=options):
                if isinstance(event, CompleteEvent):
                    assert event.timings.ttfa_ms is not None, "no audio"
                    ttfa.append(event.timings.ttfa_ms / 1000)
                    stt.append(event.timings.stt_ms / 1000)

    await asyncio.gather(*(session(n) for n in range(sessions)))
    return {
        **{f"ttfa_{k}": v for k, v in percentiles(ttfa).items()},
        "stt_p50_ms": percentiles(stt)["p50_ms"],
    }


def load_tts(args: argparse.Namespace, folder: Path, report: Report) -> Qwen3TtsSynthesizer:
    memory = GpuMemory(args.device)
    started = time.perf_counter()
    tts = Qwen3TtsSynthesizer(
        folder,
        device=args.device,
        max_streams=max(args.sessions),
        max_frames_per_char=SPEECH_FRAMES_PER_CHAR,
    )
    tts.load()
    report.row(
        "tts", "load", seconds=round(time.perf_counter() - started, 1),
        cuda_graphs=tts.cuda_graphs, weights_and_state_gb=memory.in_use_gb(),
    )  # fmt: skip
    return tts


async def bench_tts(
    args: argparse.Namespace, tts: Qwen3TtsSynthesizer, folder: Path, report: Report
) -> None:
    await report_alone(report, "tts", tts, args.runs)
    steps, frames = tts.steps, tts.stream_steps
    for sessions in args.sessions:
        report.row("tts", f"{sessions} sessions", **await tts_sessions(tts, sessions))
    report.row(
        "tts", "batching", frames_per_step=round((tts.stream_steps - frames) /
                                                 max(tts.steps - steps, 1), 2),
        chunks_per_decoder_pass=round(tts.chunks_sent / max(tts.decoder_passes, 1), 2),
    )  # fmt: skip
    if tts.cuda_graphs:  # the same step without graphs, for the ratio
        eager = Qwen3TtsSynthesizer(
            folder, device=args.device, max_streams=8, max_frames_per_char=SPEECH_FRAMES_PER_CHAR,
            cuda_graphs=False,
        )  # fmt: skip
        eager.load()
        await report_alone(report, "tts eager", eager, 3)
        report.row("tts eager", "8 sessions", **await tts_sessions(eager, 8))
        eager.close()


def load_stt(args: argparse.Namespace, folder: Path, report: Report) -> HfWhisperTranscriber:
    started = time.perf_counter()
    stt = HfWhisperTranscriber(
        folder,
        device=args.device,
        dtype="float16" if args.device.startswith("cuda") else "float32",
        max_new_tokens=int(10 * TOKENS_PER_SECOND),
        max_batch=args.stt_batch,
        min_speech_ms=0,  # noise stands in for speech: no VAD gate
    )
    stt.load()
    report.row("stt", "load", seconds=round(time.perf_counter() - started, 1),
               batch_sizes=stt.batch_sizes)  # fmt: skip
    return stt


async def bench_stt(args: argparse.Namespace, stt: HfWhisperTranscriber, report: Report) -> None:
    for name, row in (await stt_latency(stt, GpuMemory(args.device), args.runs)).items():
        report.row("stt", f"{name} utterance", **row)
    for sessions in args.stt_sessions:
        await stt_throughput(stt, sessions, 1)  # this batch shape's warm-up
        report.row("stt", f"{sessions} at once", **await stt_throughput(stt, sessions, args.runs))


async def bench_turns(
    args: argparse.Namespace,
    stt: HfWhisperTranscriber,
    tts: Qwen3TtsSynthesizer,
    report: Report,
) -> None:
    from harness.scripted_llm import ScriptedLlmServer
    from parle.engines.chat import OpenAIChatModel
    from parle.turn import TurnPipeline

    stt.max_new_tokens = int(3 * TOKENS_PER_SECOND)
    words = [f" {word}" for word in LLM_REPLY.split()]
    llm = ScriptedLlmServer(words, delay_s=0.02).start()  # ~50 tokens/s
    chat = OpenAIChatModel(llm.url, max_tokens=96)
    pipeline = TurnPipeline(stt, chat, tts, level="B1")
    try:
        for sessions in (1, min(8, max(args.sessions))):
            report.row("turn", f"{sessions} sessions", **await turns(pipeline, sessions, args.runs))
    finally:
        await chat.aclose()
        llm.stop()


async def run(args: argparse.Namespace, report: Report) -> None:
    models = Path(tempfile.mkdtemp())
    memory = GpuMemory(args.device)
    tts = stt = None
    if {"tts", "turn"} & args.sections:
        qwen3 = build_qwen3_tts(models / "qwen3", args.tts_size)
        tts = load_tts(args, qwen3, report)
        if "tts" in args.sections:
            await bench_tts(args, tts, qwen3, report)
    if {"stt", "turn"} & args.sections:
        whisper = build_whisper(
            models / "whisper", args.stt_size, tokenizer_json=args.tokenizer_json
        )
        stt = load_stt(args, whisper, report)
        if "stt" in args.sections:
            await bench_stt(args, stt, report)
    if stt is not None and tts is not None and "turn" in args.sections:
        await bench_turns(args, stt, tts, report)
    report.row("all", "peak", peak_gb=memory.peak_gb())
    for engine in (tts, stt):
        if engine is not None:
            engine.close()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--smoke", action="store_true", help="the CPU, tiny models, few runs")
    parser.add_argument("--device", default=None)
    parser.add_argument("--runs", type=int, default=None)
    parser.add_argument("--tokenizer-json", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "gpu.json")
    parser.add_argument(
        "--sections", default="tts,stt,turn", type=lambda s: set(s.split(",")),
        help="any of tts, stt, turn (a turn loads both engines)",
    )  # fmt: skip
    args = parser.parse_args()
    smoke = args.smoke
    args.device = args.device or ("cpu" if smoke else "cuda")
    args.runs = args.runs or (1 if smoke else 5)
    args.tts_size, args.stt_size = ("tiny", "tiny") if smoke else ("0.6b", "large-v3-turbo")
    args.sessions = [1, 2] if smoke else [1, 8, 32, 64]
    args.stt_sessions = [1, 2] if smoke else [1, 8, 32]
    args.stt_batch = 2 if smoke else 32
    import torch

    header = {
        "benchmark": "bench/gpu/bench_gpu.py" + (" --smoke" if smoke else ""),
        "device": GpuMemory(args.device).device_name,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    report = Report(args.out, header)
    asyncio.run(run(args, report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
