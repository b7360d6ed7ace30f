"""Headless Debian Chromium driven by selenium, as the browser tests start it: on loopback only
(no background networking), a throwaway profile, and optionally a fake microphone playing a
clip."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
NEEDS_CHROMIUM = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason=(
        "needs Debian's chromium and chromium-driver: `apt-get install chromium chromium-driver`"
        " (.ci/run installs them)"
    ),
)


def headless_chromium(
    profile: Path, *, size: str = "900,900", microphone: str | None = None
) -> Any:
    """A selenium driver; `microphone` is the `--use-file-for-fake-audio-capture` value (a WAV,
    `%noloop` after it to play it once), which also grants the page its microphone."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    flags = [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        f"--window-size={size}",
    ]
    if microphone is not None:
        flags += [
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={microphone}",
            "--autoplay-policy=no-user-gesture-required",
        ]
    for flag in flags:
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
