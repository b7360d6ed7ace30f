"""The LiveKit worker: one light job process per room; the models stay in the PARLE server.

`parle agent start|dev|console|download-files` runs LiveKit's CLI on `server` below.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from typing import Any

import httpx
from livekit import rtc
from livekit.agents import AgentServer, AgentSession, JobContext, JobProcess, room_io

from agent.metrics import TurnMetricsReporter
from agent.plugins import ParleLLM, ParleSTT, ParleTTS
from agent.plugins._http import server_headers, settings
from agent.tutor import GREETING, PHONE_GREETING, TutorAgent, room_publisher
from parle.tutor.levels import LEVELS, LevelEstimator
from parle.tutor.policy import TutorPolicy, build_estimator

log = logging.getLogger(__name__)

AGENT_NAME = "parle-tutor"


class ServerLoad:
    """The PARLE server's load (0..1), polled in the background from its `/metrics`, so the
    worker stops taking calls when the shared engines are full, not when this host's CPU is."""

    def __init__(self, interval_s: float = 2.0) -> None:
        self.value = 0.0
        self._interval_s = interval_s
        self._thread: threading.Thread | None = None

    def __call__(self, *_: Any) -> float:
        if self._thread is None:
            self._thread = threading.Thread(target=self._poll, daemon=True, name="parle-load")
            self._thread.start()
        return self.value

    def _poll(self) -> None:
        config = settings()
        url = config.server_url.rstrip("/") + "/metrics"
        capacity = config.max_active_turns + config.max_queued_turns
        while True:
            try:
                text = httpx.get(url, headers=server_headers(None), timeout=2).text
                busy = _gauge(text, "parle_active_turns") + _gauge(text, "parle_queue_depth")
                self.value = min(1.0, busy / max(capacity, 1))
            except httpx.HTTPError:
                self.value = 1.0  # the server is unreachable: take no new calls
            time.sleep(self._interval_s)


def _gauge(metrics: str, name: str) -> float:
    match = re.search(rf"^{name} ([0-9.eE+-]+)$", metrics, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def prewarm(proc: JobProcess) -> None:
    """Never Whisper, TTS or the LLM (they stay in the PARLE server): Silero VAD, the local
    turn detector and the profile's CEFR level estimator (`PARLE_LEVEL_ESTIMATOR`, as the
    server builds it), loaded once per job process before any call arrives."""
    from livekit.agents import inference
    from livekit.plugins import silero

    proc.userdata["vad"] = silero.VAD.load()
    # v1-mini runs locally (livekit-local-inference): nothing calls LiveKit Cloud.
    proc.userdata["turn_detector"] = inference.TurnDetector(version="v1-mini")
    proc.userdata["estimator"] = load_level_estimator()


def load_level_estimator() -> LevelEstimator:
    """The profile's CEFR level estimator (`PARLE_LEVEL_ESTIMATOR`: lexical or the mdeberta
    classifier), built as the server builds it, and loaded."""
    estimator = build_estimator(settings())
    estimator.load()
    return estimator


server = AgentServer(
    setup_fnc=prewarm,
    load_fnc=ServerLoad(),
    num_idle_processes=2,  # two warm processes: a call starts without loading VAD first
    initialize_process_timeout=60.0,  # Silero + the turn detector on a busy small box
)


def build_session(userdata: dict[str, Any], level: str) -> AgentSession[Any]:
    """The voice session: PARLE plugins, local VAD and turn detection, learner-paced from the
    first turn (`TutorAgent` keeps these settings on the learner's level afterwards)."""
    turn = TutorPolicy(region=settings().region).settings(level)
    return AgentSession(
        stt=ParleSTT(),
        llm=ParleLLM(max_tokens=turn.max_tokens),
        tts=ParleTTS(speed=turn.tts_speed),
        vad=userdata["vad"],
        turn_handling={
            "turn_detection": userdata["turn_detector"],
            "endpointing": {
                "min_delay": turn.min_endpointing_delay_s,
                "max_delay": turn.max_endpointing_delay_s,
            },
            "interruption": {
                "enabled": True,
                "mode": "vad",
                "resume_false_interruption": True,
            },
            "preemptive_generation": {"enabled": settings().agent_preemptive_generation},
        },
    )


def starting_level(participant: rtc.RemoteParticipant | None) -> str:
    """The learner's level from their `parle.level` attribute, else PARLE's default."""
    if participant is not None:
        given = participant.attributes.get("parle.level", "").upper()
        if given in LEVELS:
            return given
    return settings().level


def is_phone_call(participant: rtc.RemoteParticipant | None) -> bool:
    return participant is not None and participant.kind == rtc.ParticipantKind.PARTICIPANT_KIND_SIP


def room_options(participant: rtc.RemoteParticipant) -> room_io.RoomOptions:
    """Linked to this learner; when they leave (a caller hanging up) the session closes and
    the job ends. Audio is taken at 16 kHz, the rate of Silero and Whisper: a phone's 8 kHz
    is upsampled once by the SDK and the narrowband speech is transcribed as it is."""
    return room_io.RoomOptions(
        participant_identity=participant.identity,
        close_on_disconnect=True,
        audio_input=room_io.AudioInputOptions(sample_rate=16_000),
    )


async def start_tutoring(
    room: rtc.Room, participant: rtc.RemoteParticipant, userdata: dict[str, Any]
) -> tuple[AgentSession[Any], TurnMetricsReporter]:
    """Start the tutor for `participant` in `room` (greeted by phone or by browser)."""
    level = starting_level(participant)
    phone = is_phone_call(participant)
    log.info("session starting", extra={"room": room.name, "phone": phone, "level": level})
    session = build_session(userdata, level)
    reporter = TurnMetricsReporter()
    reporter.attach(session)
    agent = TutorAgent(
        level=level,
        region=settings().region,
        estimator=userdata["estimator"],
        publish=room_publisher(room),
        greeting=PHONE_GREETING if phone else GREETING,
    )
    await session.start(agent=agent, room=room, room_options=room_options(participant))
    return session, reporter


@server.rtc_session(agent_name=AGENT_NAME)
async def entrypoint(ctx: JobContext) -> None:
    """One room: wait for the learner (web, mobile or a phone caller), then tutor them."""
    await ctx.connect()
    participant = await ctx.wait_for_participant()
    _, reporter = await start_tutoring(ctx.room, participant, ctx.proc.userdata)
    ctx.add_shutdown_callback(reporter.aclose)
