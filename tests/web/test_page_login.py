"""Registering in the web page when the name is taken, in a real browser against a
real server: the passwords typed stay, the name is selected to be changed, and
one Enter registers the next name."""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD
from tests.web.browser import expect, needs_browser
from tests.web.conftest import WebRunning

pytestmark = needs_browser()

DESK = (1280, 800)
PHONE = (390, 844)


@pytest.mark.parametrize("size", [DESK, PHONE], ids=["desk", "phone"])
async def test_a_taken_name_keeps_the_passwords_and_asks_only_for_another_name(
    web: WebRunning, browser, size: tuple[int, int]
) -> None:
    """Nothing before login says whether a name is free, so the register reply
    does: the form says the name is taken, keeps both passwords, and selects the
    name; typing another and Enter registers it."""
    await web.running.user("bob")
    tab = await browser.tab(*size)
    page = tab.page
    await page.goto(web.base + "/")
    await page.click("#switch-mode")
    await page.fill("#username", "Bob")
    await page.fill("#password", PASSWORD)
    await page.fill("#confirm", PASSWORD)
    await page.press("#confirm", "Enter")
    await expect(page.locator("#login-error")).to_have_text(
        "Bob is taken: type another name, the passwords are kept"
    )
    assert await page.evaluate("document.activeElement.id") == "username"
    selected = "[document.activeElement.selectionStart, document.activeElement.selectionEnd]"
    assert await page.evaluate(selected) == [0, 3]
    await expect(page.locator("#password")).to_have_value(PASSWORD)
    await expect(page.locator("#confirm")).to_have_value(PASSWORD)
    await expect(page.locator("#submit")).to_have_text("Register")
    await page.keyboard.type("bobcat")
    await page.keyboard.press("Enter")
    await expect(page.locator("#chat")).to_be_visible()
    await expect(tab.messages()).to_contain_text("welcome, bobcat")


async def test_a_taken_name_is_said_as_soon_as_it_is_typed(web: WebRunning, browser) -> None:
    """Registering: leaving the name field asks the server (`available`), so a
    taken name is said before any password is typed; a free one clears it."""
    await web.running.user("bob")
    tab = await browser.tab(*DESK)
    page = tab.page
    await page.goto(web.base + "/")
    await page.click("#switch-mode")
    await page.fill("#username", "Bob")
    await page.press("#username", "Tab")
    await expect(page.locator("#login-error")).to_have_text("Bob is taken: choose another name")
    await expect(page.locator("#password")).to_have_value("")
    await page.fill("#username", "bobcat")
    await page.press("#username", "Tab")
    await expect(page.locator("#login-error")).to_have_text("")
