"""API keys: optional, compared in constant time, from a header or (for browsers' WebSocket,
which cannot set headers) a query parameter or the OpenAI Realtime browser subprotocol."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence
from urllib.parse import urlsplit

from starlette.requests import HTTPConnection

# OpenAI's browser clients offer their key as a WebSocket subprotocol, beside `realtime`.
KEY_SUBPROTOCOL = "openai-insecure-api-key."


def offered_subprotocols(connection: HTTPConnection) -> list[str]:
    header = connection.headers.get("sec-websocket-protocol", "")
    return [p.strip() for p in header.split(",") if p.strip()]


def presented_key(connection: HTTPConnection) -> str | None:
    auth = connection.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    for protocol in offered_subprotocols(connection):
        if protocol.startswith(KEY_SUBPROTOCOL):
            return protocol[len(KEY_SUBPROTOCOL) :]
    return connection.headers.get("x-api-key") or connection.query_params.get("api_key")


def key_is_valid(keys: list[str], presented: str | None) -> bool:
    """True when no keys are configured, or `presented` equals one of them."""
    if not keys:
        return True
    if not presented:
        return False
    given = presented.encode()
    # Compare against every key so the time taken does not tell which one nearly matched.
    matches = [hmac.compare_digest(given, key.encode()) for key in keys]
    return any(matches)


# A room's name as the agent sends it (`X-Parle-Room`): what a session id may be.
_ROOM = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


def client_id(connection: HTTPConnection, keys: list[str], agent_keys: Sequence[str] = ()) -> str:
    """Who a limit applies to: the API key when keys are on and it is a valid one (its whole
    value, hashed), else the peer address: made-up keys never buy a client fresh limits.

    A LiveKit worker serves many rooms with one key: with one of `agent_keys` (also a valid
    key), each room it names in `X-Parle-Room` is a client of its own, so one busy room does
    not hold up the others."""
    key = presented_key(connection)
    if keys and key and key_is_valid(keys, key):
        who = "key:" + hashlib.sha256(key.encode()).hexdigest()[:16]
        room = connection.headers.get("x-parle-room", "")
        if room and _ROOM.fullmatch(room) and key_is_valid(list(agent_keys), key) and agent_keys:
            return f"{who}:room:{room}"
        return who
    host = connection.client.host if connection.client else "unknown"
    return "ip:" + host


def origin_allowed(connection: HTTPConnection, allowed: list[str]) -> bool:
    """Whether a browser page at the request's `Origin` may use this connection (the
    WebSocket, which CORS does not cover). Allowed: no `Origin` (not a browser), the
    server's own origin (the `Origin` names the `Host` the request was sent to), and, when
    `PARLE_CORS_ORIGINS` lists some, those. With none listed, any origin (unchanged)."""
    origin = connection.headers.get("origin")
    if origin is None or not allowed or origin in allowed:
        return True
    return _same_origin(origin, connection.headers.get("host", ""))


def _same_origin(origin: str, host: str) -> bool:
    try:
        page = urlsplit(origin)
        server = urlsplit("//" + host)
        page_port = page.port or _DEFAULT_PORTS.get(page.scheme)
        server_port = server.port or _DEFAULT_PORTS.get(page.scheme)
    except ValueError:  # a malformed port or address
        return False
    if page.scheme not in _DEFAULT_PORTS or not page.hostname or not server.hostname:
        return False  # "null" (a sandboxed page, a file) and other oddities
    return (page.hostname, page_port) == (server.hostname, server_port)


_DEFAULT_PORTS = {"http": 80, "https": 443}
