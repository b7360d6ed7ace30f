"""The LLM's first token with PARLE's prompts, as learners reach the `cpu` profile's llama.cpp
server: separate new sessions (each a fresh history), and several sessions taking turns
(each with its own growing history). Run once with the server's RAM prompt cache
(`--cache true`, which saves and restores whole model states) and once without (llama.cpp
then reuses the longest prefix it still holds: the system prompt, byte-identical across
sessions at a level). Same prompts, same process, interleaved rounds.

Run: .venv/bin/python bench/bench_prefix_cache.py [--rounds 3]   (about 3 minutes)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from parle.config import Settings, load_settings  # noqa: E402
from parle.engines.base import ChatMessage  # noqa: E402
from parle.engines.chat import OpenAIChatModel  # noqa: E402
from parle.engines.llm_server import LlmServer  # noqa: E402
from parle.models import llm_spec, require  # noqa: E402
from parle.tutor.prompts import build_messages  # noqa: E402

LINES = [
    "Olá, meu nome é Ana e eu sou dos Estados Unidos.",
    "Eu gosto de café com leite.",
    "Ontem eu fui ao mercado com minha irmã.",
    "Qual é a diferença entre ser e estar?",
    "Eu trabalho como engenheira em São Paulo.",
    "Meu cachorro se chama Max.",
]
REPLY = "Que legal! Conte mais sobre isso, por favor."


class CacheFlagServer(LlmServer):
    """The profile's llama.cpp server, with or without its RAM prompt cache."""

    def __init__(self, settings: Settings, *, ram_cache: bool) -> None:
        super().__init__(settings, gguf=require(llm_spec(settings), settings).path)
        self.ram_cache = ram_cache

    def command(self) -> list[str]:
        command = super().command()
        if "--cache" in command:
            at = command.index("--cache")
            del command[at : at + 2]
        return [*command, "--cache", "true"] if self.ram_cache else command


async def first_token_ms(chat: OpenAIChatModel, messages: list[ChatMessage]) -> float:
    started = time.perf_counter()
    async for _ in chat.stream(messages, max_tokens=8):
        break
    return (time.perf_counter() - started) * 1000


async def measure(port: int, *, ram_cache: bool, rounds: int) -> dict[str, float]:
    settings = load_settings(llm_url=f"http://127.0.0.1:{port}/v1")
    server = CacheFlagServer(settings, ram_cache=ram_cache)
    await server.start()
    chat = OpenAIChatModel(settings.llm_url)
    try:
        await first_token_ms(chat, build_messages([], "Olá!"))  # as PARLE warms it up
        fresh: list[float] = []
        taking_turns: list[float] = []
        for _ in range(rounds):
            for line in LINES:  # a new session each: the system prompt is all they share
                fresh.append(await first_token_ms(chat, build_messages([], line)))
            histories: list[list[ChatMessage]] = [[], [], []]
            for turn, line in enumerate(LINES * 2):  # three sessions, alternating
                history = histories[turn % 3]
                taking_turns.append(await first_token_ms(chat, build_messages(history, line)))
                history += [
                    {"role": "user", "content": line},
                    {"role": "assistant", "content": REPLY},
                ]
    finally:
        await chat.aclose()
        await server.stop()
    return {
        "new_sessions_ms": round(statistics.median(fresh), 1),
        "sessions_taking_turns_ms": round(statistics.median(taking_turns), 1),
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--port", type=int, default=8931)
    args = parser.parse_args()
    results = {}
    for ram_cache in (True, False, True, False):  # interleaved: drift hits both alike
        key = "ram_cache" if ram_cache else "prefix_only"
        one = await measure(args.port, ram_cache=ram_cache, rounds=args.rounds)
        results.setdefault(key, []).append(one)
    summary = {
        key: {name: round(statistics.median(run[name] for run in runs), 1) for name in runs[0]}
        for key, runs in results.items()
    }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
