"""The learner's side of the web page in real headless Chromium: their id persists in the
browser, typed turns build their record, "Terminar" shows their progress report (charts
rendered by the server as SVG), and the report reads on a phone-sized screen. Screenshots
are kept in test-artifacts/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.browser import NEEDS_CHROMIUM, headless_chromium
from tests.doubles.stack import REPLY, make_stack

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"

pytestmark = NEEDS_CHROMIUM

CORRECTION = (
    '<correcao>{"original": "eu sabo", "corrected": "eu sei", '
    '"explanation": "saber é irregular", "kind": "grammar"}</correcao>'
)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    driver = headless_chromium(tmp_path / "profile", size="900,1000")
    try:
        yield driver
    finally:
        driver.quit()


def type_turn(browser: Any, text: str, completes: int) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    box = browser.find_element(By.ID, "text")
    box.send_keys(text)
    browser.find_element(By.CSS_SELECTOR, "#typed button").click()
    WebDriverWait(browser, 30).until(
        lambda d: d.execute_script("return window.parle.completes") >= completes
    )


def test_the_page_keeps_the_learner_and_shows_their_report(browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    with make_stack(database_url=f"sqlite:///{tmp_path / 'page.db'}") as stack:
        browser.get(stack.url + "/")
        talk = browser.find_element(By.ID, "talk")
        WebDriverWait(browser, 30).until(lambda d: talk.is_enabled())
        learner = browser.execute_script("return window.parle.learnerId")
        assert learner.startswith("web-")
        type_turn(browser, "Olá, eu me chamo Ana e gosto de praia.", 1)
        stack.llm.tokens = [*REPLY, CORRECTION]
        type_turn(browser, "Ontem eu sabo nadar no mar.", 2)
        type_turn(browser, "Eu sabo falar inglês também.", 3)

        browser.find_element(By.ID, "finish").click()
        WebDriverWait(browser, 30).until(lambda d: d.execute_script("return window.parle.report"))
        report = browser.execute_script("return window.parle.report")
        assert report["learner_id"] == learner and report["turns"] == 3
        assert report["corrections"]["by_kind"] == {"grammar": 2}
        assert report["facts"]["name"] == ["Ana"]
        frame = browser.find_element(By.ID, "report")
        assert frame.is_displayed()
        browser.switch_to.frame(frame)
        WebDriverWait(browser, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".chart svg"))
        charts = browser.find_elements(By.CSS_SELECTOR, ".chart svg")
        assert len(charts) == 2  # the level over time, corrections by kind (typed: no pace)
        assert "eu sei" in browser.find_element(By.TAG_NAME, "main").text
        browser.switch_to.default_content()
        ARTIFACTS.mkdir(exist_ok=True)
        browser.save_screenshot(str(ARTIFACTS / "learner_report_page.png"))

        # The same browser, later: the same learner, their record continues.
        browser.get(stack.url + "/")
        WebDriverWait(browser, 30).until(lambda d: d.find_element(By.ID, "talk").is_enabled())
        assert browser.execute_script("return window.parle.learnerId") == learner


def test_the_report_reads_on_a_phone(tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    from tests.integration.test_learners_server import sse_turn

    with make_stack(database_url=f"sqlite:///{tmp_path / 'phone.db'}") as stack:
        sse_turn(stack, session_id="a", learner_id="phone-learner", level="A2")
        stack.stt.text = "Ontem eu sabo nadar no mar."  # the words the LLM's block corrects
        stack.llm.tokens = [*REPLY, CORRECTION]
        sse_turn(stack, session_id="b", learner_id="phone-learner", level="B1")
        sse_turn(stack, session_id="b", learner_id="phone-learner")
        url = f"{stack.url}/api/learners/phone-learner/report"
        assert httpx.get(url, timeout=10).status_code == 200
        driver = headless_chromium(
            tmp_path / "phone-profile", size="412,915"
        )  # a common phone's CSS pixels
        try:
            driver.get(url)
            charts = driver.find_elements(By.CSS_SELECTOR, ".chart svg")
            assert len(charts) == 3  # level, words per minute per session, corrections
            width = driver.execute_script("return document.documentElement.clientWidth")
            scroll = driver.execute_script("return document.documentElement.scrollWidth")
            assert scroll <= width  # nothing wider than the screen
            for chart in charts:
                assert 0 < chart.size["width"] <= width
            ARTIFACTS.mkdir(exist_ok=True)
            height = driver.execute_script("return document.documentElement.scrollHeight")
            driver.set_window_size(412, min(height + 120, 4000))
            driver.save_screenshot(str(ARTIFACTS / "learner_report_phone.png"))
        finally:
            driver.quit()
