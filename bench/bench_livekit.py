"""The tutor in real LiveKit rooms on the `cpu` profile: livekit-server on loopback, `parle
serve`, `parle agent start`, and learners through LiveKit's Python SDK (WebRTC, Opus), all
real processes (harness/livekit_stack.py). Same run, same clips:

    room e2e   = the learner's end of speech (the clip's last voiced frame handed to WebRTC)
                 -> the first audible frame of the tutor's reply at the learner's client
    parts      = the agent's own per-turn metrics, as PARLE's /metrics received them:
                 end-of-turn delay (endpointing, by the room's level), STT (transcription
                 delay), LLM time to first token, TTS time to first byte, agent e2e
    SSE TTFA   = the same clip posted to `/api/stream-audio` -> first audio event (client clock)

Then rooms at once (1, 2, 4 learners speaking together): rooms answered, e2e p50/p95.
`--phone`: the learners are phone callers (`caller_grant`: a participant of kind SIP, as
LiveKit's SIP bridge makes one) speaking the clips through a phone line (harness/telephone.py:
300-3400 Hz, 8 kHz, mu-law, 2% of packets lost); livekit-sip itself cannot be built here.

Run: .venv/bin/python bench/bench_livekit.py   (make bench-livekit; about 10 minutes)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import sys
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from harness.livekit_stack import (  # noqa: E402
    LIVEKIT_SERVER,
    NO_LIVEKIT_SERVER,
    Learner,
    LiveKitStack,
    caller_grant,
)
from harness.telephone import telephone  # noqa: E402

AUDIO = REPO / "tests" / "data" / "audio"
STAGES = ("end_of_turn", "stt", "llm_ttft", "tts_ttfb", "end_to_end")
# Starting level -> the clips its learner speaks (10 turns in all, every clip once).
ROOMS = {
    "A1": ["u01", "u02", "u03", "u04"],
    "B1": ["u05", "u06", "u07"],
    "C1": ["u08", "u09", "u10"],
}
CONCURRENT_CLIPS = ["u01", "u06", "u09", "u05"]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def references() -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in json.loads((AUDIO / "references.json").read_text("utf-8"))}


def stage_totals(stack: LiveKitStack) -> dict[str, tuple[float, float]]:
    """(sum, count) of each `parle_agent_stage_seconds` stage on PARLE's /metrics."""
    text = httpx.get(stack.parle_url + "/metrics", timeout=5).text
    totals = {}
    for stage in STAGES:
        found = [
            float(m.group(1))
            for kind in ("sum", "count")
            if (m := re.search(
                rf'^parle_agent_stage_seconds_{kind}\{{stage="{stage}"\}} ([0-9.eE+-]+)$',
                text, re.MULTILINE,
            ))
        ]  # fmt: skip
        totals[stage] = (found[0], found[1]) if len(found) == 2 else (0.0, 0.0)
    return totals


def spoken(clip: str, phone: bool) -> bytes:
    data = (AUDIO / "utterances" / f"{clip}.wav").read_bytes()
    return telephone(data, loss=0.02) if phone else data


async def one_turn(
    stack: LiveKitStack, learner: Learner, clip: str, tail_s: float, phone: bool = False
) -> dict[str, Any]:
    before = stage_totals(stack)
    _, ended = await learner.say(spoken(clip, phone))
    speech_end = ended - tail_s
    # The whole reply, to its transcription and a second of quiet: the agent reports a turn's
    # metrics once its reply is over, and the next turn must not start before.
    first, _, _ = await learner.reply(ended, within_s=120)
    parts: dict[str, float] = {}
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        after = stage_totals(stack)
        if after["end_to_end"][1] == before["end_to_end"][1] + 1:
            for stage in STAGES:
                if after[stage][1] > before[stage][1]:
                    parts[stage] = 1000 * (after[stage][0] - before[stage][0])
            break
        await asyncio.sleep(0.3)
    return {"clip": clip, "e2e_ms": 1000 * (first - speech_end), "parts_ms": parts}


async def sse_ttfa(url: str, clip: str, level: str) -> float:
    data = (AUDIO / "utterances" / f"{clip}.wav").read_bytes()
    async with httpx.AsyncClient(timeout=90) as client:
        started = time.monotonic()
        async with client.stream(
            "POST", f"{url}/api/stream-audio",
            files={"audio": (f"{clip}.wav", data, "audio/wav")}, data={"level": level},
        ) as response:  # fmt: skip
            event = ""
            async for line in response.aiter_lines():
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: ") and event == "audio":
                    return 1000 * (time.monotonic() - started)
    raise RuntimeError(f"no audio for {clip} over SSE")


async def concurrent_rooms(
    stack: LiveKitStack, rooms: int, refs: dict[str, dict[str, Any]], rounds: int
) -> dict[str, Any]:
    learners = [Learner(stack.parle_url) for _ in range(rooms)]
    latencies: list[float] = []
    answered = asked = 0
    try:
        await asyncio.gather(*(learner.join(level="B1") for learner in learners))
        greeted = await asyncio.gather(
            *(learner.greeted(within_s=120) for learner in learners), return_exceptions=True
        )
        if failed := [str(g) for g in greeted if isinstance(g, BaseException)]:
            # Where it breaks: a room whose tutor never spoke counts as unanswered.
            return {"rooms": rooms, "turns": rooms, "answered": 0, "greeted": rooms - len(failed),
                    "e2e_p50_ms": float("nan"), "e2e_p95_ms": float("nan"), "e2e_ms": [],
                    "error": failed[0][:300]}  # fmt: skip
        for round_ in range(rounds):
            clips = [CONCURRENT_CLIPS[(i + round_) % len(CONCURRENT_CLIPS)] for i in range(rooms)]
            ends = await asyncio.gather(
                *(
                    learner.say((AUDIO / "utterances" / f"{clip}.wav").read_bytes())
                    for learner, clip in zip(learners, clips, strict=True)
                )
            )

            async def answer(learner: Learner, ended: float, tail: float) -> float | None:
                try:
                    first, _, _ = await learner.reply(ended, within_s=90)
                    return first - (ended - tail)
                except AssertionError:
                    return None

            results = await asyncio.gather(
                *(
                    answer(learner, end, refs[clip]["tail_silence_s"])
                    for learner, (_, end), clip in zip(learners, ends, clips, strict=True)
                )
            )
            asked += len(results)
            answered += sum(r is not None for r in results)
            latencies += [1000 * r for r in results if r is not None]
    finally:
        await asyncio.gather(*(learner.leave() for learner in learners), return_exceptions=True)
    return {
        "rooms": rooms,
        "turns": asked,
        "answered": answered,
        "e2e_p50_ms": percentile(latencies, 50),
        "e2e_p95_ms": percentile(latencies, 95),
        "e2e_ms": latencies,
    }


async def run(
    rounds: int, concurrency: list[int], parle_env: dict[str, str], single: bool, phone: bool
) -> dict[str, Any]:
    refs = references()
    stack = await asyncio.to_thread(LiveKitStack, parle_env)
    turns: list[dict[str, Any]] = []
    sse: list[dict[str, Any]] = []
    try:
        for number, (level, clips) in enumerate(ROOMS.items() if single else ()):
            learner = Learner(stack.parle_url)
            if phone:  # a caller whose number the dispatch rule gives a starting level
                grant = caller_grant(
                    stack.livekit, f"+55219876543{number:02d}", **{"parle.level": level}
                )
                await learner.join_with(grant)
            else:
                await learner.join(level=level)
            try:
                await learner.greeted(within_s=120)
                for clip in clips:
                    turn = await one_turn(stack, learner, clip, refs[clip]["tail_silence_s"], phone)
                    turn["level"] = level
                    turns.append(turn)
                    print(json.dumps(turn), flush=True)
            finally:
                await learner.leave()
        for turn in turns:
            sse.append({"clip": turn["clip"], "ttfa_ms": await sse_ttfa(
                stack.parle_url, turn["clip"], turn["level"])})  # fmt: skip
            print(json.dumps(sse[-1]), flush=True)
        together = []
        for rooms in concurrency:
            together.append(await concurrent_rooms(stack, rooms, refs, rounds))
            print(json.dumps(together[-1]), flush=True)
    finally:
        await asyncio.to_thread(stack.close)
    # Other work on the box (2 cores) moves every number: the load it saw is kept with them.
    return {"turns": turns, "sse": sse, "concurrent": together, "loadavg_end": os.getloadavg()}


def summary(result: dict[str, Any]) -> str:
    turns, sse = result["turns"], result["sse"]
    e2e = [t["e2e_ms"] for t in turns]
    lines = (
        []
        if not turns
        else [
            f"room e2e (end of speech -> first audible frame at the client), {len(e2e)} turns: "
            f"p50 {percentile(e2e, 50):.0f} ms, p95 {percentile(e2e, 95):.0f} ms",
            f"SSE TTFA, same clips: p50 {percentile([s['ttfa_ms'] for s in sse], 50):.0f} ms, "
            f"p95 {percentile([s['ttfa_ms'] for s in sse], 95):.0f} ms",
        ]
    )
    for stage in STAGES:
        values = [t["parts_ms"][stage] for t in turns if stage in t["parts_ms"]]
        lines.append(
            f"  agent {stage}: p50 {percentile(values, 50):.0f} ms, "
            f"p95 {percentile(values, 95):.0f} ms ({len(values)} turns)"
        )
    for level in ROOMS:
        values = [t["parts_ms"].get("end_of_turn") for t in turns if t["level"] == level]
        shown = ", ".join(f"{v:.0f}" for v in values if v is not None)
        room = [t["e2e_ms"] for t in turns if t["level"] == level]
        lines.append(f"  level {level}: end-of-turn ms [{shown}]; room e2e p50 "
                     f"{percentile(room, 50):.0f} ms")  # fmt: skip
    lines.append(f"load average at the end (1, 5, 15 min): {result['loadavg_end']}")
    for c in result["concurrent"]:
        lines.append(
            f"{c['rooms']} room(s) at once: {c['answered']}/{c['turns']} turns answered, "
            f"e2e p50 {c['e2e_p50_ms']:.0f} ms, p95 {c['e2e_p95_ms']:.0f} ms"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="turns per room when rooms overlap")
    parser.add_argument("--rooms", default="1,2,4", help="rooms at once, comma-separated")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "livekit.json")
    parser.add_argument("--no-single", action="store_true", help="only the rooms-at-once part")
    parser.add_argument("--phone", action="store_true", help="phone callers (telephone audio)")
    parser.add_argument(
        "--client-max-turns", help="PARLE_CLIENT_MAX_TURNS for `parle serve` (default: its own)"
    )
    args = parser.parse_args()
    parle_env = {}
    if args.client_max_turns:
        parle_env["PARLE_CLIENT_MAX_TURNS"] = args.client_max_turns
    if LIVEKIT_SERVER is None:
        print(NO_LIVEKIT_SERVER, file=sys.stderr)
        return 2
    # Stopped from outside (timeout, kill): unwind as for Ctrl-C, so the servers stop too.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    rooms = [int(n) for n in args.rooms.split(",")]
    result = asyncio.run(run(args.rounds, rooms, parle_env, not args.no_single, args.phone))
    result["parle_env"] = parle_env
    result["phone"] = args.phone
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(summary(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
