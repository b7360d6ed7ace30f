from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from bridge.app import create_app
from parle.config import load_settings
from tests.doubles.uvicorn_thread import UvicornThread, free_port


@pytest.fixture(scope="session")
def server() -> Iterator[str]:
    """The PARLE server on the `cpu` profile (real engines), ready, on a loopback port."""
    settings = load_settings(profile="cpu", llm_url=f"http://127.0.0.1:{free_port()}/v1")
    thread = UvicornThread(create_app(settings), ws_max_size=settings.max_upload_bytes + 65536)
    thread.start()
    deadline = time.monotonic() + 180
    while httpx.get(f"{thread.base_url}/ready").status_code != 200:
        assert time.monotonic() < deadline, "the engines did not load in time"
        time.sleep(0.5)
    yield thread.base_url
    thread.stop()
