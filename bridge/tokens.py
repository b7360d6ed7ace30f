"""`POST /api/token`: a short-lived, room-scoped LiveKit join token that also dispatches the
tutor agent into the room (explicit dispatch by name). Behind the server's API keys."""

from __future__ import annotations

import uuid
from datetime import timedelta

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from bridge.app import LEVELS, ApiError, check_session_id, services_of

router = APIRouter()

AGENT_NAME = "parle-tutor"  # the name the worker registers (agent/worker.py)


class TokenRequest(BaseModel):
    room: str | None = Field(default=None, max_length=128)
    identity: str | None = Field(default=None, max_length=128)
    name: str | None = Field(default=None, max_length=128)
    level: str | None = None


@router.post("/api/token")
async def token(request: Request, body: TokenRequest | None = None) -> dict[str, object]:
    """A join token for `room` (a new one when omitted), valid `PARLE_TOKEN_TTL_S` seconds."""
    from livekit import api

    settings = services_of(request).settings
    if not (settings.livekit_url and settings.livekit_api_key and settings.livekit_api_secret):
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
