"""A learner's record (the learner store, `parle.store`): their progress as JSON and as an
HTML report, everything held about them (export), and erasure; and the LiveKit agent's door
to it (`/api/agent/sessions`, `/api/agent/turns`: the agent holds no database). Behind the API
keys, like every non-open route; a key sees only its own tenant's learners (another tenant's
learner is "no such learner", `parle.tenants`), and only the agent's keys may use its door."""

from __future__ import annotations

import asyncio
import logging
import uuid
import weakref
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, Response

from bridge.agent_records import AgentSessionRequest, AgentSessionStart, AgentTurn
from bridge.deps import ServicesDep, TenantDep
from bridge.errors import ApiError
from bridge.inputs import check_learner_id, check_session_id
from bridge.openapi import ID_SCHEMA, error_responses
from bridge.report import render_report
from bridge.security import key_is_valid, presented_key
from bridge.services import Services
from parle.sessions import SessionMemory
from parle.store import LearnerStore, StoreRecorder
from parle.tenants import DEFAULT_TENANT, store_key

log = logging.getLogger(__name__)
router = APIRouter()

# A learner id in a path: the id rule, stated in the OpenAPI schema; checked by the route
# (`check_learner_id`), which answers a bad one with its own code (`bad_learner_id`).
LearnerPath = Annotated[str, Path(json_schema_extra=ID_SCHEMA)]

# The report is a page a learner opens in a browser: nothing on it runs or loads, and only
# this server's own page may frame it (the web client shows it after "Terminar").
REPORT_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
        "frame-ancestors 'self'; base-uri 'none'; form-action 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "SAMEORIGIN",
    "Referrer-Policy": "no-referrer",
}


def _recorder(services: Services) -> StoreRecorder:
    recorder = services.recorder
    if recorder is None or not recorder.ready:
        raise ApiError(
            503, "The learner store is unavailable.", "store_unavailable", {"Retry-After": "30"}
        )
    return recorder


def _learner_id(value: str) -> str:
    checked = check_learner_id(value)
    if checked is None:
        raise ApiError(422, "learner_id is required.", "bad_learner_id")
    return checked


def _not_found() -> ApiError:
    return ApiError(404, "No such learner.", "learner_not_found")


def _failed(services: Services, exc: Exception) -> ApiError:
    services.metrics.store_errors.labels("read").inc()
    log.warning("learner store read failed", extra={"error_type": type(exc).__name__})
    return ApiError(503, "The learner store is unavailable.", "store_unavailable")


async def _read(
    services: Services,
    tenant: str,
    learner_id: str,
    read: Callable[[LearnerStore, str], Awaitable[dict[str, Any] | None]],
) -> dict[str, Any]:
    """What `read` finds of the request's tenant's learner, after the turns just spoken are
    written; 404 when the tenant has no such learner."""
    recorder = _recorder(services)
    key = store_key(tenant, _learner_id(learner_id))
    await recorder.flush()
    try:
        found = await read(recorder.store, key)
    except Exception as exc:
        raise _failed(services, exc) from None
    if found is None:
        raise _not_found()
    return found


@router.get("/api/learners/{learner_id}", responses=error_responses(401, 404, 422, 503))
async def learner_progress(
    learner_id: LearnerPath, tenant: TenantDep, services: ServicesDep
) -> dict[str, Any]:
    """A learner's progress: level and its history (the latest changes), sessions (the
    latest; `sessions_total` counts all), turns, speaking rate, corrections, recurring
    mistakes, new words, what they told about themselves."""
    return await _read(services, tenant, learner_id, LearnerStore.report)


@router.get(
    "/api/learners/{learner_id}/report",
    response_class=HTMLResponse,
    responses=error_responses(401, 404, 422, 503),
)
async def learner_report_page(
    learner_id: LearnerPath, tenant: TenantDep, services: ServicesDep
) -> HTMLResponse:
    """The progress as an HTML page with charts (SVG), readable on a phone."""
    report = await _read(services, tenant, learner_id, LearnerStore.report)
    # Drawing the charts takes a while for a long record: off the loop, which streams audio.
    page = await asyncio.to_thread(render_report, report)
    return HTMLResponse(page, headers=REPORT_HEADERS)


@router.get("/api/learners/{learner_id}/export", responses=error_responses(401, 404, 422, 503))
async def learner_export(
    learner_id: LearnerPath, tenant: TenantDep, services: ServicesDep
) -> dict[str, Any]:
    """Everything held about a learner, table by table (their right of access)."""
    return await _read(services, tenant, learner_id, LearnerStore.export)


@router.delete("/api/learners/{learner_id}", responses=error_responses(401, 404, 422, 503))
async def learner_erase(
    learner_id: LearnerPath, tenant: TenantDep, services: ServicesDep
) -> dict[str, Any]:
    """Erase everything about a learner (afterwards: 404). Sessions in memory forget them
    too at their end; what they say from now on starts a new record."""
    recorder = _recorder(services)
    learner_id = _learner_id(learner_id)
    key = store_key(tenant, learner_id)
    await recorder.flush()  # nothing queued for them is written after the erasure
    try:
        erased = await recorder.store.delete(key)
    except Exception as exc:
        raise _failed(services, exc) from None
    if not erased:
        raise _not_found()
    return {"learner_id": learner_id, "deleted": True}


# --- the LiveKit agent's door -------------------------------------------------------------------


class _AgentSessions:
    """The agent's sessions on the server side. The recorder knows a session by its
    `SessionMemory` (as the pipeline's sessions are known): one small memory per agent session,
    by session id, the least recently used let go beyond `limit` (a turn for a session let go,
    or from before a restart, opens it again)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._memories: OrderedDict[tuple[str, str], SessionMemory] = OrderedDict()

    def get(self, learner: str, session_id: str, *, new: bool = False) -> SessionMemory:
        """The memory of `session_id` for the learner `learner` (a store key): a session id
        named by another learner, or tenant, is another session."""
        key = (learner, session_id)
        memory = None if new else self._memories.get(key)
        if memory is None:
            # No history: the agent keeps the conversation; this holds the learner's binding.
            memory = self._memories[key] = SessionMemory(max_turns=0)
            while len(self._memories) > self.limit:
                self._memories.popitem(last=False)
        self._memories.move_to_end(key)
        return memory


# One table per recorder (per app): `Services` is an unhashable dataclass.
_agent_sessions: weakref.WeakKeyDictionary[StoreRecorder, _AgentSessions] = (
    weakref.WeakKeyDictionary()
)


def _agent_door(
    services: Services, request: Request, tenant: str, learner_id: str
) -> tuple[StoreRecorder, _AgentSessions, str]:
    """The recorder, the agent's sessions and the learner's store key, for a request from a
    LiveKit worker: with keys on, only `PARLE_AGENT_API_KEYS` may write a learner's record,
    and only for a tenant this server has (the one the room's token was made for)."""
    settings = services.settings
    workers = settings.agent_key_list
    if settings.api_key_list and not (workers and key_is_valid(workers, presented_key(request))):
        raise ApiError(
            403, "Only a LiveKit worker's key (PARLE_AGENT_API_KEYS) may do this.", "agent_only"
        )
    tenants = set(settings.api_key_tenants.values()) or {DEFAULT_TENANT}
    if tenant not in tenants:
        raise ApiError(422, "tenant: this server has no such tenant.", "bad_tenant")
    key = store_key(tenant, _learner_id(learner_id))
    recorder = services.recorder
    if recorder is None:
        raise ApiError(
            503, "The learner store is unavailable.", "store_unavailable", {"Retry-After": "30"}
        )
    sessions = _agent_sessions.get(recorder)
    if sessions is None:
        sessions = _agent_sessions[recorder] = _AgentSessions(services.settings.max_sessions)
    return recorder, sessions, key


@router.post("/api/agent/sessions", responses=error_responses(400, 401, 403, 408, 413, 422, 503))
async def agent_session(
    request: Request, services: ServicesDep, body: AgentSessionRequest
) -> AgentSessionStart:
    """A LiveKit agent's session begins for a learner: their stored level and the note for
    the tutor, read as the server's own doors read them when a session starts (at most about
    a second; while the database is unreachable: nothing known, and the session goes on)."""
    recorder, sessions, key = _agent_door(services, request, body.tenant, body.learner_id)
    session_id = check_session_id(body.session_id) if body.session_id else _new_session_id()
    memory = sessions.get(key, session_id, new=True)
    await recorder.session_started(memory, key, session_id)
    return AgentSessionStart(
        session_id=session_id,
        level=memory.level.level if memory.level is not None else None,
        note=memory.notes.get("learner"),
    )


@router.post(
    "/api/agent/turns",
    status_code=202,
    responses=error_responses(400, 401, 403, 408, 413, 422, 503),
)
async def agent_turn(request: Request, services: ServicesDep, turn: AgentTurn) -> Response:
    """One finished turn of a LiveKit agent's session, queued for the learner's record like a
    turn of the server's own doors (202: accepted, written in the background)."""
    recorder, sessions, key = _agent_door(services, request, turn.tenant, turn.learner_id)
    session_id = check_session_id(turn.session_id)
    memory = sessions.get(key, session_id)
    # As the pipeline does before every turn: returns at once for the session's learner, and
    # opens the session again when it was let go (or the server restarted since it began).
    await recorder.session_started(memory, key, session_id)
    recorder.turn_finished(memory, turn.record())
    return Response(status_code=202)


def _new_session_id() -> str:
    return f"agent-{uuid.uuid4().hex[:12]}"
