"""The real llama.cpp server (llama-cpp-python) with the shipped SmolLM2-135M-Instruct GGUF,
launched by `LlmServer` and streamed by `OpenAIChatModel`."""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from parle.config import Settings, load_settings
from parle.engines.chat import OpenAIChatModel
from parle.engines.llm_server import LlmServer
from parle.models import llm_spec, require

STORY = [{"role": "user", "content": "Write a very long story about a dragon and a knight."}]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    base = load_settings(profile="cpu")
    return load_settings(
        profile="cpu",
        llm_url=f"http://127.0.0.1:{free_port()}/v1",
        cache_dir=tmp_path_factory.mktemp("parle"),
        llm_gguf=str(require(llm_spec(base), base).path),
    )


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[LlmServer]:
    server = LlmServer(settings, gguf=Path(settings.llm_gguf))
    await server.start()
    yield server
    await server.stop()


async def test_launch_stream_and_stop(server: LlmServer, settings: Settings) -> None:
    assert server.launched
    # A second PARLE finds the server answering and does not launch another one.
    second = LlmServer(settings, gguf=Path(settings.llm_gguf))
    await second.start()
    assert not second.launched
    chat = OpenAIChatModel(settings.llm_url)
    tokens = [t async for t in chat.stream([{"role": "user", "content": "Olá!"}], max_tokens=12)]
    assert 1 < len(tokens) <= 12
    assert "".join(tokens).strip()
    await chat.aclose()
    await server.stop()
    assert not await server.is_answering()


async def test_cancelling_mid_stream_ends_the_generation(
    server: LlmServer, settings: Settings
) -> None:
    chat = OpenAIChatModel(settings.llm_url, temperature=0.9)
    started = time.perf_counter()
    full = [t async for t in chat.stream(STORY, max_tokens=200)]
    per_200 = time.perf_counter() - started
    assert len(full) >= 100

    stream = chat.stream(STORY, max_tokens=4000)
    received = 0
    async for _ in stream:
        received += 1
        if received == 5:
            break
    await stream.aclose()
    # llama.cpp serves one request at a time: had the 4000-token generation gone on, the next
    # request would wait for it (about 20x the 200-token time).
    started = time.perf_counter()
    reply = [t async for t in chat.stream([{"role": "user", "content": "Oi"}], max_tokens=3)]
    assert reply
    assert time.perf_counter() - started < per_200
    await chat.aclose()
