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

Two sessions, interleaved with the server turn: `ParleSTT(streaming=False)` (each utterance
uploaded once the session's VAD has called it over: the path above) and the streaming
`ParleSTT` (the room's audio streamed to `/v1/realtime`; the transcript is drafted at the
server's first pause and sent when the session flushes at its end of speech).

Run: .venv/bin/python bench/bench_agent.py [--runs 3] [--preemptive]   (about 4 minutes;
`--preemptive`: the framework's preemptive generation on, as in the worker)
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


class VoiceSession:
    """One in-process `AgentSession` with its microphone, loudspeaker and per-turn reports."""

    def __init__(
        self, server_url: str, llm_url: str, *, streaming_stt: bool, preemptive: bool
    ) -> None:
        from livekit.agents import AgentSession
        from livekit.plugins import silero

        self.microphone, self.speaker = LearnerMicrophone(), Speaker()
        self.session: AgentSession[Any] = AgentSession(
            stt=ParleSTT(server_url=server_url, streaming=streaming_stt),
            llm=ParleLLM(base_url=llm_url),
            tts=ParleTTS(server_url=server_url),
            vad=silero.VAD.load(min_silence_duration=VAD_SILENCE_S),
            turn_handling={
                "turn_detection": "vad",
                "endpointing": {"min_delay": MIN_ENDPOINTING_S, "max_delay": 2.0},
                "interruption": {"enabled": False},
                "preemptive_generation": {"enabled": preemptive, "preemptive_tts": preemptive},
            },
        )
        self.session.input.audio, self.session.output.audio = self.microphone, self.speaker
        self.states: list[str] = []
        self.session.on("agent_state_changed", lambda ev: self.states.append(ev.new_state))
        self.reporter = TurnMetricsReporter(server_url=server_url)
        self.reporter.attach(self.session)

    async def start(self) -> None:
        await self.session.start(TutorAgent(greeting="Olá!"))
        await wait_until(lambda: self.states[-1:] == ["listening"] and self.speaker.frames, 60)

    async def turn(self, clip: Path) -> Any:
        reports = len(self.reporter.reports)
        self.microphone.say(clip)
        await wait_until(lambda: len(self.reporter.reports) > reports, 60)
        await wait_until(lambda: self.states[-1] == "listening", 60)
        await asyncio.sleep(0.5)
        return self.reporter.reports[-1]

    async def aclose(self) -> None:
        await self.session.aclose()
        await self.reporter.aclose()


async def run(clips: list[str], runs: int, preemptive: bool) -> dict[str, Any]:
    llm = ScriptedLlmServer(REPLY).start()
    settings = load_settings(profile="cpu", llm_url=llm.url)
    server = UvicornThread(create_app(settings)).start()
    await asyncio.to_thread(server.wait_ready)
    sessions = {
        mode: VoiceSession(
            server.base_url, llm.url, streaming_stt=mode == "streaming", preemptive=preemptive
        )
        for mode in ("blob", "streaming")
    }
    async with httpx.AsyncClient() as client:
        for voice in sessions.values():
            await voice.start()
        rows: dict[str, dict[str, list[float]]] = {}
        for _ in range(runs):
            for name in clips:
                clip = AUDIO / f"{name}.wav"
                row = rows.setdefault(name, {})
                ttfa, stt = await server_turn(client, server.base_url, clip)
                row.setdefault("ttfa", []).append(ttfa)
                row.setdefault("stt", []).append(stt)
                for mode, voice in sessions.items():
                    report = await voice.turn(clip)
                    row.setdefault(f"{mode}_e2e", []).append((report.end_to_end_s or 0.0) * 1000)
                    row.setdefault(f"{mode}_eot", []).append((report.end_of_turn_s or 0.0) * 1000)
                    row.setdefault(f"{mode}_stt", []).append((report.stt_s or 0.0) * 1000)
    for voice in sessions.values():
        await voice.aclose()
    server.stop()
    llm.stop()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--clips", default="u01,u05,u09")
    parser.add_argument(
        "--preemptive",
        action="store_true",
        help="the framework's preemptive generation (LLM and TTS) on, as in the worker",
    )
    args = parser.parse_args()
    rows = asyncio.run(run(args.clips.split(","), args.runs, args.preemptive))

    table: list[dict[str, Any]] = []
    overheads: dict[str, list[float]] = {"blob": [], "streaming": []}
    for name, row in rows.items():
        entry: dict[str, Any] = {
            "clip": name,
            "server_ttfa_ms": median(row["ttfa"]),
            "server_stt_ms": median(row["stt"]),
        }
        for mode in ("blob", "streaming"):
            turn_overheads = [
                e2e - VAD_SILENCE_S * 1000 - ttfa
                for e2e, ttfa in zip(row[f"{mode}_e2e"], row["ttfa"], strict=True)
            ]
            overheads[mode] += turn_overheads
            entry[mode] = {
                "e2e_ms": median(row[f"{mode}_e2e"]),
                "end_of_turn_ms": median(row[f"{mode}_eot"]),
                "transcription_ms": median(row[f"{mode}_stt"]),
                "overhead_ms": median(turn_overheads),
            }
        table.append(entry)
    summary = {
        "runs_per_clip": args.runs,
        "preemptive_generation": args.preemptive,
        "median_overhead_ms": {mode: median(v) for mode, v in overheads.items()},
        "median_e2e_ms": {
            mode: median([e for row in rows.values() for e in row[f"{mode}_e2e"]])
            for mode in ("blob", "streaming")
        },
        "median_transcription_ms": {
            mode: median([e for row in rows.values() for e in row[f"{mode}_stt"]])
            for mode in ("blob", "streaming")
        },
    }
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "agent.json").write_text(json.dumps({"summary": summary, "clips": table}, indent=1))
    print("| clip | server TTFA | STT | e2e | end of turn | transcription | overhead |")
    print("|---|---|---|---|---|---|---|")
    for t in table:
        for mode in ("blob", "streaming"):
            m = t[mode]
            print(
                f"| {t['clip']} {mode} | {t['server_ttfa_ms']} | {t['server_stt_ms']} "
                f"| {m['e2e_ms']} | {m['end_of_turn_ms']} | {m['transcription_ms']} "
                f"| {m['overhead_ms']} |"
            )
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
