"""Operations: liveness, readiness, Prometheus metrics, and forgetting a session."""

from __future__ import annotations

import json
from typing import get_args

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from bridge.deps import ServicesDep
from bridge.errors import ApiError
from bridge.inputs import check_session_id
from bridge.openapi import ID_SCHEMA, error_responses
from bridge.schemas import AgentTurnReport
from bridge.services import Services
from parle.store import StoreState

router = APIRouter()


@router.get("/health")
async def health() -> dict[str, str]:
    """The process is alive (engines may still be loading)."""
    return {"status": "ok"}


@router.get("/ready")
async def ready(services: ServicesDep) -> JSONResponse:
    """200 once the engines are loaded and the LLM server answers; 503 until then. `store`
    (the learner store: ok, degraded, unavailable) never makes it 503: turns are answered
    without a database, their records kept until it is back."""
    engines = services.pipeline is not None
    llm = engines and (services.llm_ready is None or await services.llm_ready())
    body: dict[str, object] = {"ready": bool(engines and llm), "engines": engines, "llm": bool(llm)}
    if services.recorder is not None:
        body["store"] = services.recorder.state
    if services.pipeline is not None:
        body["grammar"] = grammar_state(services)
    if services.load_error:
        body["error"] = "engines failed to load; see the server log"
    return JSONResponse(body, status_code=200 if body["ready"] else 503)


def grammar_state(services: Services) -> str:
    """What checks the learner's grammar: `languagetool` (answering), `down` (LanguageTool is
    failing: PARLE's rules go on), `rules` (PARLE's rules only) or `off`. Never a 503."""
    pipeline = services.pipeline
    assert pipeline is not None
    if pipeline.grammar is not None:
        return "down" if pipeline.grammar_health.down else "languagetool"
    return "rules" if pipeline.rules else "off"


@router.get("/metrics")
async def metrics(services: ServicesDep) -> Response:
    services.metrics.queue_depth.set(services.gate.queue_depth)
    services.metrics.active_turns.set(services.gate.active)
    services.metrics.active_sessions.labels("memory").set(len(services.sessions))
    if services.recorder is not None:
        state = services.recorder.state
        for name in get_args(StoreState):
            services.metrics.store_state.labels(name).set(1 if name == state else 0)
        services.metrics.store_journal_items.set(services.recorder.journal_items)
    if services.pipeline is not None:
        services.metrics.grammar_down.set(1 if services.pipeline.grammar_health.down else 0)
    return Response(services.metrics.render(), media_type="text/plain; version=0.0.4")


@router.post(
    "/api/agent/metrics", status_code=204, responses=error_responses(400, 401, 408, 413, 422)
)
async def agent_metrics(services: ServicesDep, report: AgentTurnReport) -> Response:
    """A LiveKit worker's per-turn latencies, exported as `parle_agent_stage_seconds`."""
    services.metrics.observe_agent_turn(report)
    return Response(status_code=204)


class ResetRequest(BaseModel):
    # The id rule in the schema; checked by the route (`bad_session_id`).
    session_id: str = Field(json_schema_extra=ID_SCHEMA)


@router.post(
    "/api/reset",
    responses=error_responses(400, 401, 408, 413, 422),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                media: {"schema": ResetRequest.model_json_schema()}
                for media in (
                    "application/json",
                    "multipart/form-data",
                    "application/x-www-form-urlencoded",
                )
            },
        }
    },
)
async def reset(request: Request, services: ServicesDep) -> dict[str, object]:
    """Forget a session's conversation (JSON `{"session_id"}` or a form field)."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        form = await request.form(max_files=0, max_fields=8, max_part_size=4096)
        value = form.get("session_id")
        session_id = value if isinstance(value, str) else None
    else:
        try:
            session_id = ResetRequest.model_validate(json.loads(await request.body())).session_id
        except (ValueError, TypeError, RecursionError):  # deep nesting: refused like garbage
            session_id = None
    if not session_id:
        raise ApiError(422, "session_id is required (JSON or form field).", "no_session_id")
    session_id = check_session_id(session_id)
    forgotten = services.sessions.reset(session_id, tenant=services.tenant_of(request))
    return {"session_id": session_id, "reset": forgotten}
