"""`POST /api/token`: a short-lived, room-scoped LiveKit join token that also dispatches the
tutor agent into the room (explicit dispatch by name). Behind the server's API keys."""

from __future__ import annotations

import uuid
from datetime import timedelta

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from bridge.app import (
    LEVELS,
    LIVEKIT_CLIENT_FILE,
    LIVEKIT_CLIENT_PATH,
    ApiError,
    check_session_id,
    services_of,
)
from parle.config import Settings

router = APIRouter()

AGENT_NAME = "parle-tutor"  # the name the worker registers (agent/worker.py)


class TokenRequest(BaseModel):
    room: str | None = Field(default=None, max_length=128)
    identity: str | None = Field(default=None, max_length=128)
    name: str | None = Field(default=None, max_length=128)
    level: str | None = None


def livekit_configured(settings: Settings) -> bool:
    return bool(settings.livekit_url and settings.livekit_api_key and settings.livekit_api_secret)


@router.get("/api/client-config")
async def client_config(request: Request) -> dict[str, object]:
    """What the web page may offer: a WebRTC call when LiveKit is configured and the browser
    bundle is installed (otherwise the WebSocket mode only)."""
    settings = services_of(request).settings
    installed = LIVEKIT_CLIENT_FILE.is_file()
    return {
        "livekit": livekit_configured(settings) and installed,
        "livekit_client": LIVEKIT_CLIENT_PATH if installed else None,
    }


@router.post("/api/token")
async def token(request: Request, body: TokenRequest | None = None) -> dict[str, object]:
    """A join token for `room` (a new one when omitted), valid `PARLE_TOKEN_TTL_S` seconds."""
    from livekit import api

    settings = services_of(request).settings
    if not livekit_configured(settings):
        raise ApiError(503, "LiveKit is not configured on this server.", "livekit_not_configured")
    body = body or TokenRequest()
    room = check_session_id(body.room) if body.room else f"parle-{uuid.uuid4().hex[:12]}"
    identity = (
        check_session_id(body.identity) if body.identity else f"learner-{uuid.uuid4().hex[:8]}"
    )
    attributes = {}
    if body.level is not None:
        if body.level.upper() not in LEVELS:
            raise ApiError(422, f"level must be one of {', '.join(LEVELS)}.", "bad_level")
        attributes["parle.level"] = body.level.upper()
    grant = (
        api.AccessToken(settings.livekit_api_key, settings.livekit_api_secret)
        .with_identity(identity)
        .with_name(body.name or identity)
        .with_ttl(timedelta(seconds=settings.token_ttl_s))
        .with_grants(api.VideoGrants(room_join=True, room=room))
        .with_attributes(attributes)
        .with_room_config(
            api.RoomConfiguration(agents=[api.RoomAgentDispatch(agent_name=AGENT_NAME)])
        )
    )
    return {
        "token": grant.to_jwt(),
        "url": settings.livekit_url,
        "room": room,
        "identity": identity,
        "expires_in": settings.token_ttl_s,
    }
