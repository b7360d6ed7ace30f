"""How errors reach an HTTP client: `{"error": {"message", "code"}}` with a status, the same
shape for every route; typed PARLE errors map to a status here and nowhere else."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from bridge.limits import BusyError, RateLimitedError
from parle.errors import (
    AudioInputError,
    EngineError,
    EngineFailedError,
    EngineInputError,
    EngineTimeoutError,
    ParleError,
)

log = logging.getLogger(__name__)

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
    if isinstance(exc, EngineInputError):
        return ApiError(422, str(exc), exc.code)
    if isinstance(exc, EngineTimeoutError):
        return ApiError(504, str(exc), exc.code)
    if isinstance(exc, EngineFailedError):
        return ApiError(500, str(exc), exc.code)
    if isinstance(exc, EngineError):
        return ApiError(503, str(exc), exc.code, {"Retry-After": "5"})
    return ApiError(500, "Internal error.", "internal")


def error_response(error: ApiError) -> JSONResponse:
    return JSONResponse(
        error_body(error.message, error.code), status_code=error.status, headers=error.headers
    )


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def on_api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(ParleError)
    async def on_parle_error(_: Request, exc: ParleError) -> JSONResponse:
        return error_response(api_error_for(exc))

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
