"""The web client at `/` in real headless Chromium, with Chromium's fake microphone playing a
learner clip: push to talk, release, and the page shows the transcript, the reply and the
timings, and plays the audio. A screenshot is kept in test-artifacts/."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.wer import word_error_rate

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="needs Debian's chromium and chromium-driver (.ci/run installs them)",
)


@pytest.fixture
def browser(audio_dir: Path, tmp_path: Path) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={audio_dir / 'utterances/u01.wav'}",
        "--autoplay-policy=no-user-gesture-required",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=900,900",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
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
