"""End of speech -> first audio: the SSE blob door against `/v1/realtime`, same clips, same run.

    .venv/bin/python bench/bench_realtime.py [--runs 3] [--clips u01,u05,u07,u09,u10]

The server runs the real `cpu` engines in this process (uvicorn thread). For every clip and
run, alternately:

(a) SSE: the whole recording POSTed to `/api/stream-audio`; the time from the request to the
    first `audio` event (the learner stopped speaking when the recording was sent).
(b) realtime: the clip streamed at real time in 20 ms appends (24 kHz PCM16, server VAD with
    500 ms of silence), then silence; the time from the append holding the last speech sample
    to the first `response.output_audio.delta`. Minus the 500 ms the server must wait to know
    the turn is over, that is what the realtime door adds.

Goal: (b) - 500 ms <= 0.5 x (a), medians. Writes bench/results/realtime_cpu.json.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import websockets

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bridge.app import create_app  # noqa: E402
from harness.uvicorn_thread import UvicornThread, free_port  # noqa: E402
from parle.audio import decode_audio, wav_bytes  # noqa: E402
from parle.config import load_settings  # noqa: E402

AUDIO = REPO / "tests" / "data" / "audio" / "utterances"
RESULTS = REPO / "bench" / "results"
SILENCE_MS = 500


def speech_only(name: str) -> np.ndarray:
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    audio = decode_audio((AUDIO / f"{name}.wav").read_bytes())
    spans = get_speech_timestamps(audio, VadOptions(min_silence_duration_ms=300, speech_pad_ms=30))
    return audio[spans[0]["start"] : spans[-1]["end"]]


def pcm(audio: np.ndarray, rate: int) -> bytes:
    import av

    samples = (np.clip(audio, -1, 1) * 32767).astype(np.int16)
    if rate == 16_000:
        return samples.astype("<i2").tobytes()
    frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = 16_000
    resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
    out = [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
    out += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    return np.concatenate(out).astype("<i2").tobytes()


async def sse_ttfa(base: str, clip: np.ndarray) -> float | None:
    """(a): request sent -> first audio event, ms."""
    wav = wav_bytes(pcm(clip, 16_000), 16_000)
    async with httpx.AsyncClient(timeout=60) as client:
        start = time.perf_counter()
        async with client.stream(
            "POST", base + "/api/stream-audio", files={"audio": ("a.wav", wav, "audio/wav")}
        ) as response:
            async for line in response.aiter_lines():
                if line == "event: audio":
                    return (time.perf_counter() - start) * 1000
    return None


async def realtime_ttfa(base: str, clip: np.ndarray, lead_s: float) -> dict[str, Any]:
    """(b): last speech sample sent -> first output audio, ms, streaming at real time."""
    url = base.replace("http", "ws") + "/v1/realtime"
    speech_end_s = lead_s + clip.size / 16_000
    audio = np.concatenate([np.zeros(int(lead_s * 16_000), np.float32), clip,
                            np.zeros(3 * 16_000, np.float32)])  # fmt: skip
    data = pcm(audio, 24_000)
    step = 960  # 20 ms at 24 kHz
    end_sent: list[float] = []
    async with websockets.connect(url, max_size=None) as ws:
        detection = {"type": "server_vad", "silence_duration_ms": SILENCE_MS}
        update = {"type": "session.update",
                  "session": {"audio": {"input": {"turn_detection": detection}}}}  # fmt: skip
        await ws.send(json.dumps(update))

        async def send() -> None:
            start = time.perf_counter()
            for i, offset in enumerate(range(0, len(data), step)):
                chunk = base64.b64encode(data[offset : offset + step]).decode()
                await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": chunk}))
                if not end_sent and (i + 1) * 0.02 >= speech_end_s:
                    end_sent.append(time.perf_counter())
                wait = start + (i + 1) * 0.02 - time.perf_counter()
                if wait > 0:
                    await asyncio.sleep(wait)

        sender = asyncio.create_task(send())
        first: float | None = None
        timings: dict[str, Any] = {}
        async with asyncio.timeout(60):
            async for raw in ws:
                event = json.loads(raw)
                if event["type"] == "response.output_audio.delta" and first is None:
                    first = time.perf_counter()
                if event["type"] == "response.done":
                    timings = event["response"].get("parle", {}).get("timings", {})
                    break
        sender.cancel()
    ttfa = (first - end_sent[0]) * 1000 if first is not None and end_sent else None
    return {"ttfa_ms": ttfa, "server": timings}


async def bench(runs: int, clips: list[str]) -> dict[str, Any]:
    settings = load_settings(profile="cpu", llm_url=f"http://127.0.0.1:{free_port()}/v1")
    thread = UvicornThread(create_app(settings), ws_max_size=settings.max_upload_bytes + 65536)
    base = thread.start().wait_ready()
    speech = {name: speech_only(name) for name in clips}
    rows: list[dict[str, Any]] = []
    try:
        for name in clips:  # warm-up: the LLM's prefix cache, every engine's first call
            await sse_ttfa(base, speech[name])
        for run in range(runs):
            for name in clips:
                clip = speech[name]
                a = await sse_ttfa(base, np.concatenate([np.zeros(4800, np.float32), clip,
                                                         np.zeros(8000, np.float32)]))  # fmt: skip
                b = await realtime_ttfa(base, clip, 0.3)
                row = {"run": run, "clip": name, "sse_ttfa_ms": a, "realtime_ttfa_ms": b["ttfa_ms"],
                       "realtime_server": b["server"]}  # fmt: skip
                rows.append(row)
                print(json.dumps(row), flush=True)
    finally:
        thread.stop()
    a_values = [r["sse_ttfa_ms"] for r in rows if r["sse_ttfa_ms"] is not None]
    b_values = [r["realtime_ttfa_ms"] for r in rows if r["realtime_ttfa_ms"] is not None]
    a_med = statistics.median(a_values)
    b_med = statistics.median(b_values)
    ratios = [
        (r["realtime_ttfa_ms"] - SILENCE_MS) / r["sse_ttfa_ms"]
        for r in rows
        if r["realtime_ttfa_ms"] is not None and r["sse_ttfa_ms"]
    ]
    summary = {
        "runs": runs,
        "clips": clips,
        "silence_ms": SILENCE_MS,
        "sse_ttfa_ms_median": round(a_med, 1),
        "realtime_ttfa_ms_median": round(b_med, 1),
        "realtime_after_silence_ms_median": round(b_med - SILENCE_MS, 1),
        "ratio_of_medians": round((b_med - SILENCE_MS) / a_med, 3),
        "ratio_median_per_pair": round(statistics.median(ratios), 3),
        "goal": "(b) - silence <= 0.5 x (a)",
        "rows": rows,
    }
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--clips", default="u01,u05,u07,u09,u10")
    args = parser.parse_args()
    summary = asyncio.run(bench(args.runs, args.clips.split(",")))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "realtime_cpu.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False))
    print(json.dumps({k: v for k, v in summary.items() if k != "rows"}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
