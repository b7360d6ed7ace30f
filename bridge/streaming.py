"""A streaming response whose clean-up runs however it ends."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Callable
from typing import Any

from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send


class TurnStreamingResponse(StreamingResponse):
    """Runs `on_close` however the response ends, even if the client left before the body
    started (the stream's own `finally` would then never run), and closes the stream."""

    def __init__(
        self, content: AsyncGenerator[Any, None], *, on_close: Callable[[], None], **kwargs: Any
    ) -> None:
        super().__init__(content, **kwargs)
        self._stream = content
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._on_close()
            with contextlib.suppress(Exception):
                await self._stream.aclose()
