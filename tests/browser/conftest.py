"""Headless Chromium for the browser tests: Debian's own package, driven by Playwright.

Playwright never downloads a browser here (no `playwright install`): it launches the
system's /usr/bin/chromium, which CI installs with apt. Without it the tests are
skipped, saying how to get it; in CI (CI=true) they fail instead.
"""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright

from tests.support.launchers import start_api
from tests.support.runner import Process, child_env

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 10_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.is_file():
        reason = (
            f"{CHROMIUM} is missing: the browser tests drive Debian's Chromium. Install it with "
            "`apt-get install -y --no-install-recommends chromium chromium-driver` "
            "(not `playwright install`)."
        )
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh tab (empty sessionStorage) that fails the test if the page's own CSP
    blocks anything of the page's own."""
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    blocked: list[str] = []

    def watch(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            blocked.append(message.text)

    page.on("console", watch)
    yield page
    context.close()
    assert not blocked, blocked


@pytest.fixture(scope="module")
def api_url() -> Iterator[str]:
    """A real API server (uvicorn), as the browser would meet it."""
    api: Process
    api, base_url = start_api(child_env())
    yield base_url
    api.stop()
