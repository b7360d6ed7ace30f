from __future__ import annotations

from pathlib import Path

import pytest

from harness.scripted_llm import ScriptedLlmServer
from parle.config import load_settings
from parle.engines.llm_server import LlmServer, llamacpp_command, vllm_command
from parle.errors import LlmUnavailableError


def test_vllm_command_for_ministral_has_the_mistral_formats() -> None:
    command = vllm_command(load_settings(profile="gpu", llm_context=4096))
    assert command[:3] == ["vllm", "serve", "mistralai/Ministral-3-3B-Instruct-2512-BF16"]
    joined = " ".join(command)
    for flag in (
        "--tokenizer_mode mistral",
        "--config_format mistral",
        "--load_format mistral",
        "--max-model-len 4096",
        "--enable-prefix-caching",
        "--port 8001",
        "--host 127.0.0.1",
    ):
        assert flag in joined
    assert "--gpu-memory-utilization" in command


def test_vllm_command_for_gemma_has_no_mistral_formats() -> None:
    command = vllm_command(load_settings(profile="legacy"))
    assert "--tokenizer_mode" not in command
    assert command[2] == "RedHatAI/gemma-3-4b-it-quantized.w4a16"


def test_llamacpp_command_serves_the_gguf_at_the_configured_address() -> None:
    settings = load_settings(llm_url="http://127.0.0.1:9123/v1")
    command = llamacpp_command(settings, Path("/m/model.gguf"))
    assert command[1:3] == ["-m", "llama_cpp.server"]
    joined = " ".join(command)
    assert "--model /m/model.gguf" in joined and "--port 9123" in joined
    assert "--interrupt_requests false" in joined  # concurrent learners all get whole replies


async def test_a_server_already_answering_is_used_as_it_is(tmp_path: Path) -> None:
    double = ScriptedLlmServer(["x"]).start()
    try:
        server = LlmServer(load_settings(llm_url=double.url, cache_dir=tmp_path))
        await server.start()
        await server.start()
        assert not server.launched
        await server.stop()
    finally:
        double.stop()


async def test_no_server_and_launch_off_is_a_clear_error(tmp_path: Path) -> None:
    settings = load_settings(llm_url="http://127.0.0.1:9/v1", llm_launch=False, cache_dir=tmp_path)
    with pytest.raises(LlmUnavailableError, match="PARLE_LLM_URL"):
        await LlmServer(settings).start()


async def test_a_server_that_dies_at_start_up_is_reported(tmp_path: Path) -> None:
    settings = load_settings(llm_url="http://127.0.0.1:9/v1", cache_dir=tmp_path)
    server = LlmServer(settings, gguf=tmp_path / "missing.gguf")
    with pytest.raises(LlmUnavailableError, match="exited during start-up"):
        await server.start()
