"""Prometheus metrics of one server (its own registry, so several apps can live in a process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from bridge.schemas import AgentTurnReport
from parle.turn import TurnTimings

_LATENCY_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0)


class ServerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.turns = Counter(
            "parle_turns_total", "Turns by protocol and outcome", ["protocol", "outcome"],
            registry=self.registry,
        )  # fmt: skip
        self.stage_seconds = Histogram(
            "parle_stage_seconds", "Stage latency", ["stage"], buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )  # fmt: skip
        self.ttfa_seconds = Histogram(
            "parle_ttfa_seconds", "Audio in to first audio out", buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )  # fmt: skip
        self.errors = Counter(
            "parle_errors_total", "Errors by kind", ["kind"], registry=self.registry
        )
        self.active_sessions = Gauge(
            "parle_active_sessions", "Open WebSocket sessions and sessions in memory", ["kind"],
            registry=self.registry,
        )  # fmt: skip
        self.queue_depth = Gauge(
            "parle_queue_depth", "Turns waiting for an engine slot", registry=self.registry
        )
        self.active_turns = Gauge(
            "parle_active_turns", "Turns being served", registry=self.registry
        )
        self.store_errors = Counter(
            "parle_store_errors_total", "Learner store failures (the turn went on)", ["op"],
            registry=self.registry,
        )  # fmt: skip
        self.store_state = Gauge(
            "parle_store_state", "The learner store's state: 1 for the current one (ok, "
            "degraded: retrying or journaling, unavailable: no database)", ["state"],
            registry=self.registry,
        )  # fmt: skip
        self.store_journal_items = Gauge(
            "parle_store_journal_items", "Learner store records waiting in the journal",
            registry=self.registry,
        )  # fmt: skip
        self.grammar_failures = Counter(
            "parle_grammar_failures_total", "Grammar checks that failed or timed out (the turn "
            "went on with PARLE's own rules)", registry=self.registry,
        )  # fmt: skip
        self.grammar_down = Gauge(
            "parle_grammar_down", "1 while the grammar checker (LanguageTool) is failing",
            registry=self.registry,
        )  # fmt: skip
        self.speculations = Counter(
            "parle_realtime_speculations_total",
            "Realtime replies started before the turn's end was confirmed, by outcome "
            "(started, kept, discarded)", ["outcome"], registry=self.registry,
        )  # fmt: skip
        self.agent_seconds = Histogram(
            "parle_agent_stage_seconds", "LiveKit agent turn latency by stage", ["stage"],
            buckets=_LATENCY_BUCKETS, registry=self.registry,
        )  # fmt: skip

    def observe_turn(self, protocol: str, timings: TurnTimings) -> None:
        self.turns.labels(protocol, "ok").inc()
        self.stage_seconds.labels("stt").observe(timings.stt_ms / 1000)
        if timings.llm_first_token_ms is not None:
            self.stage_seconds.labels("llm_first_token").observe(timings.llm_first_token_ms / 1000)
        self.stage_seconds.labels("llm").observe(timings.llm_ms / 1000)
        self.stage_seconds.labels("tts").observe(timings.tts_ms / 1000)
        if timings.ttfa_ms is not None:
            self.ttfa_seconds.observe(timings.ttfa_ms / 1000)

    def observe_failure(self, protocol: str, kind: str) -> None:
        self.turns.labels(protocol, kind).inc()
        self.errors.labels(kind).inc()

    def observe_agent_turn(self, report: AgentTurnReport) -> None:
        for stage, seconds in report.model_dump(exclude_none=True).items():
            self.agent_seconds.labels(stage.removesuffix("_s")).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
