"""Browser-test fixtures: Debian's Chromium driven headless by Playwright (no browser download)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.async_api import Browser, ConsoleMessage, Page, async_playwright, expect

CHROMIUM = Path(os.environ.get("WARREN_TEST_CHROMIUM", "/usr/bin/chromium"))
"""The system Chromium (Debian package ``chromium``)."""
TIMEOUT_MS = 20_000
"""Waits for the page; generous because the two cores are shared (scrypt, Ray, OpenCode)."""
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


@dataclass
class BrowserPage:
    """A page on the API's origin, with what went wrong in it (console errors, exceptions)."""

    page: Page
    base_url: str
    errors: list[str] = field(default_factory=list)

    def on_console(self, message: ConsoleMessage) -> None:
        """Record console errors (failed loads, CSP violations, uncaught rejections).

        The signed-out probe of ``/api/auth/me`` (401) is how the page learns it must show
        the sign-in form, so that failed load is expected and not recorded.
        """
        if message.type != "error":
            return
        url = str(message.location.get("url", ""))
        if url.endswith("/api/auth/me") and "401" in message.text:
            return
        self.errors.append(f"console: {message.text} ({url})")


@pytest.fixture(scope="session")
def chromium_path() -> Iterator[str]:
    """The Chromium binary; the tests fail (not skip) without it."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} missing: install Debian's package: apt-get install -y chromium")
    yield str(CHROMIUM)


@pytest.fixture(scope="session")
async def browser(chromium_path: str) -> AsyncIterator[Browser]:
    """One headless Chromium for the test session."""
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


@pytest.fixture
async def web(browser: Browser, api_url: str) -> AsyncIterator[BrowserPage]:
    """A fresh browser context (own cookies) and page; records console errors and exceptions."""
    context = await browser.new_context(base_url=api_url)
    context.set_default_timeout(TIMEOUT_MS)
    expect.set_options(timeout=TIMEOUT_MS)
    page = await context.new_page()
    result = BrowserPage(page=page, base_url=api_url)
    page.on("pageerror", lambda exc: result.errors.append(f"pageerror: {exc}"))
    page.on("console", result.on_console)
    yield result
    await context.close()
