"""Headless Chromium for the tests that open pages as a user would (the reports, the asv
dashboard): needs the Debian packages ``chromium`` + ``chromium-driver`` and the
``selenium`` Python package, and skips the test saying what to install when one is absent."""
from __future__ import annotations

import shutil

import pytest

__all__ = ["CHROMIUM", "CHROMEDRIVER", "headless_chromium"]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
CHROMEDRIVER = shutil.which("chromedriver")


def headless_chromium(*args: str, size: str = "1280,2000", network_log: bool = False):
    """A selenium Chrome driver on headless Chromium with the browser console logged (and
    every network request, with ``network_log``); ``args`` are extra command-line flags."""
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip("headless Chromium is not installed: apt-get install chromium chromium-driver")
    webdriver = pytest.importorskip(
        "selenium.webdriver", reason="selenium is not installed: pip install -e '.[dev]'")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={size}", *args):
        options.add_argument(arg)
    logs = {"browser": "ALL", **({"performance": "ALL"} if network_log else {})}
    options.set_capability("goog:loggingPrefs", logs)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
