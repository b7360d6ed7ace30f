from __future__ import annotations

from collections.abc import Iterator

import pytest

from parle.config import Settings, load_settings
from parle.engines.kokoro import KokoroSynthesizer
from parle.engines.whisper import WhisperTranscriber
from parle.runtime import build_synthesizer, build_transcriber


@pytest.fixture(scope="session")
def cpu_settings() -> Settings:
    return load_settings(profile="cpu")


@pytest.fixture(scope="session")
def whisper(cpu_settings: Settings) -> Iterator[WhisperTranscriber]:
    transcriber = build_transcriber(cpu_settings)
    transcriber.load()
    yield transcriber


@pytest.fixture(scope="session")
def kokoro(cpu_settings: Settings) -> Iterator[KokoroSynthesizer]:
    synthesizer = build_synthesizer(cpu_settings)
    synthesizer.load()
    yield synthesizer


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL cluster on loopback (tests/doubles/postgres.py): its URL."""
    from tests.doubles.postgres import postgres_bin, postgres_cluster

    bin_dir = postgres_bin()
    if bin_dir is None:
        pytest.skip("needs PostgreSQL's server binaries (Debian: apt-get install postgresql)")
    with postgres_cluster(bin_dir) as url:
        yield url
