"""What every route uses: the settings, the admission gate, the metrics, the sessions and,
once loaded, the turn pipeline; and the one place a turn is timed out and counted."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from starlette.requests import HTTPConnection

from bridge.errors import ApiError
from bridge.limits import Ticket, TurnGate
from bridge.metrics import ServerMetrics
from bridge.security import client_id, tenant_of
from parle import lessons
from parle.config import Settings
from parle.engines.base import ChatModel, GrammarChecker, Synthesizer, Transcriber
from parle.errors import EngineTimeoutError, ParleError
from parle.lessons import LessonAction
from parle.sessions import SessionStore
from parle.store import StoreRecorder
from parle.turn import CompleteEvent, TurnEvent, TurnOptions, TurnPipeline
from parle.tutor.levels import LevelEstimator

Item = TypeVar("Item")


@dataclass
class EngineSet:
    """Loaded engines handed to `create_app` (tests, benchmarks) instead of a `ParleRuntime`."""

    transcriber: Transcriber
    chat: ChatModel
    synthesizer: Synthesizer
    estimator: LevelEstimator | None = None
    llm_ready: Callable[[], Awaitable[bool]] | None = None
    grammar: GrammarChecker | None = None  # LanguageTool's client (parle.tutor.grammar)


@dataclass
class Services:
    """What every route uses; `pipeline` is None until the engines are loaded."""

    settings: Settings
    gate: TurnGate
    metrics: ServerMetrics
    sessions: SessionStore
    pipeline: TurnPipeline | None = None
    recorder: StoreRecorder | None = None  # the learner store (parle.store)
    llm_ready: Callable[[], Awaitable[bool]] | None = None
    load_error: str | None = None
    open_sockets: int = 0

    def require_pipeline(self) -> TurnPipeline:
        if self.pipeline is None:
            message = "The tutor is still loading; try again in a few seconds."
            if self.load_error:
                message = "The tutor could not start; the operator must check the server log."
            raise ApiError(503, message, "not_ready", {"Retry-After": "5"})
        return self.pipeline

    def client_of(self, connection: HTTPConnection) -> str:
        """Who the per-client limits count this request against (`bridge.security`)."""
        config = self.settings
        return client_id(connection, config.api_key_list, config.agent_key_list)

    def tenant_of(self, connection: HTTPConnection) -> str:
        """Whose learners and sessions this request may touch (`parle.tenants`). Every door
        has checked the key first: a request without a valid one never gets here."""
        tenant = tenant_of(connection, self.settings.api_key_tenants)
        if tenant is None:
            raise ApiError(401, "A valid API key is required.", "unauthorized")
        return tenant

    def voices(self) -> list[str]:
        return self.pipeline.synthesizer.voices if self.pipeline is not None else []

    def languages(self) -> frozenset[str]:
        return self.pipeline.transcriber.languages if self.pipeline is not None else frozenset()

    async def turn_events(
        self,
        ticket: Ticket,
        source: Any,
        *,
        session: str,
        options: TurnOptions,
        started_at: float,
        protocol: str,
        text: str | None = None,
        lesson: LessonAction | None = None,
    ) -> AsyncGenerator[TurnEvent, None]:
        """One admitted turn: timeout, metrics, and the ticket released on every exit.
        `lesson`: a lesson opened or ended by the client (`source`: None, or the learner's
        last words for `end`)."""
        pipeline = self.require_pipeline()
        if lesson is not None:
            events = lessons.run(
                pipeline, lesson, session=session, options=options, started_at=started_at,
                samples=source,
            )  # fmt: skip
        elif text is not None:
            events = pipeline.run_text(
                text, session=session, options=options, started_at=started_at
            )
        else:
            events = pipeline.run(source, session=session, options=options, started_at=started_at)
        async with contextlib.aclosing(self.served(ticket, events, protocol)) as served:
            async for event in served:
                if isinstance(event, CompleteEvent):
                    self.metrics.observe_turn(protocol, event.timings)
                yield event

    async def served(
        self, ticket: Ticket, items: AsyncGenerator[Item, None], protocol: str
    ) -> AsyncGenerator[Item, None]:
        """`items`, admitted (see `admitted`), closed however the consumer stops."""
        async with self.admitted(ticket, protocol), contextlib.aclosing(items):
            async for item in items:
                yield item

    @contextlib.asynccontextmanager
    async def admitted(
        self,
        ticket: Ticket,
        protocol: str,
        quiet_cancel: Callable[[], bool] | None = None,
    ) -> AsyncIterator[None]:
        """Work holding `ticket`: under the turn time limit, every failure counted by its
        code, and the ticket released however it ends (a client gone included). A
        cancellation is not counted when `quiet_cancel()` says so (a realtime speculation
        dropped: no turn was cancelled, the realtime door counts it)."""
        self.metrics.active_turns.set(self.gate.active)
        self.metrics.queue_depth.set(self.gate.queue_depth)
        try:
            async with asyncio.timeout(self.settings.turn_timeout_s):
                yield
        except TimeoutError:
            self.metrics.observe_failure(protocol, "timeout")
            raise EngineTimeoutError("The reply took too long and was stopped.") from None
        except ParleError as exc:
            self.metrics.observe_failure(protocol, exc.code)
            raise
        except (asyncio.CancelledError, GeneratorExit):
            if quiet_cancel is None or not quiet_cancel():
                self.metrics.observe_failure(protocol, "cancelled")
            raise
        except Exception:
            # Unexpected: counted too (the door answers it as `internal`).
            self.metrics.observe_failure(protocol, "internal")
            raise
        finally:
            ticket.release()
            self.metrics.active_turns.set(self.gate.active)
            self.metrics.queue_depth.set(self.gate.queue_depth)
