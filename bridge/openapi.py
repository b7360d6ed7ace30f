"""What `/openapi.json` says about the routes that read their request by hand (multipart
uploads), about the error body every route shares, and about ids (the rule the routes check
themselves); FastAPI cannot infer any of it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from parle.tenants import ID_PATTERN
from parle.tutor.levels import LEVELS

# The id rule as a schema states it: a field holding a session's, a learner's or a room's id.
# The routes check the rule themselves (`bridge.inputs`), to answer with its own error code.
ID_SCHEMA: dict[str, Any] = {"pattern": ID_PATTERN, "maxLength": 128}


def id_field(description: str) -> dict[str, Any]:
    """A multipart field holding an id: the id rule, as every door checks it."""
    return {"description": description, **ID_SCHEMA}


def level_field() -> dict[str, Any]:
    """A CEFR level field, in either case (the route upper-cases it)."""
    cases = [*LEVELS, *(level.lower() for level in LEVELS)]
    return {"description": "A1..C2", "enum": cases}


class ErrorDetail(BaseModel):
    message: str
    code: str


class ErrorBody(BaseModel):
    """Every HTTP error: `{"error": {"message", "code"}}` (docs/protocols.md section 6)."""

    error: ErrorDetail


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: each status with the shared error body."""
    return {
        status: {"model": ErrorBody, "description": _DESCRIPTIONS.get(status, "An error.")}
        for status in statuses
    }


_DESCRIPTIONS = {
    400: "No audio, or an empty or malformed body (`no_audio`, `empty`, `http_error`).",
    401: "No valid API key (`unauthorized`).",
    403: "Not allowed (`client_names_not_allowed`, `agent_only`, `cross_site`).",
    404: "Not found (`learner_not_found`, `not_installed`).",
    408: "The request arrived too slowly (`request_timeout`).",
    413: "Too large (`too_large`, `too_long`, `input_too_long`).",
    415: "Not multipart/form-data, or not audio (`bad_type`, `undecodable`).",
    422: "A bad field or option (`bad_level`, `bad_voice`, `bad_language`, `invalid_request`...).",
    429: "Busy or over the per-client limits (`busy`, `rate_limited`); see `Retry-After`.",
    500: "An engine failed (`stt_failed`, `tts_failed`...) or an internal error (`internal`).",
    503: "Not ready, or an engine or LiveKit is unavailable; see `Retry-After`.",
    504: "An engine ran past its time limit (`timeout`).",
}


def multipart_body(
    audio_field: str, alias: str, fields: dict[str, str | dict[str, Any]]
) -> dict[str, Any]:
    """`openapi_extra=` for a route reading a multipart upload itself: its request body. A
    field is its description, or its whole schema (the rules the route checks)."""
    properties: dict[str, Any] = {
        audio_field: {
            "type": "string",
            "format": "binary",
            "description": f"The recording (any format PyAV decodes); or in field `{alias}`.",
        }
    }
    properties |= {
        name: {"type": "string", **({"description": spec} if isinstance(spec, str) else spec)}
        for name, spec in fields.items()
    }
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": [audio_field],
                        "properties": properties,
                    }
                }
            },
        }
    }
