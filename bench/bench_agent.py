"""Agent-side overhead per turn: the same learner turn through a LiveKit `AgentSession` (the
PARLE plugins, real Silero VAD, real-time microphone and loudspeaker, no LiveKit server) and
through the PARLE server directly, same engines (the `cpu` profile's Whisper and Kokoro, one
scripted LLM for both so both paths speak the same reply), same run, interleaved.

    server TTFA    = upload of the clip -> first audio chunk (SSE), STT included
    agent e2e      = the framework's end-to-end latency: the learner's last speech (VAD) ->
                     the tutor's first audio out
    VAD silence    = the silence Silero must hear before it calls the speech over (0.55 s);
                     a wait by design, which the server path does not have (its client
                     decides when the utterance ends)
    agent overhead = agent e2e - VAD silence - server TTFA

The session only sends the utterance to STT once VAD has called it over, and the endpointing
delay (0.5 s here) runs meanwhile; on this box STT takes longer than that, so it hides it.

Run: .venv/bin/python bench/bench_agent.py [--runs 3]   (about 2 minutes)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench_turn import median  # noqa: E402  (this folder is on sys.path)

from agent.metrics import TurnMetricsReporter  # noqa: E402
from agent.plugins import ParleLLM, ParleSTT, ParleTTS  # noqa: E402
from agent.tutor import TutorAgent  # noqa: E402
from bridge.app import create_app  # noqa: E402
from harness.scripted_llm import ScriptedLlmServer  # noqa: E402
from harness.uvicorn_thread import UvicornThread  # noqa: E402
from harness.voice import LearnerMicrophone, Speaker  # noqa: E402
from parle.config import load_settings  # noqa: E402

AUDIO = REPO / "tests" / "data" / "audio" / "utterances"
REPLY = ["Muito bem!", " Você mora", " no Brasil", " agora?", " Eu adoro", " o Rio."]
MIN_ENDPOINTING_S = 0.5
VAD_SILENCE_S = 0.55


async def server_turn(client: httpx.AsyncClient, url: str, clip: Path) -> tuple[float, float]:
    """(TTFA ms, STT ms) of one turn through `/api/stream-audio`, timed by the client."""
    files = {"audio": (clip.name, clip.read_bytes(), "audio/wav")}  # noqa: ASYNC240 (tiny)
    started = time.monotonic()
    ttfa = stt = None
    async with client.stream("POST", f"{url}/api/stream-audio", files=files, timeout=60) as r:
        event = ""
        async for line in r.aiter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == "audio" and ttfa is None:
                ttfa = (time.monotonic() - started) * 1000
            elif line.startswith("data: ") and event == "transcript":
                stt = json.loads(line[6:])["stt_ms"]
    assert ttfa is not None and stt is not None, "the server turn produced no audio"
    return ttfa, stt


async def wait_until(predicate: Any, within_s: float) -> None:
    deadline = time.monotonic() + within_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("the agent did not answer in time")
        await asyncio.sleep(0.01)


async def run(clips: list[str], runs: int) -> dict[str, Any]:
    from livekit.agents import AgentSession
    from livekit.plugins import silero

    llm = ScriptedLlmServer(REPLY).start()
    settings = load_settings(profile="cpu", llm_url=llm.url)
    server = UvicornThread(create_app(settings)).start()
    await asyncio.to_thread(server.wait_ready)
    async with httpx.AsyncClient() as client:
        microphone, speaker = LearnerMicrophone(), Speaker()
        session: AgentSession[Any] = AgentSession(
            stt=ParleSTT(server_url=server.base_url),
            llm=ParleLLM(base_url=llm.url),
            tts=ParleTTS(server_url=server.base_url),
            vad=silero.VAD.load(min_silence_duration=VAD_SILENCE_S),
            turn_handling={
                "turn_detection": "vad",
                "endpointing": {"min_delay": MIN_ENDPOINTING_S, "max_delay": 2.0},
                "interruption": {"enabled": False},
                "preemptive_generation": {"enabled": False},
            },
        )
        session.input.audio, session.output.audio = microphone, speaker
        states: list[str] = []
        session.on("agent_state_changed", lambda ev: states.append(ev.new_state))
        reporter = TurnMetricsReporter(server_url=server.base_url)
        reporter.attach(session)
        await session.start(TutorAgent(greeting="Olá!"))
        await wait_until(lambda: states[-1:] == ["listening"] and speaker.frames, 60)

        rows: dict[str, dict[str, list[float]]] = {}
        for _ in range(runs):
            for name in clips:
                clip = AUDIO / f"{name}.wav"
                keys = ("ttfa", "stt", "e2e", "eot", "agent_stt")
                row = rows.setdefault(name, {k: [] for k in keys})
                ttfa, stt = await server_turn(client, server.base_url, clip)
                row["ttfa"].append(ttfa)
                row["stt"].append(stt)

                reports = len(reporter.reports)
                microphone.say(clip)
                await wait_until(lambda n=reports: len(reporter.reports) > n, 60)
                report = reporter.reports[-1]
                row["e2e"].append((report.end_to_end_s or 0.0) * 1000)
                row["eot"].append((report.end_of_turn_s or 0.0) * 1000)
                row["agent_stt"].append((report.stt_s or 0.0) * 1000)
                await wait_until(lambda: states[-1] == "listening", 60)
                await asyncio.sleep(0.5)
        await session.aclose()
        await reporter.aclose()
    server.stop()
    llm.stop()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--clips", default="u01,u05,u09")
    args = parser.parse_args()
    rows = asyncio.run(run(args.clips.split(","), args.runs))

    table, overheads = [], []
    for name, row in rows.items():
        turn_overheads = [
            e2e - VAD_SILENCE_S * 1000 - ttfa
            for e2e, ttfa in zip(row["e2e"], row["ttfa"], strict=True)
        ]
        overheads += turn_overheads
        table.append(
            {
                "clip": name,
                "server_ttfa_ms": median(row["ttfa"]),
                "server_stt_ms": median(row["stt"]),
                "agent_e2e_ms": median(row["e2e"]),
                "agent_end_of_turn_ms": median(row["eot"]),
                "agent_transcription_ms": median(row["agent_stt"]),
                "overhead_ms": median(turn_overheads),
            }
        )
    summary = {"runs_per_clip": args.runs, "median_overhead_ms": median(overheads)}
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "agent.json").write_text(json.dumps({"summary": summary, "clips": table}, indent=1))
    print(
        "| clip | server TTFA | server STT | agent e2e | agent end of turn | agent STT | overhead |"
    )
    print("|---|---|---|---|---|---|---|")
    for t in table:
        print(
            f"| {t['clip']} | {t['server_ttfa_ms']} | {t['server_stt_ms']} | {t['agent_e2e_ms']} "
            f"| {t['agent_end_of_turn_ms']} | {t['agent_transcription_ms']} | {t['overhead_ms']} |"
        )
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
