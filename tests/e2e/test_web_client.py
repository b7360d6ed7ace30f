"""The web client at `/` in real headless Chromium, with Chromium's fake microphone playing a
learner clip: push to talk, release, and the page shows the transcript, the reply and the
timings, and plays the audio. A screenshot is kept in test-artifacts/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.browser import NEEDS_CHROMIUM, headless_chromium
from harness.wer import word_error_rate

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"

pytestmark = NEEDS_CHROMIUM


@pytest.fixture
def browser(audio_dir: Path, tmp_path: Path) -> Iterator[Any]:
    microphone = str(audio_dir / "utterances/u01.wav")
    driver = headless_chromium(tmp_path / "profile", microphone=microphone)
    try:
        yield driver
    finally:
        driver.quit()


def test_a_spoken_turn_in_the_page(server: str, browser: Any) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(server + "/")
    talk = browser.find_element(By.ID, "talk")
    WebDriverWait(browser, 30).until(lambda d: talk.is_enabled())
    # Hold the button while the fake microphone plays the 4.5 s clip, then release.
    ActionChains(browser).click_and_hold(talk).pause(5.5).release().perform()
    WebDriverWait(browser, 120).until(
        lambda d: (
            d.execute_script("return window.parle.completes") >= 1
            or d.execute_script("return window.parle.errors.length") > 0
        )
    )
    state = browser.execute_script("return window.parle")
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "web_client.png"))
    assert state["errors"] == []
    heard = state["transcripts"][0]
    assert word_error_rate("Olá, meu nome é Ana e eu sou dos Estados Unidos.", heard) <= 0.34
    assert state["replies"] and state["replies"][0].strip()
    assert state["levels"] and state["levels"][0] in ("A1", "A2", "B1", "B2", "C1", "C2")
    assert "nível estimado" in browser.find_element(By.ID, "levelShown").text
    WebDriverWait(browser, 30).until(lambda d: d.execute_script("return window.parle.chunksPlayed"))
    timing = browser.find_element(By.ID, "timing").text
    assert "primeira fala" in timing and "ms" in timing
    bubbles = browser.find_elements(By.CSS_SELECTOR, ".msg")
    assert [b.get_attribute("class") for b in bubbles][:2] == ["msg learner", "msg tutor"]


# --- the WebRTC mode ----------------------------------------------------------------------


class FakeLiveKitSignal:
    """Stands in for livekit-server's signalling endpoint (the real one needs the server
    binary): records how the page's livekit-client tries to join, then refuses it."""

    def __init__(self) -> None:
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import PlainTextResponse
        from starlette.routing import Route, WebSocketRoute
        from starlette.websockets import WebSocket

        from harness.uvicorn_thread import UvicornThread

        self.tokens: list[str] = []

        async def signal(ws: WebSocket) -> None:
            self.tokens.append(ws.query_params.get("access_token", ""))
            await ws.close(code=1008)

        async def validate(request: Request) -> PlainTextResponse:
            self.tokens.append(request.query_params.get("access_token", ""))
            return PlainTextResponse("no LiveKit server here", status_code=401)

        routes = [WebSocketRoute(p, signal) for p in ("/rtc", "/rtc/v1")]
        routes += [Route(p, validate) for p in ("/rtc/validate", "/rtc/v1/validate")]
        self.thread = UvicornThread(Starlette(routes=routes), lifespan="off").start()
        self.url = self.thread.base_url.replace("http", "ws")


@pytest.fixture
def livekit_signal() -> Iterator[FakeLiveKitSignal]:
    fake = FakeLiveKitSignal()
    yield fake
    fake.thread.stop()


def livekit_client_installed() -> bool:
    from bridge.routes.page import LIVEKIT_CLIENT_FILE

    return LIVEKIT_CLIENT_FILE.is_file()


@pytest.mark.skipif(
    not livekit_client_installed(), reason="the livekit-client bundle: `make web-vendor` (npm)"
)
def test_webrtc_mode_joins_the_room_its_token_names(
    browser: Any, livekit_signal: FakeLiveKitSignal
) -> None:
    from livekit import api
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    from tests.doubles.stack import make_stack

    secret = "s" * 40
    with make_stack(
        livekit_url=livekit_signal.url, livekit_api_key="APIpage", livekit_api_secret=secret
    ) as stack:
        browser.get(stack.url + "/")
        WebDriverWait(browser, 30).until(
            lambda d: d.execute_script("return window.parle.webrtc.offered")
        )
        Select(browser.find_element(By.ID, "level")).select_by_visible_text("B1")
        call = browser.find_element(By.ID, "call")
        assert call.is_displayed() and call.text == "Chamar por WebRTC"
        call.click()
        WebDriverWait(browser, 30).until(
            lambda d: d.execute_script("return window.parle.webrtc.state") == "failed"
        )
        state = browser.execute_script("return window.parle")
        assert browser.find_element(By.ID, "talk").is_enabled()  # push-to-talk is back

    # The page fetched a token and livekit-client presented it to LiveKit's signalling.
    assert livekit_signal.tokens, "livekit-client never reached the LiveKit URL"
    claims = api.TokenVerifier("APIpage", secret).verify(livekit_signal.tokens[0])
    grant = state["webrtc"]["grant"]
    assert claims.video.room == grant["room"] and claims.video.room_join
    assert claims.identity == grant["identity"]
    # The learner the page remembers is the one the agent will know in the room.
    assert claims.attributes == {
        "parle.level": "B1", "parle.learner": state["learnerId"], "parle.tenant": "default"
    }  # fmt: skip
    assert [a.agent_name for a in claims.room_config.agents] == ["parle-tutor"]
    # No LiveKit server there: a clear error.
    assert state["errors"] and state["errors"][0].startswith("Não consegui iniciar a chamada")


def test_no_webrtc_offer_without_livekit(browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from tests.doubles.stack import make_stack

    with make_stack() as stack:
        browser.get(stack.url + "/")
        talk = browser.find_element(By.ID, "talk")
        WebDriverWait(browser, 30).until(lambda d: talk.is_enabled())
        assert not browser.find_element(By.ID, "call").is_displayed()
        assert browser.execute_script("return window.parle.webrtc.offered") is False
