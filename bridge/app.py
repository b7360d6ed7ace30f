"""The PARLE server: `create_app(settings)` builds the FastAPI application (lifespan, middleware,
error handlers, the routes of `bridge.routes`); nothing here is imported by a route."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from bridge.errors import install_error_handlers
from bridge.idle import ActivityMiddleware, ActivityTracker, IdleStopper, TensorDockClient
from bridge.limits import TurnGate
from bridge.metrics import ServerMetrics
from bridge.middleware import (
    MAX_OTHER_BODY_BYTES,
    ApiKeyMiddleware,
    BodyLimitMiddleware,
    KeylessGuardMiddleware,
)
from bridge.routes import learners, lessons, ops, page, speech, sse, tokens, ws
from bridge.routes import realtime as realtime_route
from bridge.security import host_names
from bridge.services import EngineSet, Services
from parle.config import Settings
from parle.engines.base import ChatModel, GrammarChecker, Synthesizer, Transcriber
from parle.runtime import ParleRuntime, build_pipeline
from parle.sessions import SessionStore
from parle.store import build_recorder
from parle.tutor.levels import LevelEstimator

__all__ = ["EngineSet", "create_app"]

log = logging.getLogger(__name__)


def create_app(settings: Settings, *, engines: EngineSet | None = None) -> FastAPI:
    """The PARLE server. With `engines`, those are served as they are (already loaded);
    otherwise the profile's engines load in the background and `/ready` says when."""
    services = Services(
        settings=settings,
        gate=TurnGate(
            max_active=settings.max_active_turns,
            max_queued=settings.max_queued_turns,
            client_max=settings.client_max_turns,
            per_minute=settings.client_turns_per_minute,
        ),
        metrics=ServerMetrics(),
        sessions=SessionStore(max_turns=settings.history_turns, max_sessions=settings.max_sessions),
    )
    services.recorder = build_recorder(
        settings, on_error=lambda op: services.metrics.store_errors.labels(op).inc()
    )

    def serve_engines(
        transcriber: Transcriber,
        chat: ChatModel,
        tts: Synthesizer,
        estimator: LevelEstimator | None,
        grammar: GrammarChecker | None,
    ) -> None:
        services.pipeline = build_pipeline(
            settings,
            transcriber,
            chat,
            tts,
            sessions=services.sessions,
            estimator=estimator,
            grammar=grammar,
        )
        services.pipeline.recorder = services.recorder
        services.pipeline.grammar_health.on_failure = services.metrics.grammar_failures.inc

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime: ParleRuntime | None = None
        loader: asyncio.Task[None] | None = None
        if services.recorder is not None:
            await services.recorder.start()  # migrations; an unreachable database only warns
        if engines is not None:
            services.llm_ready = engines.llm_ready
            serve_engines(
                engines.transcriber,
                engines.chat,
                engines.synthesizer,
                engines.estimator,
                engines.grammar,
            )
        else:
            runtime = ParleRuntime(settings)

            async def load() -> None:
                assert runtime is not None
                try:
                    await runtime.start()
                except Exception as exc:
                    services.load_error = type(exc).__name__
                    log.error("engines failed to load", extra={"error": str(exc)})
                    return
                assert runtime.transcriber and runtime.chat and runtime.synthesizer
                services.llm_ready = runtime.llm_server.is_answering if runtime.llm_server else None
                serve_engines(
                    runtime.transcriber,
                    runtime.chat,
                    runtime.synthesizer,
                    runtime.estimator,
                    runtime.grammar,
                )
                log.info("engines loaded", extra={"profile": settings.profile})

            loader = asyncio.create_task(load())
        sweeper = asyncio.create_task(_sweep_sessions(services))
        idle_stop = asyncio.create_task(stopper.run()) if stopper else None
        try:
            yield
        finally:
            sweeper.cancel()
            if idle_stop is not None:
                idle_stop.cancel()
            if loader is not None:
                loader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await loader
            if services.recorder is not None:
                await services.recorder.stop()  # writes every turn already accepted
            if runtime is not None:
                await runtime.stop()

    activity = ActivityTracker()
    stopper = idle_stopper(settings, activity)

    app = FastAPI(
        title="PARLE",
        version="0.1.0",
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.services = services
    # Multipart framing adds a little to the audio itself. Other bodies (JSON, small forms)
    # get a far smaller cap, enough for the longest speech input even if every character
    # came as a JSON escaped surrogate pair (12 bytes).
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_upload_bytes + 64 * 1024,
        max_other_bytes=max(MAX_OTHER_BODY_BYTES, 12 * settings.speech_max_chars + 1024),
        timeout_s=settings.body_timeout_s,
    )
    # Inside the key check: a stranger's rejected requests do not keep a rented box awake.
    app.add_middleware(ActivityMiddleware, tracker=activity)
    app.add_middleware(ApiKeyMiddleware, keys=settings.api_key_list)
    if not settings.api_key_list:
        app.add_middleware(
            KeylessGuardMiddleware,
            host_names=host_names(settings.host, settings.allowed_host_list),
            allowed_origins=settings.cors_origin_list,
        )
    if settings.cors_origin_list:
        # Outermost, so that refusals (401, 413) carry the CORS headers too: a browser app
        # can then read why it was refused.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origin_list,
            allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type"],
            expose_headers=["X-Session-Id", "X-Sample-Rate", "Retry-After"],
        )
    install_error_handlers(app)
    app.include_router(realtime_route.router)
    for routes in (ops, tokens, sse, ws, speech, learners, lessons, page):
        app.include_router(routes.router)
    return app


def idle_stopper(settings: Settings, activity: ActivityTracker) -> IdleStopper | None:
    """The TensorDock idle stop, when this box is a TensorDock instance and it is enabled."""
    if not (
        settings.idle_stop_minutes
        and settings.tensordock_api_token
        and settings.tensordock_instance_id
    ):
        return None
    client = TensorDockClient(
        api_url=settings.tensordock_api_url,
        token=settings.tensordock_api_token,
        instance_id=settings.tensordock_instance_id,
    )
    idle_s = settings.idle_stop_minutes * 60
    return IdleStopper(activity, client, idle_s=idle_s, check_s=min(30.0, idle_s / 4))


async def _sweep_sessions(services: Services) -> None:
    while True:
        await asyncio.sleep(min(60.0, services.settings.session_idle_s))
        services.sessions.expire_idle(services.settings.session_idle_s)
        services.metrics.active_sessions.labels("memory").set(len(services.sessions))
