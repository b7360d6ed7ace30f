"""Per-turn latencies of a voice session, logged and exported to the PARLE server's Prometheus
metrics (`parle_agent_stage_seconds`): job processes come and go, the server stays."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from typing import Any

import httpx
from livekit.agents import AgentSession, MetricsCollectedEvent
from livekit.agents.metrics import AgentMetrics, EOUMetrics, LLMMetrics, STTMetrics, TTSMetrics

from agent.plugins._http import server_headers, settings
from bridge.schemas import AgentTurnReport

log = logging.getLogger(__name__)

_OPEN_TURNS = 16  # replies that never spoke (cancelled, greeting) must not pile up


class TurnMetricsReporter:
    """Joins a session's metrics events into one `AgentTurnReport` per reply (by speech id):
    end-of-turn delay, the learner's last STT, LLM time to first token and TTS time to first
    byte; end-to-end is their sum, from the learner's last word to the tutor's first audio."""

    def __init__(self, *, server_url: str | None = None, api_key: str | None = None) -> None:
        self._url = (server_url or settings().server_url).rstrip("/") + "/api/agent/metrics"
        self._api_key = api_key
        self._turns: OrderedDict[str, dict[str, float]] = OrderedDict()
        self._last_stt_s: float | None = None
        self._posts: set[asyncio.Task[None]] = set()
        self.reports: list[AgentTurnReport] = []

    def attach(self, session: AgentSession[Any]) -> None:
        """Listen to `session`'s metrics until it closes."""

        @session.on("metrics_collected")
        def _on_metrics(event: MetricsCollectedEvent) -> None:
            report = self.collect(event.metrics)
            if report is not None:
                self._post(report)

    def collect(self, metrics: AgentMetrics) -> AgentTurnReport | None:
        """Add one metrics event; returns the turn's report once its last stage is in."""
        if isinstance(metrics, STTMetrics):
            self._last_stt_s = metrics.duration
            return None
        speech_id = getattr(metrics, "speech_id", None)
        if speech_id is None:
            return None
        turn = self._turns.setdefault(speech_id, {})
        self._turns.move_to_end(speech_id)
        while len(self._turns) > _OPEN_TURNS:
            self._turns.popitem(last=False)
        # A reply may span several LLM calls and TTS segments: its first one is what we hear,
        # even when a barge-in cancels the rest (-1 means nothing came out at all).
        if isinstance(metrics, EOUMetrics):
            turn.setdefault("end_of_turn_s", metrics.end_of_utterance_delay)
        elif isinstance(metrics, LLMMetrics) and metrics.ttft >= 0:
            turn.setdefault("llm_ttft_s", metrics.ttft)
        elif isinstance(metrics, TTSMetrics) and metrics.ttfb >= 0:
            turn.setdefault("tts_ttfb_s", metrics.ttfb)
        if not {"end_of_turn_s", "llm_ttft_s", "tts_ttfb_s"} <= turn.keys():
            return None
        del self._turns[speech_id]
        report = AgentTurnReport(
            **turn, stt_s=self._last_stt_s, end_to_end_s=round(sum(turn.values()), 4)
        )
        self.reports.append(report)
        log.info("turn metrics", extra={"metrics": report.model_dump(exclude_none=True)})
        return report

    def _post(self, report: AgentTurnReport) -> None:
        task = asyncio.create_task(self._send(report))
        self._posts.add(task)
        task.add_done_callback(self._posts.discard)

    async def _send(self, report: AgentTurnReport) -> None:
        try:
            async with httpx.AsyncClient(timeout=2.0) as client:
                response = await client.post(
                    self._url,
                    json=report.model_dump(exclude_none=True),
                    headers=server_headers(self._api_key),
                )
                response.raise_for_status()
        except httpx.HTTPError as exc:
            # Metrics are best effort: a missing report never disturbs the conversation.
            log.warning("turn metrics not exported", extra={"error": type(exc).__name__})

    async def aclose(self) -> None:
        """Wait for reports still being sent."""
        if self._posts:
            await asyncio.wait(set(self._posts), timeout=3.0)
