"""What the PARLE server adds, and how it serves several learners at once.

    .venv/bin/python bench/bench_server.py instant [--sessions 200 --turns 5 --think 2]
    .venv/bin/python bench/bench_server.py cpu [--sessions 4 --turns 3]

`instant`: the server with instant engines in its own process; N WebSocket sessions at once,
each sending T utterances, paced like people (a pause of about --think seconds between a
reply and the next utterance), then all in lockstep with no pause (`burst`). The client-side
time from an utterance sent to its first audio chunk, against the same pipeline's TTFA in
process without a server (the baseline): the difference is what the server adds.

`cpu`: the real `cpu` engines (`parle serve`), one session alone, then N at once, paced like
people (each listens to the reply, then pauses about --think s); TTFA as the server reports
it and as the client sees it. Writes bench/results/server_*.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import websockets
from bench_turn import one_turn  # this folder is on sys.path when run as a script

from parle.audio import wav_bytes
from parle.testing import InstantSynthesizer, InstantTranscriber, ScriptedChatModel
from parle.turn import TurnPipeline

REPO = Path(__file__).resolve().parent.parent
AUDIO = REPO / "tests" / "data" / "audio" / "utterances"
RESULTS = REPO / "bench" / "results"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def start_server(command: list[str], port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(command, env=env, cwd=REPO)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    process.kill()
    raise RuntimeError("the server did not become ready")


async def session(
    url: str, audio: list[bytes], turns: int, think_s: float, rng: random.Random
) -> dict[str, Any]:
    """One learner: T turns over one WebSocket; per turn, client TTFA and server timing.
    With `think_s`, the learner starts within the first 2 s, listens to the whole reply (its
    audio's duration from the first chunk on) and pauses about `think_s` (uniform +-50 %)
    before the next utterance, as people do."""
    observed: list[float] = []
    reported: list[float] = []
    errors = 0
    if think_s:
        await asyncio.sleep(rng.uniform(0, 2.0))
    async with websockets.connect(url, max_size=None, open_timeout=60) as ws:
        json.loads(await ws.recv())
        listen_until = 0.0
        for turn in range(turns):
            if think_s and turn:
                pause = rng.uniform(0.5 * think_s, 1.5 * think_s)
                await asyncio.sleep(max(0.0, listen_until - time.perf_counter()) + pause)
            sent = time.perf_counter()
            await ws.send(audio[turn % len(audio)])
            first_audio = None
            heard_s = 0.0
            rate = 0  # each WAV's rate, from the `audio` message announcing it
            while True:
                raw = await asyncio.wait_for(ws.recv(), 300)
                if isinstance(raw, bytes):
                    if first_audio is None:
                        first_audio = time.perf_counter()
                    heard_s += (len(raw) - 44) / 2 / rate
                    continue
                message = json.loads(raw)
                if message["type"] == "audio":
                    rate = message["sample_rate"]
                if message["type"] == "error":
                    errors += 1
                    break
                if message["type"] == "complete":
                    if first_audio is not None:
                        observed.append((first_audio - sent) * 1000)
                        reported.append(message["timing"]["ttfa_ms"])
                        listen_until = first_audio + heard_s
                    break
    return {"observed": observed, "reported": reported, "errors": errors}


async def load(
    url: str, audio: list[bytes], sessions: int, turns: int, think_s: float = 0.0
) -> dict[str, Any]:
    started = time.perf_counter()
    rng = random.Random(0)
    results = await asyncio.gather(
        *(
            session(f"{url}?session_id=bench{i}", audio, turns, think_s, rng)
            for i in range(sessions)
        ),
        return_exceptions=True,
    )
    failed = [r for r in results if isinstance(r, BaseException)]
    ok = [r for r in results if isinstance(r, dict)]
    observed = [v for r in ok for v in r["observed"]]
    reported = [v for r in ok for v in r["reported"]]
    return {
        "sessions": sessions,
        "turns_per_session": turns,
        "think_s": think_s,
        "turns_done": len(observed),
        "errors": sum(r["errors"] for r in ok) + len(failed),
        "client_ttfa_ms_p50": pct(observed, 0.5) if observed else None,
        "client_ttfa_ms_p95": pct(observed, 0.95) if observed else None,
        "server_ttfa_ms_p50": pct(reported, 0.5) if reported else None,
        "server_ttfa_ms_p95": pct(reported, 0.95) if reported else None,
        "seconds": round(time.perf_counter() - started, 1),
    }


async def in_process_baseline(audio: bytes, turns: int = 300) -> float:
    reply = ["Muito bem", ", Ana!", " De onde", " você é?", " Eu moro", " no Brasil."]
    pipeline = TurnPipeline(
        InstantTranscriber(vad=False), ScriptedChatModel(reply), InstantSynthesizer()
    )
    values = [(await one_turn(pipeline, audio)).ttfa_ms or 0.0 for _ in range(turns)]
    return round(statistics.median(values), 2)


def bench_instant(sessions: int, turns: int, think_s: float) -> dict[str, Any]:
    port = free_port()
    tone = (np.sin(np.arange(16_000) / 5) * 8000).astype("<i2").tobytes()
    audio = [wav_bytes(tone, 16_000)]
    command = [sys.executable, os.environ.get("BENCH_SERVER", "bench/instant_server.py"), str(port)]
    process = start_server(command, port, dict(os.environ))
    try:
        url = f"ws://127.0.0.1:{port}/ws/stream"
        result = asyncio.run(load(url, audio, sessions, turns, think_s))
        result["burst"] = asyncio.run(load(url, audio, sessions, turns))
        result["server_peak_rss_mb"] = peak_rss_mb(process.pid)
    finally:
        process.terminate()
        process.wait(10)
    baseline = asyncio.run(in_process_baseline(audio[0]))
    result["in_process_ttfa_ms_p50"] = baseline
    result["added_ms_p50"] = round(result["client_ttfa_ms_p50"] - baseline, 1)
    result["added_ms_p95"] = round(result["client_ttfa_ms_p95"] - baseline, 1)
    return result


def bench_cpu(sessions: int, turns: int, think_s: float) -> dict[str, Any]:
    port = free_port()
    env = {
        **os.environ,
        "PARLE_PORT": str(port),
        "PARLE_LLM_URL": f"http://127.0.0.1:{free_port()}/v1",
        "PARLE_LLM_TEMPERATURE": "0",
        "PARLE_MAX_ACTIVE_TURNS": str(sessions),
        "PARLE_CLIENT_MAX_TURNS": str(sessions),  # every session comes from this one address
    }
    audio = [(AUDIO / f"{clip}.wav").read_bytes() for clip in ("u01", "u05", "u09")]
    process = start_server([sys.executable, "-m", "parle", "serve"], port, env)
    try:
        url = f"ws://127.0.0.1:{port}/ws/stream"
        single = asyncio.run(load(url, audio, 1, turns))
        result = asyncio.run(load(url, audio, sessions, turns, think_s))
        result["one_session"] = single
        result["server_peak_rss_mb"] = peak_rss_mb(process.pid)
    finally:
        process.terminate()
        process.wait(30)
    return result


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["instant", "cpu"])
    parser.add_argument("--sessions", type=int)
    parser.add_argument("--turns", type=int)
    parser.add_argument("--think", type=float, default=2.0, help="seconds between turns")
    args = parser.parse_args()
    if args.mode == "instant":
        result = bench_instant(args.sessions or 200, args.turns or 5, args.think)
    else:
        result = bench_cpu(args.sessions or 4, args.turns or 3, args.think)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"server_{args.mode}.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
