from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from bridge.app import create_app
from harness.uvicorn_thread import UvicornThread, free_port
from parle.config import load_settings


@pytest.fixture(scope="session", autouse=True)
def shared_languagetool(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every PARLE these tests start (in process, or `parle serve` in a LiveKit stack, which
    inherits the environment) checks grammar with the session's one LanguageTool, rather than
    each launching a JVM of its own on the default port. Without Java they run on PARLE's own
    rules, as a deployment without Java does."""
    if shutil.which("java") is None:
        yield
        return
    url = request.getfixturevalue("languagetool_url")
    before = os.environ.get("PARLE_GRAMMAR_URL")
    os.environ["PARLE_GRAMMAR_URL"] = url
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("PARLE_GRAMMAR_URL", None)
        else:
            os.environ["PARLE_GRAMMAR_URL"] = before


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The PARLE server on the `cpu` profile (real engines), ready, on a loopback port; its
    learner store a throwaway SQLite file (never the developer's)."""
    database = tmp_path_factory.mktemp("server") / "parle.db"
    settings = load_settings(
        profile="cpu",
        llm_url=f"http://127.0.0.1:{free_port()}/v1",
        database_url=f"sqlite:///{database}",
    )
    thread = UvicornThread(create_app(settings), ws_max_size=settings.max_upload_bytes + 65536)
    yield thread.start().wait_ready()
    thread.stop()
