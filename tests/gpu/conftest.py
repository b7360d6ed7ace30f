from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def whisper_tokenizer() -> Path | None:
    """Whisper's multilingual tokenizer.json for the random-weight Whisper: by default the one
    the `cpu` profile assembles; a GPU box without it is given a copy in
    PARLE_WHISPER_TOKENIZER_JSON."""
    path = os.environ.get("PARLE_WHISPER_TOKENIZER_JSON")
    return Path(path) if path else None
