"""The legacy protocols' client side, as the tests read them: SSE frames, and one WebSocket
turn's messages and audio."""

from __future__ import annotations

import asyncio
import json
from typing import Any


def parse_sse(text: str) -> list[tuple[str, dict[str, Any]]]:
    """Exactly what the old documented client did: blank-line separated frames, an `event:`
    line and a `data:` line holding JSON."""
    frames = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        event, data = "message", ""
        for line in block.split("\n"):
            if line.startswith("event:"):
                event = line[len("event:") :].strip()
            elif line.startswith("data:"):
                data += line[len("data:") :].strip()
        frames.append((event, json.loads(data)))
    return frames


async def receive_turn(ws: Any) -> tuple[list[dict[str, Any]], list[bytes]]:
    """One turn's JSON messages and binary audio on the WebSocket, up to its `complete` or
    `error` (30 s at most between messages)."""
    messages, audio = [], []
    while True:
        raw = await asyncio.wait_for(ws.recv(), 30)
        if isinstance(raw, bytes):
            audio.append(raw)
            continue
        message = json.loads(raw)
        messages.append(message)
        if message["type"] in ("complete", "error"):
            return messages, audio
