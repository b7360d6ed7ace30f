"""Whole voice sessions in process, with no LiveKit server: an `AgentSession` whose audio
input plays the shared learner clips in real time and whose audio output plays out in real
time and records what it got; real Silero VAD; the PARLE plugins talking to the real `cpu`
server on loopback, and a scripted LLM where the exact words matter."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from livekit.agents import AgentSession
from livekit.plugins import silero

from agent.metrics import TurnMetricsReporter
from agent.plugins import ParleLLM, ParleSTT, ParleTTS
from agent.tutor import TutorAgent
from harness.scripted_llm import ScriptedLlmServer
from harness.voice import LearnerMicrophone, Speaker
from harness.wer import word_error_rate

REPLY = [
    "Muito bem!", " Você é", " dos Estados Unidos,", " que legal.", " Eu adoro", " viajar.",
    " De qual cidade", " você é?", " Você gosta", " de morar lá?",
]  # fmt: skip


@pytest.fixture
def scripted_llm() -> Iterator[ScriptedLlmServer]:
    llm = ScriptedLlmServer(REPLY).start()
    yield llm
    llm.stop()


async def wait_until(predicate: Any, within_s: float, state: Any = None) -> None:
    deadline = time.monotonic() + within_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out; {state() if state else ''}"
        await asyncio.sleep(0.05)


async def test_two_spoken_turns_and_a_barge_in(
    server: str, scripted_llm: ScriptedLlmServer, audio_dir: Path
) -> None:
    microphone, speaker = LearnerMicrophone(), Speaker()
    session: AgentSession[Any] = AgentSession(
        stt=ParleSTT(server_url=server),
        llm=ParleLLM(base_url=scripted_llm.url),
        tts=ParleTTS(server_url=server),
        vad=silero.VAD.load(),
        turn_handling={
            "turn_detection": "vad",
            "endpointing": {"min_delay": 0.6, "max_delay": 2.0},
            "interruption": {
                "mode": "vad",
                "min_duration": 0.3,
                "resume_false_interruption": False,
            },
            "preemptive_generation": {"enabled": False},
        },
    )
    session.input.audio = microphone
    session.output.audio = speaker
    heard: list[str] = []
    said: list[str] = []
    metrics: list[str] = []
    states: list[str] = []
    session.on("user_input_transcribed", lambda ev: ev.is_final and heard.append(ev.transcript))
    session.on(
        "conversation_item_added",
        lambda ev: (
            getattr(ev.item, "role", None) == "assistant"
            and said.append(ev.item.text_content or "")
        ),
    )
    session.on("metrics_collected", lambda ev: metrics.append(type(ev.metrics).__name__))
    session.on("agent_state_changed", lambda ev: states.append(ev.new_state))
    reporter = TurnMetricsReporter(server_url=server)
    reporter.attach(session)

    def where() -> str:
        return f"states={states[-6:]} heard={heard} said={len(said)} cut={speaker.interrupted}"

    await session.start(TutorAgent(greeting="Olá!"))
    await wait_until(lambda: said, 60, where)  # the greeting
    await wait_until(lambda: states and states[-1] == "listening", 60, where)

    # Turn 1: the learner speaks, the tutor answers aloud.
    microphone.say(audio_dir / "utterances/u01.wav")
    await wait_until(lambda: len(said) >= 2, 90, where)
    assert word_error_rate("Olá, meu nome é Ana e eu sou dos Estados Unidos.", heard[0]) <= 0.25
    assert said[1].strip() == "".join(REPLY)
    await wait_until(lambda: states[-1] == "listening", 90, where)
    frames_after_turn_1 = len(speaker.frames)
    assert frames_after_turn_1 > 0

    # Turn 2, then the learner talks over the tutor's answer: it stops.
    microphone.say(audio_dir / "utterances/u09.wav")
    await wait_until(lambda: states[-1] == "speaking", 90, where)
    microphone.say(audio_dir / "utterances/u05.wav")
    await wait_until(lambda: speaker.interrupted >= 1, 30, where)
    await wait_until(lambda: len(heard) >= 3, 60, where)
    # VAD-segmented by the session (not the whole clip): a little more slack.
    assert word_error_rate("Professora, qual é a diferença entre ser e estar?", heard[1]) <= 0.4
    assert word_error_rate("A minha casa é muito bonito e grande.", heard[2]) <= 0.4
    assert len(speaker.frames) > frames_after_turn_1
    assert {"STTMetrics", "LLMMetrics", "TTSMetrics", "EOUMetrics"} <= set(metrics)
    await session.aclose()
    await reporter.aclose()

    # Per-turn metrics, joined by reply and exported to the server's Prometheus metrics.
    assert reporter.reports
    first = reporter.reports[0]
    assert first.end_of_turn_s and first.stt_s and first.llm_ttft_s and first.tts_ttfb_s
    assert first.end_to_end_s and first.end_to_end_s >= first.end_of_turn_s
    async with httpx.AsyncClient() as client:
        exported = (await client.get(f"{server}/metrics")).text
    count = f'parle_agent_stage_seconds_count{{stage="end_to_end"}} {float(len(reporter.reports))}'
    assert count in exported
