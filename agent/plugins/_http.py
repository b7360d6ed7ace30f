"""What the three plugins share: PARLE's settings, and httpx errors as the framework's."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from livekit.agents import APIConnectionError, APIStatusError, APITimeoutError

from parle.config import Settings, load_settings

_settings: Settings | None = None


def settings() -> Settings:
    """PARLE's settings, read once per process."""
    global _settings
    if _settings is None:
        _settings = load_settings()
    return _settings


class HttpClientOwner:
    """One lazily created httpx client per plugin instance (made inside the job's loop)."""

    _client: httpx.AsyncClient | None = None

    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient()
        return self._client

    async def close_client(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def server_headers(api_key: str | None, *, room: str | None = None) -> dict[str, str]:
    """The agent's key, and the room it speaks for (the server's per-client limits count
    each room of an agent key on its own)."""
    config = settings()
    # A worker's key by default: only those may write a room's learner record.
    keys = config.agent_key_list or config.api_key_list
    key = api_key or config.server_api_key or next(iter(keys), "")
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    if room:
        headers["X-Parle-Room"] = room
    return headers


def error_message(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.status_code}"


@contextmanager
def framework_errors(what: str) -> Iterator[None]:
    """httpx failures as LiveKit's API errors, so the framework's retries apply."""
    try:
        yield
    except httpx.TimeoutException as exc:
        raise APITimeoutError(f"{what} timed out") from exc
    except httpx.HTTPStatusError as exc:
        raise APIStatusError(
            f"{what}: {error_message(exc.response)}", status_code=exc.response.status_code
        ) from exc
    except httpx.HTTPError as exc:
        raise APIConnectionError(f"{what}: {type(exc).__name__}") from exc
