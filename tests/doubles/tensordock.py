"""A fake of TensorDock's v2 API on loopback (real uvicorn): `POST /instances/{id}/stop`
with a Bearer token, answering the statuses it is given in turn (then 200). It stands in for
the real API, which PARLE calls in `bridge/idle.py`."""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from harness.uvicorn_thread import UvicornThread


class FakeTensorDock:
    def __init__(self, *statuses: int) -> None:
        self.statuses = list(statuses)
        self.calls: list[dict[str, Any]] = []
        self._server = UvicornThread(
            Starlette(routes=[Route("/api/v2/instances/{id}/stop", self._stop, methods=["POST"])]),
            lifespan="off",
        )

    @property
    def api_url(self) -> str:
        return f"{self._server.base_url}/api/v2"

    async def _stop(self, request: Request) -> JSONResponse:
        self.calls.append(
            {
                "instance": request.path_params["id"],
                "authorization": request.headers.get("authorization"),
                "body": await request.body(),
            }
        )
        status = self.statuses.pop(0) if self.statuses else 200
        if status != 200:
            return JSONResponse({"error": "fake failure"}, status_code=status)
        instance = request.path_params["id"]
        body = {"data": {"type": "instance", "id": instance, "attributes": {"status": "stopping"}}}
        return JSONResponse(body)

    def start(self) -> FakeTensorDock:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()
