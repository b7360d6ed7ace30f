"""The PARLE server with instant engines (no model time at all), for measuring what the
server itself adds. Run by bench_server.py as its own process:

    python bench/instant_server.py PORT
"""

from __future__ import annotations

import os
import sys

import uvicorn

from bridge.app import EngineSet, create_app
from parle.config import load_settings
from parle.testing import InstantSynthesizer, InstantTranscriber, ScriptedChatModel

REPLY = ["Muito bem", ", Ana!", " De onde", " você é?", " Eu moro", " no Brasil."]


def main() -> None:
    port = int(sys.argv[1])
    settings = load_settings(
        max_active_turns=1000,
        max_queued_turns=1000,
        client_max_turns=1000,
        client_turns_per_minute=1_000_000,
        max_sessions=100_000,
    )
    engines = EngineSet(
        InstantTranscriber(vad=False), ScriptedChatModel(REPLY), InstantSynthesizer()
    )
    uvicorn.run(
        create_app(settings, engines=engines),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        ws_per_message_deflate=os.environ.get("BENCH_DEFLATE") == "1",
    )


if __name__ == "__main__":
    main()
