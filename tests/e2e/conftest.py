from __future__ import annotations

from collections.abc import Iterator

import pytest

from bridge.app import create_app
from harness.uvicorn_thread import UvicornThread, free_port
from parle.config import load_settings


@pytest.fixture(scope="session")
def server() -> Iterator[str]:
    """The PARLE server on the `cpu` profile (real engines), ready, on a loopback port."""
    settings = load_settings(profile="cpu", llm_url=f"http://127.0.0.1:{free_port()}/v1")
    thread = UvicornThread(create_app(settings), ws_max_size=settings.max_upload_bytes + 65536)
    yield thread.start().wait_ready()
    thread.stop()
