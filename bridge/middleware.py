"""ASGI middleware (pure ASGI, not BaseHTTPMiddleware, which would hide a client's disconnect
from streaming responses): the request body's size and time bounds, the API key check, and
without keys, the guard against other sites and names."""

from __future__ import annotations

import asyncio
import logging
import time

from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect, HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bridge.errors import error_body
from bridge.routes.page import LIVEKIT_CLIENT_PATH
from bridge.security import cross_site, host_allowed, key_is_valid, presented_key

log = logging.getLogger(__name__)

# Bodies that are not multipart uploads: JSON and small forms (reset, token, speech, agent
# metrics). Far below the audio cap: nothing legitimate there comes near it.
MAX_OTHER_BODY_BYTES = 64 * 1024


class _Refused(Exception):
    """The body broke a bound; `answer` is what the client gets instead of the app's answer."""

    def __init__(self, status: int, message: str, code: str) -> None:
        super().__init__(message)
        self.answer = JSONResponse(
            error_body(message, code), status_code=status, headers={"Connection": "close"}
        )


class BodyLimitMiddleware:
    """Bounds each HTTP request body while it streams in, not after: over `max_bytes`
    (multipart uploads) or `max_other_bytes` (anything else) it is 413 `too_large`; a client
    that keeps the server waiting for it more than `timeout_s` in all gets 408
    `request_timeout`. A client that goes away mid-upload is one log line, not an error.

    The refusal is raised inside the app's `receive()`. Where the app lets it through, it is
    answered here; where the framework catches it (FastAPI turns any failure while it parses
    a JSON body into a 400), the response the app then starts is replaced by the refusal."""

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        *,
        max_other_bytes: int = MAX_OTHER_BODY_BYTES,
        timeout_s: float = 60.0,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_other_bytes = max_other_bytes
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        multipart = headers.get(b"content-type", b"").startswith(b"multipart/form-data")
        limit = self.max_bytes if multipart else self.max_other_bytes
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _too_large(limit).answer(scope, _no_receive, send)
            return
        seen = 0
        waited = 0.0  # time spent waiting for the client, not for the app
        body_done = False
        refused: _Refused | None = None
        app_started = False  # the app's own response went out (or began to)

        async def guarded_receive() -> Message:
            nonlocal seen, waited, body_done, refused
            if refused is not None:
                raise refused
            if body_done:
                # Past the body: a streaming response waiting for the client to leave.
                return await receive()
            start = time.monotonic()
            try:
                message = await asyncio.wait_for(receive(), self.timeout_s - waited)
            except TimeoutError:
                refused = _Refused(408, "The request body arrived too slowly.", "request_timeout")
                raise refused from None
            waited += time.monotonic() - start
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                body_done = not message.get("more_body", False)
                if seen > limit:
                    refused = _too_large(limit)
                    raise refused
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal app_started
            if refused is not None and not app_started:
                # The app answers a body it could not read (FastAPI: a 400): ours instead.
                if message["type"] == "http.response.start":
                    app_started = True
                    await refused.answer(scope, _no_receive, send)
                return
            app_started = app_started or message["type"] == "http.response.start"
            if refused is None or message["type"] != "http.response.body":
                await send(message)

        try:
            await self.app(scope, guarded_receive, guarded_send)
        except _Refused as exc:
            if not app_started:
                await exc.answer(scope, _no_receive, send)
        except ClientDisconnect:
            # The client gave up mid-upload: nothing to answer, nothing broken.
            log.info(
                "client left during its request",
                extra={"path": scope.get("path"), "received_bytes": seen},
            )


def _too_large(limit: int) -> _Refused:
    shown = f"{limit // (1024 * 1024)} MB" if limit >= 1024 * 1024 else f"{limit // 1024} kB"
    return _Refused(413, f"The upload is too large (the limit is {shown}).", "too_large")


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


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


# An orchestrator's probes name the box however it reaches it; they tell a page nothing.
_PROBES = {"/health", "/ready"}


class KeylessGuardMiddleware:
    """Without API keys (a laptop), the server answers only what this machine's own user
    sends: a `Host` it is known by (`host_names`: a foreign site pointing its name at
    127.0.0.1, DNS rebinding, is refused), and no route but the open ones for a foreign page
    (`cross_site`: any site the learner visits could otherwise read or erase their records,
    or speak as them). The WebSockets check `Origin` themselves (`bridge.deps`)."""

    def __init__(
        self, app: ASGIApp, host_names: frozenset[str] | None, allowed_origins: list[str]
    ) -> None:
        self.app = app
        self.host_names = host_names
        self.allowed_origins = allowed_origins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        connection = HTTPConnection(scope)
        refusal: tuple[int, str, str] | None = None
        if (
            self.host_names is not None
            and scope["path"] not in _PROBES
            and not host_allowed(connection, self.host_names)
        ):
            refusal = (400, "This server is not known by that name (Host).", "bad_host")
        elif (
            scope["type"] == "http"
            and scope["path"] not in _OPEN_PATHS
            and cross_site(connection, self.allowed_origins)
        ):
            refusal = (403, "Requests from another site are not accepted.", "cross_site")
        if refusal is None:
            await self.app(scope, receive, send)
            return
        status, message, code = refusal
        log.info("request refused", extra={"code": code, "path": scope.get("path")})
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})  # uvicorn answers 403
            return
        await JSONResponse(error_body(message, code), status_code=status)(scope, receive, send)
