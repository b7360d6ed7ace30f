"""`GET /api/scenarios`: the role-play lessons a client may choose (`scenario` in an SSE
request, a WebSocket `config`, a LiveKit token), as the package ships them
(`parle/tutor/scenarios/`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from bridge.openapi import error_responses
from parle.tutor.scenarios import scenarios

router = APIRouter()


@router.get("/api/scenarios", responses=error_responses(401))
async def list_scenarios() -> dict[str, list[dict[str, Any]]]:
    """Every scenario: `id`, `title`, `levels` ([lowest, highest]), `setting`, `role`,
    `goals`, `vocabulary`, `opener`, `closer`; easiest first."""
    return {"scenarios": [scenario.as_dict() for scenario in scenarios().values()]}
