"""The worker's own parts: light prewarm (with the profile's level estimator), a session
configured for local turn-taking paced by the learner's level, SIP callers recognised, and a
load that follows the PARLE server's."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from livekit import rtc

from agent import worker
from agent.plugins import ParleLLM, ParleTTS
from harness.uvicorn_thread import free_port
from parle.tutor.levels import LEVELS, POLICIES, LexicalLevelEstimator
from tests.doubles.stack import make_stack


@pytest.fixture(scope="module")
def userdata() -> dict[str, Any]:
    proc = SimpleNamespace(userdata={})
    worker.prewarm(proc)  # type: ignore[arg-type]
    return proc.userdata


def participant(kind: int, **attributes: str) -> Any:
    return SimpleNamespace(kind=kind, attributes=attributes)


async def test_prewarm_loads_only_local_light_models(userdata: dict[str, Any]) -> None:
    from livekit.plugins import silero

    assert isinstance(userdata["vad"], silero.VAD)
    assert userdata["turn_detector"].model == "turn-detector-v1-mini"  # local, not Cloud
    assert set(userdata) == {"vad", "turn_detector", "estimator"}
    # The cpu profile's estimator, loaded before any call: no turn waits for its word list.
    estimator = userdata["estimator"]
    assert isinstance(estimator, LexicalLevelEstimator) and estimator._zipf is not None


def test_the_level_estimator_follows_the_setting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from agent.plugins import _http
    from parle.config import load_settings
    from parle.tutor.mdeberta import MdebertaLevelEstimator
    from tests.integration.test_mdeberta import build_random_classifier

    folder = build_random_classifier(tmp_path / "cefr", list(LEVELS))
    chosen = load_settings(profile="cpu", level_estimator="mdeberta", classifier_model=str(folder))
    monkeypatch.setattr(_http, "_settings", chosen)
    estimator = worker.load_level_estimator()
    assert isinstance(estimator, MdebertaLevelEstimator)
    assert estimator.estimate("Olá, meu nome é Ana.").level in LEVELS  # loaded: no lazy load


@pytest.mark.parametrize("level", ["A1", "B1", "C2"])
async def test_session_is_paced_by_the_starting_level(userdata: dict[str, Any], level: str) -> None:
    session = worker.build_session(userdata, level)
    policy = POLICIES[level]
    handling = session.options.turn_handling
    assert handling["endpointing"]["min_delay"] == policy.min_endpointing_delay_s
    assert handling["endpointing"]["max_delay"] == policy.max_endpointing_delay_s
    assert isinstance(session.llm, ParleLLM) and session.llm.max_tokens == policy.max_tokens
    assert isinstance(session.tts, ParleTTS) and session.tts.speed == policy.tts_speed
    assert handling["interruption"]["mode"] == "vad"
    assert handling["interruption"]["resume_false_interruption"] is True
    assert handling["turn_detection"] is userdata["turn_detector"]
    await session.aclose()


def test_level_from_attributes_and_sip_callers() -> None:
    sip = rtc.ParticipantKind.PARTICIPANT_KIND_SIP
    standard = rtc.ParticipantKind.PARTICIPANT_KIND_STANDARD
    assert worker.starting_level(participant(standard, **{"parle.level": "b2"})) == "B2"
    assert worker.starting_level(participant(standard, **{"parle.level": "Z9"})) == "A2"
    assert worker.starting_level(None) == "A2"
    caller = participant(sip, **{"sip.phoneNumber": "+5511999990000"})
    assert worker.is_phone_call(caller)
    assert not worker.is_phone_call(participant(standard))


def test_load_follows_the_parle_server(monkeypatch: pytest.MonkeyPatch) -> None:
    with make_stack() as stack:
        _use_server(monkeypatch, stack.url)
        load = worker.ServerLoad(interval_s=0.05)
        load()
        time.sleep(0.3)
        assert load() == 0.0  # nothing running on the server
    _use_server(monkeypatch, f"http://127.0.0.1:{free_port()}")
    gone = worker.ServerLoad(interval_s=0.05)
    gone.value = 0.5
    gone()
    deadline = time.monotonic() + 5
    while gone.value != 1.0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gone.value == 1.0  # an unreachable server takes no new calls


def _use_server(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    from agent.plugins import _http
    from parle.config import load_settings

    monkeypatch.setattr(_http, "_settings", load_settings(server_url=url))
