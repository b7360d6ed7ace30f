"""Serve an ASGI app with real uvicorn on a free loopback port, in a background thread."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import httpx
import uvicorn


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class UvicornThread:
    def __init__(self, app: Any, *, lifespan: str = "on", **config: Any) -> None:
        self.port = free_port()
        self._config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan=lifespan, **config
        )
        self._server = uvicorn.Server(self._config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> UvicornThread:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def wait_ready(self, timeout: float = 180.0) -> str:
        """Block until the PARLE app's `/ready` says 200 (its engines loaded); its base URL."""
        deadline = time.monotonic() + timeout
        while httpx.get(f"{self.base_url}/ready").status_code != 200:
            if time.monotonic() > deadline:
                raise RuntimeError("the engines did not load in time")
            time.sleep(0.5)
        return self.base_url

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=15)
