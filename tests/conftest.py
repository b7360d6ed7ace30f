from __future__ import annotations

import asyncio
import json
import os
import shutil
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

if TYPE_CHECKING:
    from parle.engines.languagetool import LanguageToolServer

T = TypeVar("T")

REPO = Path(__file__).resolve().parent.parent
# The test clips live in the repository (tests/data/audio/README.md says what each one is).
AUDIO = Path(os.environ.get("PARLE_TEST_AUDIO", REPO / "tests" / "data" / "audio"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    try:
        import torch

        has_cuda = bool(torch.cuda.is_available())
    except Exception:
        has_cuda = False
    skip_gpu = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        category = Path(item.fspath).parent.name
        if category in ("unit", "integration", "e2e", "gpu"):
            item.add_marker(getattr(pytest.mark, category))
        if "gpu" in item.keywords and not has_cuda:
            item.add_marker(skip_gpu)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_terminal_summary(terminalreporter: Any) -> Any:
    """After pytest's own summary, one line per reason tests were skipped: how many, and what
    to install to run them (the reason says it), so that a run never skips quietly."""
    result = yield
    reasons: dict[str, int] = {}
    for report in terminalreporter.stats.get("skipped", []):
        longrepr = report.longrepr
        reason = str(longrepr[2]) if isinstance(longrepr, tuple) else str(longrepr)
        reason = reason.removeprefix("Skipped: ")
        reasons[reason] = reasons.get(reason, 0) + 1
    for reason, count in sorted(reasons.items(), key=lambda item: -item[1]):
        terminalreporter.write_line(f"{count} skipped: {reason}", yellow=True, bold=True)
    return result


@pytest.fixture(scope="session")
def audio_dir() -> Path:
    if not AUDIO.is_dir():
        pytest.fail(f"test audio not found at {AUDIO} (set PARLE_TEST_AUDIO)")
    return AUDIO


def write_over_cap_wav(path: Path, *, data_bytes: int = 12 * 1024 * 1024) -> Path:
    """A valid 48 kHz stereo PCM16 WAV of digital silence, 12 MiB of samples (~65.5 s): over
    the 10 MB upload cap, yet not absurdly long. Made at test time rather than committed."""
    rate, channels = 48_000, 2
    header = b"".join(
        [
            b"RIFF",
            (36 + data_bytes).to_bytes(4, "little"),
            b"WAVEfmt ",
            (16).to_bytes(4, "little"),
            (1).to_bytes(2, "little"),
            channels.to_bytes(2, "little"),
            rate.to_bytes(4, "little"),
            (rate * channels * 2).to_bytes(4, "little"),
            (channels * 2).to_bytes(2, "little"),
            (16).to_bytes(2, "little"),
            b"data",
            data_bytes.to_bytes(4, "little"),
        ]
    )
    with path.open("wb") as out:
        out.write(header)
        out.write(bytes(data_bytes))
    return path


class LoopThread:
    """An event loop of its own in a background thread, for what lives as long as the test
    session (an asyncio subprocess belongs to the loop that made it; each test has its own)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


@pytest.fixture(scope="session")
def languagetool_server() -> Iterator[LanguageToolServer]:
    """ONE real LanguageTool (pt-BR) for the whole session, launched by `LanguageToolServer` on a
    free loopback port from the jars `make setup` fetched, warmed up; stopped at the end."""
    if shutil.which("java") is None:
        pytest.skip(
            "needs Java for LanguageTool (Debian: apt-get install default-jre-headless maven, "
            "then make setup)"
        )
    from harness.uvicorn_thread import free_port
    from parle.config import load_settings
    from parle.engines.languagetool import LanguageToolServer

    settings = load_settings(grammar_url=f"http://127.0.0.1:{free_port()}/v2")
    if not any(settings.grammar_lib.glob("languagetool-server-*.jar")):
        pytest.fail(
            f"LanguageTool's jars are not in {settings.grammar_lib}: run make setup "
            "(scripts/languagetool.sh fetches them with Maven)"
        )
    server = LanguageToolServer(settings)
    loop = LoopThread()
    try:
        loop.run(server.start(), timeout=settings.grammar_start_timeout_s + 30)
        yield server
    finally:
        loop.run(server.stop(), timeout=30)
        loop.close()


@pytest.fixture(scope="session")
def languagetool_url(languagetool_server: LanguageToolServer) -> str:
    """The `/v2` URL of the session's LanguageTool (for PARLE_GRAMMAR_URL)."""
    return languagetool_server.url


@pytest.fixture(scope="session")
def references(audio_dir: Path) -> list[dict[str, Any]]:
    return list(json.loads((audio_dir / "references.json").read_text("utf-8")))
