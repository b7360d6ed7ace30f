"""How `parle serve` runs uvicorn: its settings, its logging, and an HTTP protocol that bounds
slow or oversized request heads (uvicorn has no header-read timeout of its own) and the HTTP
connections served at once.

`server_options(settings)` is what `parle serve` passes to uvicorn besides the app, address
and logging; the tests run uvicorn with the same options, so they exercise these settings.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, ClassVar

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from parle.config import Settings
from parle.logs import logging_config

log = logging.getLogger(__name__)

# Request heads: nginx's and Apache's usual bounds. A line must also stay under the WebSocket
# library's own limit (8192 bytes): past it, uvicorn hands the upgrade over and it is never
# answered (a WebSocket upgrade with a 10 kB request line hung until the client gave up).
MAX_LINE_BYTES = 8000
MAX_HEAD_BYTES = 16 * 1024
MAX_HEADER_COUNT = 100  # under the WebSocket library's 128, for the same reason


def server_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's settings for the PARLE server, apart from app, host, port and logging."""
    return {
        "http": guarded_http_protocol(settings.header_timeout_s, settings.max_connections),
        "ws_max_size": settings.max_upload_bytes + 64 * 1024,
        # PCM barely compresses, and deflating every chunk and message costs more CPU than the
        # whole rest of the server (measured: bench/README.md).
        "ws_per_message_deflate": False,
        "timeout_keep_alive": 5,  # an idle keep-alive connection, between requests
        # Not uvicorn's `limit_concurrency`: it counts WebSockets with HTTP connections, yet
        # never refuses an upgrade; open sockets past it made every HTTP request a 503, `/ready`
        # included (an orchestrator would restart a box that is merely busy). HTTP connections
        # are bounded by `GuardedHttpToolsProtocol`, WebSockets by `bridge.limits.socket_slot`.
        "timeout_graceful_shutdown": 5,
    }


def serve(app: Any, settings: Settings, *, host: str, port: int, log_level: str) -> None:
    """Run the PARLE server until it is stopped; every log line is JSON (`parle.logs`)."""
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=log_level.lower(),
        log_config=logging_config(log_level),
        **server_options(settings),
    )


def guarded_http_protocol(header_timeout_s: float, max_connections: int) -> type[asyncio.Protocol]:
    """uvicorn's httptools protocol (what it picks itself when httptools is installed, as
    `uvicorn[standard]` makes sure) with the request head bounded in time and size, and at
    most `max_connections` HTTP connections served (a class per server: its own count)."""
    bound = {
        "header_timeout_s": header_timeout_s,
        "max_connections": max_connections,
        "http_connections": set(),
    }
    return type("GuardedHttpToolsProtocol", (GuardedHttpToolsProtocol,), bound)


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """A request's line and headers must arrive within `header_timeout_s` (from the connection,
    or from the first byte of a later request on it), else 408 and the connection is closed;
    a head over the size bounds is answered 414/431 before uvicorn parses it. Bodies are the
    app's business (`bridge.middleware.BodyLimitMiddleware` bounds their size and time).

    While more than `max_connections` HTTP connections are open, a request is answered 503
    (by uvicorn, as its own `limit_concurrency` does). A connection upgraded to a WebSocket
    leaves the count: the app counts sockets against the same setting and refuses one past it
    (`bridge.limits.socket_slot`), so open sockets never make `/health`, `/ready` or
    `/metrics` answer 503."""

    header_timeout_s = 10.0
    max_connections = 1000
    http_connections: ClassVar[set[GuardedHttpToolsProtocol]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        self.http_connections.add(self)
        self._head_timer: asyncio.TimerHandle | None = None
        self._expect_head()
        self._arm_head_timer()  # a connection that never sends a request is not kept either

    def connection_lost(self, exc: Exception | None) -> None:
        self.http_connections.discard(self)
        self._disarm_head_timer()
        super().connection_lost(exc)

    def handle_websocket_upgrade(self) -> None:
        self.http_connections.discard(self)  # a WebSocket now, counted by the app
        super().handle_websocket_upgrade()

    def on_headers_complete(self) -> None:
        # uvicorn answers 503 when its limit is reached, and a limit of 0 always is; left None
        # (no limit) otherwise. Upgrades return before uvicorn looks at it.
        over = len(self.http_connections) > self.max_connections
        self.limit_concurrency = 0 if over else None
        super().on_headers_complete()

    def data_received(self, data: bytes) -> None:
        if self._reading_head:
            self._arm_head_timer()
            refusal = self._scan_head(data)
            if refusal is not None:
                self._refuse(*refusal)
                return
        super().data_received(data)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        # The body has all arrived: the next bytes are the next request's head. Its clock
        # starts with its first byte (between requests, uvicorn's keep-alive timeout rules).
        self._expect_head()

    def _expect_head(self) -> None:
        self._reading_head = True
        self._head_bytes = 0
        self._line_bytes = 0  # the current line so far, its line end included
        self._lines = 0  # non-empty lines so far: the request line, then the headers
        self._last_byte = b""

    def _scan_head(self, data: bytes) -> tuple[int, str] | None:
        """Follow the head through `data` (up to its blank line); a refusal when it breaks a
        bound. Cheap: one `find` per line, and a head is at most `MAX_HEAD_BYTES`."""
        position = 0
        while self._reading_head and position < len(data):
            newline = data.find(b"\n", position)
            end = len(data) if newline < 0 else newline + 1
            self._head_bytes += end - position
            self._line_bytes += end - position
            length = self._line_bytes  # the line so far, without its line end once it has one
            if newline >= 0:
                before = data[newline - 1 : newline] if newline > position else self._last_byte
                length -= 2 if before == b"\r" else 1
            if length > MAX_LINE_BYTES:
                if self._lines == 0:
                    return 414, "The request line is too long."
                return 431, "A request header is too long."
            if newline >= 0:
                self._line_bytes = 0
                if length:
                    self._lines += 1
                elif self._lines:  # the blank line after the headers: the head is complete
                    self._reading_head = False
                    self._disarm_head_timer()
            self._last_byte = data[end - 1 : end]
            position = end
            if self._head_bytes > MAX_HEAD_BYTES or self._lines > MAX_HEADER_COUNT + 1:
                return 431, "The request headers are too large."
        return None

    def _arm_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.header_timeout_s, self._head_timed_out)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or not self._reading_head:
            return
        if self.cycle is not None and not self.cycle.response_complete:
            # A pipelined head while the previous answer still streams: that answer goes on;
            # the head gets its time again.
            self._arm_head_timer()
            return
        if self._head_bytes == 0:
            # Nothing sent at all (a browser's spare preconnected socket, say): just closed.
            self._reading_head = False
            self.transport.close()
            return
        self._refuse(408, "The request headers arrived too slowly.")

    def _refuse(self, status: int, message: str) -> None:
        """Answer a bad head ourselves (the app never sees it) and close the connection."""
        self._disarm_head_timer()
        self._reading_head = False
        code = "request_timeout" if status == 408 else "request_too_large"
        client = f"{self.client[0]}:{self.client[1]}" if self.client else "unknown"
        # INFO, not WARNING: a client's misbehaviour, and a hostile one could flood the log.
        log.info("request head refused", extra={"status": status, "client": client})
        body = json.dumps({"error": {"message": message, "code": code}}).encode()
        head = [f"HTTP/1.1 {status} {_REASONS[status]}".encode()]
        head += [name + b": " + value for name, value in self.server_state.default_headers]
        head += [
            b"content-type: application/json",
            b"content-length: " + str(len(body)).encode(),
            b"connection: close",
        ]
        self.transport.write(b"\r\n".join(head) + b"\r\n\r\n" + body)
        self.transport.close()


_REASONS = {408: "Request Timeout", 414: "URI Too Long", 431: "Request Header Fields Too Large"}
