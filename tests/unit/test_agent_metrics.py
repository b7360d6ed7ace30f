"""Per-turn agent metrics: events joined by reply, first audio counted, stale turns dropped."""

from __future__ import annotations

import time

from livekit.agents.metrics import EOUMetrics, LLMMetrics, STTMetrics, TTSMetrics

from agent.metrics import TurnMetricsReporter

NOW = time.time()


def stt(duration: float) -> STTMetrics:
    return STTMetrics(
        label="parle", request_id="r", timestamp=NOW, duration=duration, audio_duration=2.0,
        streamed=False,
    )  # fmt: skip


def eou(speech_id: str, delay: float) -> EOUMetrics:
    return EOUMetrics(
        timestamp=NOW, end_of_utterance_delay=delay, transcription_delay=0.1,
        on_user_turn_completed_delay=0.0, speech_id=speech_id,
    )  # fmt: skip


def llm(speech_id: str, ttft: float) -> LLMMetrics:
    return LLMMetrics(
        label="parle", request_id="r", timestamp=NOW, duration=1.0, ttft=ttft, cancelled=False,
        completion_tokens=5, prompt_tokens=50, prompt_cached_tokens=0, total_tokens=55,
        tokens_per_second=20.0, speech_id=speech_id,
    )  # fmt: skip


def tts(speech_id: str, ttfb: float, *, cancelled: bool = False) -> TTSMetrics:
    return TTSMetrics(
        label="parle", request_id="r", timestamp=NOW, ttfb=ttfb, duration=0.5,
        audio_duration=1.0, cancelled=cancelled, characters_count=20, streamed=True,
        speech_id=speech_id,
    )  # fmt: skip


def test_a_turn_is_reported_once_all_its_stages_are_in() -> None:
    reporter = TurnMetricsReporter(server_url="http://127.0.0.1:9")
    assert reporter.collect(stt(0.4)) is None
    assert reporter.collect(eou("s1", 0.7)) is None
    assert reporter.collect(llm("other", 9.0)) is None  # another reply's numbers stay apart
    assert reporter.collect(llm("s1", 0.25)) is None
    report = reporter.collect(tts("s1", 0.15, cancelled=True))  # barge-in after first audio
    assert report is not None
    assert report.stt_s == 0.4 and report.end_of_turn_s == 0.7
    assert report.end_to_end_s == 1.1
    assert reporter.collect(tts("s1", 0.9)) is None  # a later segment is not a new turn


def test_a_reply_that_never_sounded_is_not_reported_and_does_not_pile_up() -> None:
    reporter = TurnMetricsReporter(server_url="http://127.0.0.1:9")
    for n in range(100):
        reporter.collect(eou(f"s{n}", 0.5))
        reporter.collect(llm(f"s{n}", 0.2))
        assert reporter.collect(tts(f"s{n}", -1.0)) is None  # no audio came out
    assert len(reporter._turns) <= 16
    assert reporter.reports == []
