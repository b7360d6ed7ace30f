from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

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


@pytest.fixture(scope="session")
def references(audio_dir: Path) -> list[dict[str, Any]]:
    return list(json.loads((audio_dir / "references.json").read_text("utf-8")))
