"""The FastAPI application: lifespan (load engines once), errors, limits, and the routes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bridge.idle import ActivityMiddleware, ActivityTracker, IdleStopper, TensorDockClient
from bridge.limits import BusyError, RateLimitedError, Ticket, TurnGate
from bridge.metrics import ServerMetrics
from bridge.security import key_is_valid, presented_key
from parle.config import Settings
from parle.engines.base import ChatModel, Synthesizer, Transcriber
from parle.errors import AudioInputError, EngineError, ParleError
from parle.runtime import ParleRuntime, build_pipeline
from parle.sessions import SessionStore
from parle.turn import CompleteEvent, TurnEvent, TurnOptions, TurnPipeline
from parle.tutor.levels import LevelEstimator

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
# Fetched from npm by `make web-vendor` (and the Docker build), never committed.
LIVEKIT_CLIENT_FILE = STATIC / "vendor" / "livekit-client.umd.js"
LIVEKIT_CLIENT_PATH = "/vendor/livekit-client.umd.js"
LEVELS = ("A1", "A2", "B1", "B2", "C1", "C2")
_SESSION_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")

# HTTP status for each reason audio is refused.
AUDIO_STATUS = {
    "empty": 400,
    "undecodable": 415,
    "too_short": 422,
    "too_long": 413,
    "too_large": 413,
}


class ApiError(Exception):
    """An error answered as `{"error": {"message", "code"}}` with an HTTP status."""

    def __init__(
        self, status: int, message: str, code: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = headers


def error_body(message: str, code: str) -> dict[str, Any]:
    return {"error": {"message": message, "code": code}}


def api_error_for(exc: ParleError) -> ApiError:
    """The HTTP answer for a typed PARLE error (messages are already safe to show)."""
    if isinstance(exc, AudioInputError):
        return ApiError(AUDIO_STATUS.get(exc.reason, 400), str(exc), exc.reason)
    if isinstance(exc, BusyError):
        return ApiError(429, str(exc), exc.code, {"Retry-After": "2"})
    if isinstance(exc, RateLimitedError):
        retry = str(max(1, round(exc.retry_after_s)))
        return ApiError(429, str(exc), exc.code, {"Retry-After": retry})
    if isinstance(exc, EngineError):
        return ApiError(503, str(exc), exc.code)
    return ApiError(500, "Internal error.", "internal")


@dataclass
class EngineSet:
    """Loaded engines handed to `create_app` (tests, benchmarks) instead of a `ParleRuntime`."""

    transcriber: Transcriber
    chat: ChatModel
    synthesizer: Synthesizer
    estimator: LevelEstimator | None = None
    llm_ready: Callable[[], Awaitable[bool]] | None = None


@dataclass
class Services:
    """What every route uses; `pipeline` is None until the engines are loaded."""

    settings: Settings
    gate: TurnGate
    metrics: ServerMetrics
    sessions: SessionStore
    pipeline: TurnPipeline | None = None
    synthesizer: Synthesizer | None = None
    transcriber: Transcriber | None = None
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

    def voices(self) -> list[str]:
        return list(getattr(self.synthesizer, "voices", []) or [])

    async def turn_events(
        self,
        ticket: Ticket,
        source: bytes | Any,
        *,
        session: str,
        options: TurnOptions,
        started_at: float,
        protocol: str,
        text: str | None = None,
    ) -> AsyncGenerator[TurnEvent, None]:
        """One admitted turn: timeout, metrics, and the ticket released on every exit."""
        pipeline = self.require_pipeline()
        self.metrics.active_turns.set(self.gate.active)
        self.metrics.queue_depth.set(self.gate.queue_depth)
        try:
            async with asyncio.timeout(self.settings.turn_timeout_s):
                events = (
                    pipeline.run_text(text, session=session, options=options, started_at=started_at)
                    if text is not None
                    else pipeline.run(
                        source, session=session, options=options, started_at=started_at
                    )
                )
                async with contextlib.aclosing(events):
                    async for event in events:
                        if isinstance(event, CompleteEvent):
                            self.metrics.observe_turn(protocol, event.timings)
                        yield event
        except TimeoutError:
            self.metrics.observe_failure(protocol, "timeout")
            raise EngineError("The reply took too long and was stopped.") from None
        except ParleError as exc:
            self.metrics.observe_failure(protocol, exc.code)
            raise
        except (asyncio.CancelledError, GeneratorExit):
            self.metrics.observe_failure(protocol, "cancelled")
            raise
        finally:
            ticket.release()
            self.metrics.active_turns.set(self.gate.active)
            self.metrics.queue_depth.set(self.gate.queue_depth)


def services_of(request: Any) -> Services:
    services: Services = request.app.state.services
    return services


async def read_audio_form(request: Request, field: str, alias: str) -> tuple[bytes, FormData]:
    """The audio upload of a multipart request (in `field`, or `alias`) and the whole form."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise ApiError(415, f"Send the audio as multipart/form-data (field '{field}').", "bad_type")
    form = await request.form(max_files=2, max_fields=16, max_part_size=64 * 1024)
    upload = form.get(field) or form.get(alias)
    if not isinstance(upload, UploadFile):
        raise ApiError(400, f"The multipart field '{field}' is required.", "no_audio")
    return await upload.read(), form


def form_text(form: FormData, name: str) -> str | None:
    """A text field of a form, stripped; None when absent, empty or a file."""
    value = form.get(name)
    return (value.strip() or None) if isinstance(value, str) else None


def check_session_id(value: str | None) -> str:
    if not value:
        return uuid.uuid4().hex
    if not _SESSION_ID.fullmatch(value):
        raise ApiError(
            422,
            "session_id may use letters, digits and . _ : - (at most 128 characters).",
            "bad_session_id",
        )
    return value


def check_options(
    services: Services,
    *,
    voice: str | None,
    level: str | None,
    language: str | None,
    speed: float | None = None,
) -> TurnOptions:
    """Validate a client's per-turn choices; bad ones are a 422 naming the field."""
    if level is not None and level.upper() not in LEVELS:
        raise ApiError(422, f"level must be one of {', '.join(LEVELS)}.", "bad_level")
    voices = services.voices()
    if voice and voices and voice not in voices:
        raise ApiError(422, f"Unknown voice; available: {', '.join(voices)}.", "bad_voice")
    if speed is not None and not 0.5 <= speed <= 2.0:
        raise ApiError(422, "speed must be between 0.5 and 2.0.", "bad_speed")
    if language is not None and not re.fullmatch(r"[a-z]{2,3}([-_][A-Za-z]{2})?", language):
        raise ApiError(422, "language must be a code such as pt or pt-BR.", "bad_language")
    stt_language = language.split("-")[0].split("_")[0] if language else None
    return TurnOptions(
        voice=voice or None,
        speed=speed,
        level=level.upper() if level else None,
        language=stt_language,
    )


class BodyLimitMiddleware:
    """Refuses request bodies over `max_bytes` while they stream in (413), not after."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched_send)
        except _TooLarge:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        limit = f"{self.max_bytes // (1024 * 1024)} MB"
        body = JSONResponse(
            error_body(f"The upload is too large (the limit is {limit}).", "too_large"),
            status_code=413,
            headers={"Connection": "close"},
        )
        await body({"type": "http"}, _no_receive, send)


class _TooLarge(Exception):
    pass


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


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

    def serve_engines(
        transcriber: Transcriber,
        chat: ChatModel,
        tts: Synthesizer,
        estimator: LevelEstimator | None,
    ) -> None:
        services.transcriber, services.synthesizer = transcriber, tts
        services.pipeline = build_pipeline(
            settings, transcriber, chat, tts, sessions=services.sessions, estimator=estimator
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime: ParleRuntime | None = None
        loader: asyncio.Task[None] | None = None
        if engines is not None:
            services.llm_ready = engines.llm_ready
            serve_engines(engines.transcriber, engines.chat, engines.synthesizer, engines.estimator)
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
                    runtime.transcriber, runtime.chat, runtime.synthesizer, runtime.estimator
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
    if settings.cors_origin_list:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origin_list,
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type"],
        )
    # Multipart framing adds a little to the audio itself.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_upload_bytes + 64 * 1024)
    # Inside the key check: a stranger's rejected requests do not keep a rented box awake.
    app.add_middleware(ActivityMiddleware, tracker=activity)
    app.add_middleware(ApiKeyMiddleware, keys=settings.api_key_list)
    _install_error_handlers(app)

    from bridge import legacy, ops, speech, tokens

    app.include_router(ops.router)
    app.include_router(tokens.router)
    app.include_router(legacy.router)
    app.include_router(speech.router)

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get(LIVEKIT_CLIENT_PATH, include_in_schema=False)
    async def livekit_client() -> FileResponse:
        """The `livekit-client` browser bundle for the page's WebRTC mode (`make web-vendor`)."""
        if not LIVEKIT_CLIENT_FILE.is_file():
            raise ApiError(404, "The LiveKit web client is not installed here.", "not_installed")
        return FileResponse(LIVEKIT_CLIENT_FILE, media_type="text/javascript")

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


_OPEN_PATHS = {"/", "/health", "/ready", "/metrics", "/docs", "/openapi.json", LIVEKIT_CLIENT_PATH}


class ApiKeyMiddleware:
    """Pure ASGI (not BaseHTTPMiddleware, which would hide a client's disconnect from
    streaming responses): HTTP requests outside `_OPEN_PATHS` need a valid key. The
    WebSocket route checks its key itself, to answer with a protocol error message."""

    def __init__(self, app: ASGIApp, keys: list[str]) -> None:
        self.app = app
        self.keys = keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or not self.keys
            or scope["method"] == "OPTIONS"
            or scope["path"] in _OPEN_PATHS
        ):
            await self.app(scope, receive, send)
            return
        if key_is_valid(self.keys, presented_key(HTTPConnection(scope))):
            await self.app(scope, receive, send)
            return
        refusal = JSONResponse(
            error_body("A valid API key is required.", "unauthorized"),
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )
        await refusal(scope, receive, send)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def on_api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(
            error_body(exc.message, exc.code), status_code=exc.status, headers=exc.headers
        )

    @app.exception_handler(ParleError)
    async def on_parle_error(_: Request, exc: ParleError) -> JSONResponse:
        error = api_error_for(exc)
        return JSONResponse(
            error_body(error.message, error.code), status_code=error.status, headers=error.headers
        )

    @app.exception_handler(RequestValidationError)
    async def on_validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for err in exc.errors()[:5]:
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
            problems.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
        return JSONResponse(error_body("; ".join(problems), "invalid_request"), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def on_http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            error_body(str(exc.detail), "http_error"),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error(
            "unexpected error",
            extra={"path": request.url.path, "error_type": type(exc).__name__},
            exc_info=exc,
        )
        return JSONResponse(error_body("Internal error.", "internal"), status_code=500)
