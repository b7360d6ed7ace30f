from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
AUDIO = Path(os.environ.get("PARLE_TEST_AUDIO", REPO.parent / "shared" / "audio"))


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


@pytest.fixture(scope="session")
def audio_dir() -> Path:
    if not AUDIO.is_dir():
        pytest.fail(f"test audio not found at {AUDIO} (set PARLE_TEST_AUDIO)")
    return AUDIO


@pytest.fixture(scope="session")
def references(audio_dir: Path) -> list[dict[str, Any]]:
    return list(json.loads((audio_dir / "references.json").read_text("utf-8")))
