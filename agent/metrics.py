"""Per-turn latencies of a voice session, logged and exported to the PARLE server's Prometheus
metrics (`parle_agent_stage_seconds`): job processes come and go, the server stays."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
from livekit.agents import AgentSession, ConversationItemAddedEvent, llm

from agent.plugins._http import HttpClientOwner, server_headers, settings
from bridge.schemas import AgentTurnReport

log = logging.getLogger(__name__)


class TurnMetricsReporter(HttpClientOwner):
    """One `AgentTurnReport` per answered learner turn, from the framework's per-message
    metrics: the learner's message carries end-of-turn delay and transcription delay, the
    tutor's reply LLM time to first token, TTS time to first byte and end-to-end latency
    (the learner's last word to the tutor's first audio)."""

    def __init__(self, *, server_url: str | None = None, api_key: str | None = None) -> None:
        self._url = (server_url or settings().server_url).rstrip("/") + "/api/agent/metrics"
        self._api_key = api_key
        self._learner: llm.MetricsReport | None = None
        self._posts: set[asyncio.Task[None]] = set()
        self.reports: list[AgentTurnReport] = []

    def attach(self, session: AgentSession[Any]) -> None:
        """Listen to `session`'s conversation until it closes."""

        @session.on("conversation_item_added")
        def _on_item(event: ConversationItemAddedEvent) -> None:
            report = self.collect(event.item)
            if report is not None:
                self._post(report)

    def collect(self, item: object) -> AgentTurnReport | None:
        """Add one conversation item; returns a report when it is a reply to the learner."""
        if not isinstance(item, llm.ChatMessage):
            return None
        if item.role == "user":
            self._learner = item.metrics
            return None
        # The greeting and replies without audio (cut before their first frame) are no turn.
        if item.role != "assistant" or self._learner is None or "e2e_latency" not in item.metrics:
            return None
        learner, self._learner = self._learner, None
        report = AgentTurnReport(
            end_of_turn_s=learner.get("end_of_turn_delay"),
            stt_s=learner.get("transcription_delay"),
            llm_ttft_s=item.metrics.get("llm_node_ttft"),
            tts_ttfb_s=item.metrics.get("tts_node_ttfb"),
            end_to_end_s=item.metrics["e2e_latency"],
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
            response = await self.client().post(
                self._url,
                json=report.model_dump(exclude_none=True),
                headers=server_headers(self._api_key),
                timeout=2.0,
            )
            response.raise_for_status()
        except httpx.HTTPError as exc:
            # Metrics are best effort: a missing report never disturbs the conversation.
            log.warning("turn metrics not exported", extra={"error": type(exc).__name__})

    async def aclose(self) -> None:
        """Wait for reports still being sent, then close the connection."""
        if self._posts:
            await asyncio.wait(set(self._posts), timeout=3.0)
        await self.close_client()
