"""Finds the OpenAI-compatible LLM server at `PARLE_LLM_URL`, or launches one there."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from parle.config import Settings
from parle.engines.processes import end_process
from parle.errors import LlmUnavailableError

log = logging.getLogger(__name__)


def llm_host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or (443 if parts.scheme == "https" else 80)


def llamacpp_command(settings: Settings, gguf: Path) -> list[str]:
    """`llama-cpp-python`'s OpenAI-compatible server for the `cpu` profile."""
    host, port = llm_host_port(settings.llm_url)
    threads = settings.llm_threads or max(1, (os.cpu_count() or 2) - 1)
    return [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(gguf),
        "--model_alias",
        settings.llm_model,
        "--host",
        host,
        "--port",
        str(port),
        "--n_ctx",
        str(settings.llm_context),
        "--n_threads",
        str(threads),
        # Prefill too: its default is every core, and on a small box a prompt prefilled on the
        # cores Whisper and Kokoro are using stalled for seconds (0.16-6.4 s for a few dozen
        # tokens under load; 0.12-0.27 s on one thread).
        "--n_threads_batch",
        str(threads),
        # No `--cache`: its RAM cache saves and restores whole model states around every
        # request, which costs more than it saves here; without it llama.cpp reuses the longest
        # prefix it holds, the system prompt that every session at a level shares
        # (bench/bench_prefix_cache.py).
        # Its default cuts a streaming reply short whenever another request arrives: with
        # several learners, every reply but the newest would end mid-sentence.
        "--interrupt_requests",
        "false",
    ]


def vllm_command(settings: Settings) -> list[str]:
    """`vllm serve` for the `gpu`/`legacy` profiles (vLLM is its own process, never imported)."""
    host, port = llm_host_port(settings.llm_url)
    command = [
        "vllm",
        "serve",
        settings.llm_model,
        "--host",
        host,
        "--port",
        str(port),
        "--max-model-len",
        str(settings.llm_context),
        "--gpu-memory-utilization",
        str(settings.llm_gpu_memory_utilization),
        "--enable-prefix-caching",
    ]
    if "ministral" in settings.llm_model.lower() or "mistralai/" in settings.llm_model.lower():
        command += [
            "--tokenizer_mode",
            "mistral",
            "--config_format",
            "mistral",
            "--load_format",
            "mistral",
        ]
    return command


class LlmServer:
    """Makes sure an LLM server answers at `settings.llm_url`.

    A server already answering is used as it is. Otherwise, when launching is allowed, the
    profile's server is started there (llama.cpp for `cpu`, vLLM for `gpu`/`legacy`), PARLE
    waits until it answers, and `stop()` ends it. Never launched twice.
    """

    def __init__(self, settings: Settings, *, gguf: Path | None = None) -> None:
        self.settings = settings
        self.gguf = gguf
        self.launched = False
        self._process: asyncio.subprocess.Process | None = None
        self._log_path = settings.cache_dir / "llm-server.log"

    def command(self) -> list[str]:
        if self.settings.llm_backend == "vllm":
            return vllm_command(self.settings)
        if self.gguf is None:
            raise LlmUnavailableError("No GGUF model was resolved for the llama.cpp server.")
        return llamacpp_command(self.settings, self.gguf)

    async def is_answering(self) -> bool:
        url = self.settings.llm_url.rstrip("/") + "/models"
        try:
            async with httpx.AsyncClient(timeout=2.0) as client:
                response = await client.get(url)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    async def start(self) -> None:
        """Use the server at `llm_url`, or launch one and wait until it answers."""
        if self._process is not None or await self.is_answering():
            return
        if not self.settings.llm_launch or self.settings.llm_backend == "external":
            raise LlmUnavailableError(
                f"No LLM server answers at PARLE_LLM_URL={self.settings.llm_url} and "
                "PARLE_LLM_LAUNCH is off."
            )
        command = self.command()
        log.info("launching llm server", extra={"backend": self.settings.llm_backend})
        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        niceness = self.settings.llm_nice if self.settings.llm_backend == "llamacpp" else 0
        with self._log_path.open("ab") as log_file:
            self._process = await asyncio.create_subprocess_exec(
                *command,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                # On a small CPU box the TTS of the first piece must never wait for the LLM,
                # which only has to stay ahead of speech: it gets the cores TTS leaves free.
                preexec_fn=(lambda: os.nice(niceness)) if niceness else None,
            )
        self.launched = True
        deadline = time.monotonic() + self.settings.llm_start_timeout_s
        while time.monotonic() < deadline:
            if self._process.returncode is not None:
                code = self._process.returncode
                self._process = None
                raise LlmUnavailableError(
                    f"The LLM server exited during start-up (code {code}); see {self._log_path}."
                )
            if await self.is_answering():
                return
            await asyncio.sleep(0.25)
        await self.stop()
        raise LlmUnavailableError(
            f"The LLM server did not answer within {self.settings.llm_start_timeout_s:g} s; "
            f"see {self._log_path}."
        )

    async def stop(self) -> None:
        """Stop the server if PARLE launched it; one found running is left alone."""
        process, self._process = self._process, None
        if process is not None:
            await end_process(process)
