"""The web client in a real browser: Playwright driving the system's chromium.

Never a browser Playwright downloads: CI installs Debian's `chromium`, and
tests are skipped where it or Playwright is missing.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import AsyncIterator
from typing import Any

import pytest

CHROMIUM = os.environ.get("NEXUS_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# Keep the browser from reaching out to the internet on its own.
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--no-first-run",
]
TIMEOUT_MS = 8000

try:
    from playwright.async_api import Browser, Page, async_playwright, expect
except ImportError:  # pragma: no cover - depends on the machine
    async_playwright = expect = None  # type: ignore[assignment]


def needs_browser() -> pytest.MarkDecorator:
    """Skips a test where Playwright or chromium is not installed."""
    missing = async_playwright is None or not os.path.exists(CHROMIUM)
    return pytest.mark.skipif(missing, reason="needs playwright and chromium")


class Tab:
    """One page of the web client, with every console error and page error kept."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.errors: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        page.set_default_timeout(TIMEOUT_MS)
        expect.set_options(timeout=TIMEOUT_MS)

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.errors.append(f"console: {message.text}")

    async def register(self, base: str, name: str, password: str, remember: bool = False) -> None:
        """Opens the page and registers `name` through the form."""
        page = self.page
        await page.goto(base + "/")
        await page.click("#switch-mode")
        await page.fill("#username", name)
        await page.fill("#password", password)
        await page.fill("#confirm", password)
        if remember:
            await page.check("#remember")
        await page.click("#submit")
        await expect(page.locator("#chat")).to_be_visible()
        await expect(page.locator("#title")).to_have_text("#general")

    async def type(self, text: str) -> None:
        """Types a line in the input and sends it with Enter."""
        await self.page.fill("#input", text)
        await self.page.press("#input", "Enter")

    def messages(self) -> Any:
        return self.page.locator("#messages")

    async def buffer(self, label: str) -> None:
        await self.page.locator(".buffer", has_text=label).first.click()
        await expect(self.page.locator("#title")).to_have_text(label)


class BrowserSession:
    """A browser for one test; every tab opened in it must end without errors."""

    def __init__(self, browser: Browser) -> None:
        self.browser = browser
        self.tabs: list[Tab] = []
        self.expected: list[str] = []  # patterns of errors a test causes on purpose

    def errors(self) -> list[str]:
        return [
            error
            for tab in self.tabs
            for error in tab.errors
            if not any(re.search(pattern, error) for pattern in self.expected)
        ]

    async def tab(self, width: int = 1100, height: int = 700) -> Tab:
        context = await self.browser.new_context(viewport={"width": width, "height": height})
        tab = Tab(await context.new_page())
        self.tabs.append(tab)
        return tab


@contextlib.asynccontextmanager
async def browser_session() -> AsyncIterator[BrowserSession]:
    assert async_playwright is not None
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        session = BrowserSession(browser)
        try:
            yield session
        finally:
            await browser.close()
