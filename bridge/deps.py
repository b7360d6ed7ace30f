"""The routes' dependencies, as Annotated types (FastAPI resolves them per request), and what
the WebSocket doors check before they open."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection
from starlette.websockets import WebSocket

from bridge.errors import ApiError
from bridge.security import key_is_valid, origin_allowed, presented_key
from bridge.services import Services
from parle.config import Settings

log = logging.getLogger(__name__)


def get_services(connection: HTTPConnection) -> Services:
    services: Services = connection.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def get_tenant(connection: HTTPConnection, services: ServicesDep) -> str:
    """Whose learners and sessions the request may touch (`parle.tenants`)."""
    return services.tenant_of(connection)


TenantDep = Annotated[str, Depends(get_tenant)]


async def refused_origin(ws: WebSocket, settings: Settings) -> bool:
    """A WebSocket from a foreign page, closed before the handshake completes (uvicorn answers
    403): browsers open any site's WebSockets with no CORS check, so a door checks `Origin`
    itself and the page learns nothing. True when refused."""
    if origin_allowed(ws, settings.cors_origin_list):
        return False
    log.info("websocket from a foreign origin refused", extra={"origin": ws.headers["origin"]})
    await ws.close(code=1008)
    return True


def key_refusal(ws: WebSocket, settings: Settings) -> ApiError | None:
    """The refusal a WebSocket door sends, in its own message shape, when the key is missing
    or wrong (the API key middleware guards HTTP requests only)."""
    if key_is_valid(settings.api_key_list, presented_key(ws)):
        return None
    return ApiError(401, "A valid API key is required.", "unauthorized")
