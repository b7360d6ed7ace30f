"""Per-turn agent metrics: a learner message and the reply to it make one report; the greeting
and replies that never sounded make none."""

from __future__ import annotations

from livekit.agents import llm

from agent.metrics import TurnMetricsReporter


def learner(**metrics: float) -> llm.ChatMessage:
    return llm.ChatMessage(role="user", content=["Oi"], metrics=metrics)  # type: ignore[arg-type]


def tutor(**metrics: float) -> llm.ChatMessage:
    return llm.ChatMessage(role="assistant", content=["Olá!"], metrics=metrics)  # type: ignore[arg-type]


def test_a_reply_to_the_learner_is_one_report() -> None:
    reporter = TurnMetricsReporter(server_url="http://127.0.0.1:9")
    assert reporter.collect(tutor(tts_node_ttfb=0.1)) is None  # the greeting answers no one
    assert reporter.collect(learner(end_of_turn_delay=0.7, transcription_delay=0.3)) is None
    report = reporter.collect(tutor(llm_node_ttft=0.25, tts_node_ttfb=0.15, e2e_latency=1.2))
    assert report is not None
    assert (report.end_of_turn_s, report.stt_s) == (0.7, 0.3)
    assert (report.llm_ttft_s, report.tts_ttfb_s, report.end_to_end_s) == (0.25, 0.15, 1.2)
    assert reporter.collect(tutor(e2e_latency=0.5)) is None  # a second reply is not a new turn
    assert reporter.reports == [report]


def test_a_reply_that_never_sounded_is_not_a_turn() -> None:
    reporter = TurnMetricsReporter(server_url="http://127.0.0.1:9")
    reporter.collect(learner(end_of_turn_delay=0.7))
    assert reporter.collect(tutor(llm_node_ttft=0.2)) is None  # cut before its first audio
    assert reporter.collect(llm.FunctionCall(call_id="c", name="f", arguments="{}")) is None
    later = reporter.collect(tutor(e2e_latency=0.9))
    assert later is not None and later.end_to_end_s == 0.9
