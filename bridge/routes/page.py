"""The web client: the page, the LiveKit browser bundle, and what the page may offer."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from bridge.deps import ServicesDep
from bridge.errors import ApiError

router = APIRouter()

STATIC = Path(__file__).resolve().parent.parent / "static"
# Fetched from npm by `make web-vendor` (and the Docker build), never committed.
LIVEKIT_CLIENT_FILE = STATIC / "vendor" / "livekit-client.umd.js"
LIVEKIT_CLIENT_PATH = "/vendor/livekit-client.umd.js"


@router.get("/", include_in_schema=False)
async def index() -> FileResponse:
    return FileResponse(STATIC / "index.html", media_type="text/html")


@router.get(LIVEKIT_CLIENT_PATH, include_in_schema=False)
async def livekit_client() -> FileResponse:
    """The `livekit-client` browser bundle for the page's WebRTC mode (`make web-vendor`)."""
    if not LIVEKIT_CLIENT_FILE.is_file():
        raise ApiError(404, "The LiveKit web client is not installed here.", "not_installed")
    return FileResponse(LIVEKIT_CLIENT_FILE, media_type="text/javascript")


@router.get("/api/client-config")
async def client_config(services: ServicesDep) -> dict[str, object]:
    """What the web page may offer: a WebRTC call when LiveKit is configured and the browser
    bundle is installed (otherwise the WebSocket mode only)."""
    installed = LIVEKIT_CLIENT_FILE.is_file()
    return {
        "livekit": services.settings.livekit_configured and installed,
        "livekit_client": LIVEKIT_CLIENT_PATH if installed else None,
    }
