"""The LLM's first token on a conversation's later turns: PARLE's requests (the level's reminder
after each of the learner's messages, `build_messages`) against the earlier layout (the
reminder after the last message only), same llama.cpp server (the `cpu` profile's, as PARLE
launches it), same learner lines, interleaved conversations.

    .venv/bin/python bench/bench_history_cache.py [--conversations 4]

Each conversation is 4 turns; each reply is the model's own (streamed whole, then kept in
the history), so the server's cache holds the previous request and the reply it generated,
as in a real session. Prints the median first-token time per turn for each layout and writes
bench/results/history_cache.json.
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

from harness.uvicorn_thread import free_port  # noqa: E402
from parle.config import load_settings  # noqa: E402
from parle.engines.base import ChatMessage  # noqa: E402
from parle.engines.chat import OpenAIChatModel  # noqa: E402
from parle.engines.llm_server import LlmServer  # noqa: E402
from parle.models import llm_spec, require  # noqa: E402
from parle.tutor.prompts import build_messages, system_prompt, turn_reminder  # noqa: E402

LINES = [
    "Olá, meu nome é Ana e eu sou dos Estados Unidos.",
    "A minha casa é muito bonito e grande.",
    "Professora, qual é a diferença entre ser e estar?",
    "Os meninos estão muito cansados depois da aula.",
]


def reminder_last(history: list[ChatMessage], text: str) -> list[ChatMessage]:
    """The earlier layout: the reminder after the learner's new words only."""
    return [
        {"role": "system", "content": system_prompt("A2")},
        *history,
        {"role": "user", "content": text},
        {"role": "system", "content": turn_reminder("A2")},
    ]


def reminder_each(history: list[ChatMessage], text: str) -> list[ChatMessage]:
    return build_messages(history, text, level="A2")


async def reply(chat: OpenAIChatModel, messages: list[ChatMessage]) -> tuple[float, str]:
    """(first token ms, the whole reply)."""
    first = None
    text = ""
    started = time.perf_counter()
    async for delta in chat.stream(messages, max_tokens=60):
        first = first or (time.perf_counter() - started) * 1000
        text += delta
    assert first is not None, "no reply"
    return first, text.strip()


async def main(conversations: int) -> None:
    settings = load_settings(profile="cpu", llm_url=f"http://127.0.0.1:{free_port()}/v1")
    server = LlmServer(settings, gguf=require(llm_spec(settings), settings).path)
    await server.start()
    layouts = {"reminder_last": reminder_last, "reminder_each": reminder_each}
    times: dict[str, list[list[float]]] = {name: [[] for _ in LINES] for name in layouts}
    chat = OpenAIChatModel(settings.llm_url, model=settings.llm_model)
    try:
        await reply(chat, build_messages([], "Olá!"))  # as PARLE warms it up
        for n in range(conversations):
            order = list(layouts) if n % 2 == 0 else list(reversed(layouts))
            for name in order:
                history: list[ChatMessage] = []
                for turn, line in enumerate(LINES):
                    first, text = await reply(chat, layouts[name](history, line))
                    times[name][turn].append(first)
                    history += [
                        {"role": "user", "content": line},
                        {"role": "assistant", "content": text},
                    ]
    finally:
        await chat.aclose()
        await server.stop()
    result = {
        name: [round(statistics.median(turn), 1) for turn in turns] for name, turns in times.items()
    }
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "history_cache.json").write_text(json.dumps({"first_token_ms": result}, indent=1))
    for name, medians in result.items():
        print(f"{name}: first token ms by turn {medians}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--conversations", type=int, default=4)
    asyncio.run(main(parser.parse_args().conversations))
