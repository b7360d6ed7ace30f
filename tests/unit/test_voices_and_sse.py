"""Voice-style files in both layouts Kokoro ships, and the SSE parsing of the chat client."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np

from parle.engines.chat import sse_payloads
from parle.engines.kokoro import load_voices


def test_voices_load_from_archives_and_per_voice_bins(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    dora = rng.standard_normal((510, 1, 256)).astype(np.float32)
    kumo = rng.standard_normal((510, 1, 256)).astype(np.float32)
    hub = tmp_path / "voices"  # the hub's layout: voices/<name>.bin, raw float32
    hub.mkdir()
    dora.tofile(hub / "pf_dora.bin")
    np.savez(tmp_path / "voices_ja.npz", jm_kumo=kumo)  # the packages' layout: an archive
    voices = load_voices([hub, tmp_path / "voices_ja.npz"])
    assert sorted(voices) == ["jm_kumo", "pf_dora"]
    np.testing.assert_array_equal(voices["pf_dora"], dora)
    np.testing.assert_array_equal(voices["jm_kumo"], kumo)


async def test_sse_payloads_from_openai_compatible_servers() -> None:
    body = (
        ": keep-alive\n\n"
        'data: {"choices":[{"delta":{"role":"assistant"}}]}\n\n'
        'data: {"choices":[{"delta":{"content":"Olá"}}]}\n\n'
        "data: {not json\n\n"
        "data: 5\n\n"
        'data: {"choices":[{"delta":{},"finish_reason":"stop"}]}\n\n'
        "data: [DONE]\n\n"
        'data: {"after": "done"}\n\n'
    )
    response = httpx.Response(200, content=body.encode())
    events = [event async for event in sse_payloads(response)]
    assert events == [
        {"choices": [{"delta": {"role": "assistant"}}]},
        {"choices": [{"delta": {"content": "Olá"}}]},
        {"choices": [{"delta": {}, "finish_reason": "stop"}]},
    ]
