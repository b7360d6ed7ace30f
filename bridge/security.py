"""API keys: optional, compared in constant time, from a header or (for browsers' WebSocket,
which cannot set headers) a query parameter or the OpenAI Realtime browser subprotocol."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from urllib.parse import urlsplit

from starlette.requests import HTTPConnection

from parle.tenants import DEFAULT_TENANT, ID_PATTERN

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


def _matching_key(keys: Iterable[str], presented: str | None) -> str | None:
    """The one of `keys` that `presented` equals, else None."""
    if not presented:
        return None
    given = presented.encode()
    found = None
    # Compare against every key so the time taken does not tell which one nearly matched.
    for key in keys:
        if hmac.compare_digest(given, key.encode()):
            found = key
    return found


def key_is_valid(keys: list[str], presented: str | None) -> bool:
    """True when no keys are configured, or `presented` equals one of them."""
    return not keys or _matching_key(keys, presented) is not None


def tenant_of(connection: HTTPConnection, key_tenants: Mapping[str, str]) -> str | None:
    """The tenant a request acts for: its key's when keys are on (None for a missing or
    wrong key), else the default tenant."""
    if not key_tenants:
        return DEFAULT_TENANT
    key = _matching_key(key_tenants, presented_key(connection))
    return None if key is None else key_tenants[key]


# A room's name as the agent sends it (`X-Parle-Room`): what a session id may be.
_ROOM = re.compile(ID_PATTERN)


def client_id(connection: HTTPConnection, keys: list[str], agent_keys: Sequence[str] = ()) -> str:
    """Who a limit applies to: the API key when keys are on and it is a valid one (its whole
    value, hashed), else the peer address: made-up keys never buy a client fresh limits.

    A LiveKit worker serves many rooms with one key: with one of `agent_keys` (also a valid
    key), or with keys off, each room it names in `X-Parle-Room` is a client of its own, so
    one busy room does not hold up the others."""
    key = presented_key(connection)
    room = connection.headers.get("x-parle-room", "")
    room = room if _ROOM.fullmatch(room) else ""
    if keys and key and key_is_valid(keys, key):
        who = "key:" + hashlib.sha256(key.encode()).hexdigest()[:16]
        if room and key_is_valid(list(agent_keys), key) and agent_keys:
            return f"{who}:room:{room}"
        return who
    host = connection.client.host if connection.client else "unknown"
    if room and not keys:
        # Keyless is a laptop's mode (loopback only): its worker's rooms, two calls at once,
        # are clients of their own as with an agent key, not one client's 2 turns.
        return f"ip:{host}:room:{room}"
    return "ip:" + host


def origin_allowed(connection: HTTPConnection, allowed: list[str]) -> bool:
    """Whether a browser page at the request's `Origin` may use this connection (the
    WebSockets, which CORS does not cover; without keys, every route). Allowed: no `Origin`
    (not a browser), the server's own origin (the `Origin` names the `Host` the request was
    sent to), and those `PARLE_CORS_ORIGINS` lists."""
    origin = connection.headers.get("origin")
    if origin is None or origin in allowed:
        return True
    return _same_origin(origin, connection.headers.get("host", ""))


LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
_WILDCARDS = frozenset({"0.0.0.0", "::", ""})


def is_loopback(host: str) -> bool:
    """Whether a listening address is reachable from this machine only."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host.lower() == "localhost"


def keyless_exposure(host: str, *, keys: bool, insecure_no_keys: bool) -> str | None:
    """Why `parle serve` must not start on `host`, or None. Without keys, whoever reaches
    the server reads and erases every learner: only loopback, unless told otherwise."""
    if keys or insecure_no_keys or is_loopback(host):
        return None
    return (
        f"refusing to serve without API keys on {host} (reachable from other machines: anyone "
        "could read and erase every learner). Set PARLE_API_KEYS, listen on 127.0.0.1, or "
        "pass --insecure-no-keys (PARLE_INSECURE_NO_KEYS=true) on a network private by "
        "other means."
    )


def host_names(bound: str, allowed: list[str]) -> frozenset[str] | None:
    """The `Host` names a keyless server answers (its loopback names, the address it listens
    on, `PARLE_ALLOWED_HOSTS`); None: any, for a wildcard address with no names listed (its
    names are unknown; it only runs with --insecure-no-keys)."""
    if bound in _WILDCARDS and not allowed:
        return None
    listed = allowed if bound in _WILDCARDS else [*allowed, bound]
    # As `host_allowed` reads them: lowercase, an IPv6 literal without its brackets.
    return LOOPBACK_NAMES | {name.strip("[]").lower() for name in listed}


def host_allowed(connection: HTTPConnection, names: frozenset[str]) -> bool:
    """Whether the request's `Host` (its name, without the port) is one of `names`: a page
    of a foreign site whose name was pointed at this address (DNS rebinding) carries its
    own name and is refused."""
    header = connection.headers.get("host", "")
    try:
        name = urlsplit("//" + header).hostname  # lowercase, an IPv6 literal unbracketed
    except ValueError:
        return False
    return name in names


def cross_site(connection: HTTPConnection, allowed_origins: list[str]) -> bool:
    """A request a foreign page made the browser send: a foreign `Origin`, or, without one
    (a link, an image), the browser's `Sec-Fetch-Site` saying another site."""
    if connection.headers.get("origin") is not None:
        return not origin_allowed(connection, allowed_origins)
    return connection.headers.get("sec-fetch-site", "") in ("cross-site", "same-site")


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
