"""The model servers PARLE launches (llama.cpp or vLLM, LanguageTool): how one is ended."""

from __future__ import annotations

import asyncio
import contextlib


async def end_process(process: asyncio.subprocess.Process) -> None:
    """Ask a launched server to stop (SIGTERM), give it 10 s, then kill it; one that has
    already exited is left as it is."""
    if process.returncode is not None:
        return
    process.terminate()
    try:
        await asyncio.wait_for(process.wait(), 10)
    except TimeoutError:
        process.kill()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), 5)
