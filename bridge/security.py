"""API keys: optional, compared in constant time, from a header or (for browsers' WebSocket)
a query parameter."""

from __future__ import annotations

import hmac

from starlette.requests import HTTPConnection


def presented_key(connection: HTTPConnection) -> str | None:
    auth = connection.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
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


def client_id(connection: HTTPConnection) -> str:
    """Who a limit applies to: the API key when there is one, else the peer address."""
    key = presented_key(connection)
    if key:
        return "key:" + key[:8]
    host = connection.client.host if connection.client else "unknown"
    return "ip:" + host
