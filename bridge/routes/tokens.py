"""`POST /api/token`: a short-lived, room-scoped LiveKit join token that also dispatches the
tutor agent into the room (explicit dispatch by name). Behind the server's API keys. The
server names the room and the identity; a caller may name them only where
`PARLE_TOKEN_TRUST_CLIENT_NAMES` says it is a trusted app backend. A `learner_id` names whose
record the session joins (the participant attribute `parle.learner`, read by the agent), in
the caller's tenant (`parle.tenant`, signed into the token: `parle.tenants`)."""

from __future__ import annotations

import uuid
from datetime import timedelta

from fastapi import APIRouter
from pydantic import BaseModel, Field

from bridge.deps import ServicesDep, TenantDep
from bridge.errors import ApiError
from bridge.inputs import check_learner_id, check_level, check_scenario, check_session_id
from bridge.openapi import ID_SCHEMA, error_responses
from parle.tenants import TENANT_ATTRIBUTE

router = APIRouter()

AGENT_NAME = "parle-tutor"  # the name the worker registers (agent/worker.py)


# The id rule in the schema; the route checks it (`bad_session_id`, `bad_learner_id`).
_ID = Field(default=None, json_schema_extra=ID_SCHEMA)


class TokenRequest(BaseModel):
    room: str | None = _ID
    identity: str | None = _ID
    name: str | None = Field(default=None, max_length=128)
    level: str | None = None
    scenario: str | None = Field(default=None, max_length=64)
    learner_id: str | None = _ID


@router.post("/api/token", responses=error_responses(400, 401, 403, 408, 413, 422, 503))
async def token(
    services: ServicesDep, tenant: TenantDep, body: TokenRequest | None = None
) -> dict[str, object]:
    """A join token for `room` (a new one when omitted), valid `PARLE_TOKEN_TTL_S` seconds."""
    from livekit import api

    settings = services.settings
    if not settings.livekit_configured:
        raise ApiError(503, "LiveKit is not configured on this server.", "livekit_not_configured")
    body = body or TokenRequest()
    if (body.room or body.identity) and not settings.token_trust_client_names:
        # A signed token for a room or identity the caller picked would let any key holder
        # join a learner's room or speak as that learner: the server names both, unless the
        # caller is a trusted app backend (PARLE_TOKEN_TRUST_CLIENT_NAMES).
        raise ApiError(
            403,
            "This server chooses the room and identity; send neither.",
            "client_names_not_allowed",
        )
    room = check_session_id(body.room) if body.room else f"parle-{uuid.uuid4().hex[:12]}"
    identity = (
        check_session_id(body.identity) if body.identity else f"learner-{uuid.uuid4().hex[:8]}"
    )
    attributes = {}
    level = check_level(body.level)
    if level is not None:
        attributes["parle.level"] = level
    scenario = check_scenario(body.scenario)
    if scenario is not None:
        attributes["parle.scenario"] = scenario  # the agent opens with its opener
    # Not under PARLE_TOKEN_TRUST_CLIENT_NAMES: a key holder may already name any learner at
    # every door (SSE, WebSocket, the learner routes), and the room and the identity, which
    # decide who can join and speak as whom, stay the server's.
    learner = check_learner_id(body.learner_id)
    if learner is not None:
        attributes["parle.learner"] = learner
    # Whose learner: the caller's tenant, signed into the token (a participant cannot change
    # its own attributes without a grant it is never given), read by the agent to record
    # the learner under that tenant alone.
    attributes[TENANT_ATTRIBUTE] = tenant
    grant = (
        api.AccessToken(settings.livekit_api_key, settings.livekit_api_secret)
        .with_identity(identity)
        .with_name(body.name or identity)
        .with_ttl(timedelta(seconds=settings.token_ttl_s))
        # Its attributes (tenant, learner) are the server's word: the learner may not rewrite
        # them once in the room.
        .with_grants(api.VideoGrants(room_join=True, room=room, can_update_own_metadata=False))
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
