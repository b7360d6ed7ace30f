"""The LiveKit worker: one light job process per room; the models stay in the PARLE server.

`parle agent start|dev|console|download-files` runs LiveKit's CLI on `server` below.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
from livekit import rtc
from livekit.agents import (
    AgentServer,
    AgentSession,
    JobContext,
    JobProcess,
    get_job_context,
    room_io,
)

from agent.learner import (
    KnownLearner,
    LearnerLink,
    call_label,
    learner_identity,
    learner_tenant,
)
from agent.metrics import TurnMetricsReporter
from agent.plugins import ParleLLM, ParleSTT, ParleTTS
from agent.plugins._http import server_headers, settings
from agent.tutor import GREETING, PHONE_GREETING, TutorAgent, room_publisher
from parle.config import Settings
from parle.engines.base import GrammarChecker
from parle.logs import JsonFormatter
from parle.tutor.commands import keypad_command
from parle.tutor.levels import LEVELS, LevelEstimator
from parle.tutor.policy import TutorPolicy, build_estimator
from parle.tutor.scenarios import Scenario, UnknownScenarioError, get_scenario

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


def build_server(config: Settings) -> AgentServer:
    """The worker: PARLE's entrypoint, prewarm and load report, its health endpoint on
    `PARLE_AGENT_HEALTH_HOST`:`PARLE_AGENT_HEALTH_PORT` (loopback by default: the framework's
    own default is every interface, at a fixed port that a second worker would collide on)."""
    server = AgentServer(
        setup_fnc=prewarm,
        load_fnc=ServerLoad(),
        num_idle_processes=2,  # two warm processes: a call starts without loading VAD first
        initialize_process_timeout=60.0,  # Silero + the turn detector on a busy small box
        host=config.agent_health_host,
        port=config.agent_health_port,
    )
    server.rtc_session(agent_name=AGENT_NAME)(entrypoint)
    return server


def build_session(
    userdata: dict[str, Any], level: str, *, room: str | None = None
) -> AgentSession[Any]:
    """The voice session: PARLE plugins, local VAD and turn detection, learner-paced from the
    first turn (`TutorAgent` keeps these settings on the learner's level afterwards)."""
    turn = TutorPolicy(region=settings().region).settings(level)
    return AgentSession(
        stt=ParleSTT(room=room, streaming=settings().agent_streaming_stt),
        llm=ParleLLM(max_tokens=turn.max_tokens),
        tts=ParleTTS(speed=turn.tts_speed, room=room),
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
            # The reply's first TTS piece too, not only its LLM: with the streaming STT the
            # transcript comes well before the end of the turn, and the first audio is then
            # ready when the turn is confirmed (bench/README.md, agent section).
            "preemptive_generation": {
                "enabled": settings().agent_preemptive_generation,
                "preemptive_tts": True,
            },
        },
    )


def starting_level(participant: rtc.RemoteParticipant | None, stored: str | None = None) -> str:
    """The learner's level from their `parle.level` attribute (a client's explicit choice wins,
    as at the server's doors), else where they left off (`stored`), else PARLE's default."""
    if participant is not None:
        given = participant.attributes.get("parle.level", "").upper()
        if given in LEVELS:
            return given
    if stored is not None and stored in LEVELS:
        return stored
    return settings().level


def chosen_scenario(participant: rtc.RemoteParticipant | None) -> Scenario | None:
    """The role-play lesson of the learner's `parle.scenario` attribute; none when absent or
    unknown (a free conversation rather than no lesson)."""
    given = participant.attributes.get("parle.scenario", "") if participant is not None else ""
    if not given:
        return None
    try:
        return get_scenario(given)
    except UnknownScenarioError:
        log.warning("unknown scenario attribute; free conversation")
        return None


def log_through_livekit_cli() -> None:
    """LiveKit's CLI installs a JSON handler of its own on the root logger when it starts
    (job processes' records are forwarded to it); beside PARLE's, every record was written
    twice. From the CLI's start on, its handler is the only one, and it writes PARLE's lines
    (`parle.logs`: the same fields as the server's, API keys and phone numbers blanked),
    except in `parle agent dev`, whose coloured lines are for a developer's terminal."""
    from livekit.agents.cli import cli
    from livekit.agents.cli import log as livekit_log

    setup = livekit_log.setup_logging

    def setup_logging(log_level: str, devmode: bool, console: bool, compact: bool = False) -> None:
        root = logging.getLogger()
        for handler in list(root.handlers):
            root.removeHandler(handler)
        setup(log_level, devmode=devmode, console=console, compact=compact)
        if not devmode:
            for handler in root.handlers:
                handler.setFormatter(JsonFormatter())

    vars(cli)["setup_logging"] = setup_logging  # the name `run_app` calls


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


def grammar_checker(config: Settings) -> GrammarChecker | None:
    """The grammar checker of a room's learner (`PARLE_GRAMMAR=languagetool`): the PARLE
    server's LanguageTool at `PARLE_GRAMMAR_URL` (it is never launched here); none with
    `rules` or `off`, and then its module is never imported."""
    if config.grammar != "languagetool":
        return None
    from parle.engines.languagetool import REGION_LANGUAGES, LanguageToolChecker

    return LanguageToolChecker(
        config.grammar_url,
        timeout_s=config.grammar_timeout_s,
        language=REGION_LANGUAGES.get(config.region, "pt-BR"),
    )


async def start_tutoring(
    room: rtc.Room, participant: rtc.RemoteParticipant, userdata: dict[str, Any]
) -> tuple[AgentSession[Any], TurnMetricsReporter]:
    """Start the tutor for `participant` in `room` (greeted by phone or by browser); a known
    learner starts where they left off, and their turns go to their record."""
    phone = is_phone_call(participant)
    # A call's room is named after the caller's number: PARLE knows it by a hash of it.
    label = call_label(room.name, settings().phone_hash_key) if phone else room.name
    link, known = await learner_of(participant, phone=phone, session_id=label)
    level = starting_level(participant, known.level if known is not None else None)
    log.info("session starting", extra={
        "session": label, "phone": phone, "start_level": level,
        "learner": link is not None, "returning": known is not None and known.level is not None,
    })  # fmt: skip
    session = build_session(userdata, level, room=label)
    reporter = TurnMetricsReporter()
    reporter.attach(session)
    grammar = grammar_checker(settings())
    agent = TutorAgent(
        level=level,
        region=settings().region,
        estimator=userdata["estimator"],
        publish=room_publisher(room),
        greeting=PHONE_GREETING if phone else GREETING,
        scenario=chosen_scenario(participant),  # its opener replaces the greeting
        learner_note=known.note if known is not None else None,
        grammar=grammar,
        rules=settings().grammar != "off",
    )
    job = get_job_context(required=False)
    if link is not None:
        link.attach(session, agent)
        if job is not None:
            # The last turns are sent before the job ends. (`aclose` takes no positional
            # argument: the job would pass its shutdown reason to one.)
            job.add_shutdown_callback(link.aclose)
    if grammar is not None and job is not None:
        job.add_shutdown_callback(grammar.aclose)  # its connections, when the room's job ends
    await session.start(agent=agent, room=room, room_options=room_options(participant))
    if phone:
        room.on("sip_dtmf_received", keypad_handler(session, participant.identity))
    return session, reporter


def keypad_handler(session: AgentSession[Any], caller: str) -> Callable[[rtc.SipDTMF], None]:
    """A caller's keypad: a key that stands for a command is the caller saying it
    (`parle.tutor.commands.KEYPAD`), answered as the spoken command is; other keys, and
    presses from anyone but the caller, are ignored."""

    def pressed(dtmf: rtc.SipDTMF) -> None:
        phrase = keypad_command(dtmf.digit)
        who = dtmf.participant.identity if dtmf.participant is not None else ""
        if phrase is None or who != caller:
            return
        log.info("keypad command", extra={"key": dtmf.digit})
        session.generate_reply(user_input=phrase)

    return pressed


async def learner_of(
    participant: rtc.RemoteParticipant, *, phone: bool, session_id: str | None = None
) -> tuple[LearnerLink | None, KnownLearner | None]:
    """The participant's link to their record (None: anonymous, an id that breaks the rules)
    and what the store knows of them (None: nothing, or the server did not answer in time)."""
    learner_id = learner_identity(participant, phone_hash_key=settings().phone_hash_key, sip=phone)
    tenant = learner_tenant(participant)
    if learner_id is None or tenant is None:
        return None, None
    link = LearnerLink(learner_id, tenant=tenant)
    return link, await link.start(session_id)


async def entrypoint(ctx: JobContext) -> None:
    """One room: wait for the learner (web, mobile or a phone caller), then tutor them."""
    await ctx.connect()
    participant = await ctx.wait_for_participant()
    _, reporter = await start_tutoring(ctx.room, participant, ctx.proc.userdata)
    ctx.add_shutdown_callback(reporter.aclose)
