"""What the web page does with text it cannot send, in a real browser against a
real server: a message past the protocol's limit is stopped before it leaves and
stays in the input, one the server refuses comes back to the input, and text
typed while the server is down waits and goes, in order, once reconnected."""

from __future__ import annotations

import pytest

from nexus.protocol.requests import MESSAGE_MAX
from tests.conftest import PASSWORD
from tests.web.browser import expect, needs_browser
from tests.web.conftest import WebRunning

pytestmark = needs_browser()

DESK = (1280, 800)
PHONE = (390, 844)


@pytest.mark.parametrize("size", [DESK, PHONE], ids=["desk", "phone"])
async def test_a_message_past_the_limit_is_stopped_and_kept_in_the_input(
    web: WebRunning, browser, size: tuple[int, int]
) -> None:
    """4,500 characters are not sent: the input says how many there are against
    the limit while typing, Enter leaves the text where it is and says why, and
    once cut to the limit (counted in characters, not UTF-16 units) it goes."""
    tab = await browser.tab(*size)
    await tab.register(web.base, "ana", PASSWORD)
    bob = await web.running.user("bob")
    await bob.ok("join", room="general")
    page = tab.page
    long = "x" * 4500
    await page.fill("#input", long)
    count = page.locator("#count")
    await expect(count).to_be_visible()
    await expect(count).to_have_text(f"4,500 / {MESSAGE_MAX:,}")
    await page.press("#input", "Enter")
    error = tab.messages().locator(".note.error .text").last
    await expect(error).to_have_text(
        "a message has at most 4,000 characters and this one has 4,500: nothing was sent,"
        " the text is still in the input"
    )
    await expect(page.locator("#input")).to_have_value(long)
    await page.fill("#input", "😀" * MESSAGE_MAX)  # 8,000 UTF-16 units, 4,000 characters
    await expect(count).not_to_have_class("count over")
    await page.press("#input", "Enter")
    said = await bob.event("message", **{"from": "ana"})
    assert said["text"] == "😀" * MESSAGE_MAX
    await expect(page.locator("#input")).to_have_value("")
    await expect(count).to_be_hidden()
    await bob.no_event("message", wait=0.2)


@pytest.mark.parametrize("size", [DESK, PHONE], ids=["desk", "phone"])
async def test_text_the_server_refuses_comes_back_to_the_input(
    web: WebRunning, browser, size: tuple[int, int]
) -> None:
    """Muted in a room, what ana types there is refused: one line says so, and the
    text is back in the input to keep, edit or send elsewhere."""
    bob = await web.running.user("bob")
    await bob.ok("create", room="den")
    tab = await browser.tab(*size)
    await tab.register(web.base, "ana", PASSWORD)
    await tab.type("/join den")
    await expect(tab.page.locator("#title")).to_have_text("#den")
    await bob.ok("mute", room="den", username="ana")
    await expect(tab.messages()).to_contain_text("bob muted you in #den")
    await tab.type("a long thought\nthat took a while to write")
    await expect(tab.messages().locator(".note.error .text").last).to_have_text(
        "not sent to #den: you are muted in #den (muted); the text is back in the input"
    )
    await expect(tab.page.locator("#input")).to_have_value(
        "a long thought\nthat took a while to write"
    )


async def test_text_typed_while_the_server_is_down_is_sent_in_order_once_back(
    start_web, browser
) -> None:
    """With the server down, lines typed in a room and in a conversation are kept
    (the page says so), and are sent once the page has logged in again, in the
    order typed, each once."""
    web = await start_web()
    tab = await browser.tab(*DESK)
    await tab.register(web.base, "ana", PASSWORD, remember=True)
    bob = await web.running.user("bob")
    await bob.ok("join", room="general")
    await bob.ok("dm", to="ana", text="around?")
    await expect(tab.page.locator(".buffer", has_text="bob")).to_be_visible()
    browser.expected.append(r"WebSocket connection to .* failed")
    running = web.running
    config = running.server.config
    await running.close()
    await expect(tab.page.locator("#status")).to_contain_text("reconnecting")
    await tab.type("first while away")
    await tab.type("second while away")
    await expect(tab.messages().locator(".note .text").last).to_have_text(
        "offline: queued for #general, sent once reconnected"
    )
    await expect(tab.page.locator("#input")).to_have_value("")
    await tab.buffer("bob")
    await tab.type("and a word for bob")
    again = await start_web(data=config.data, port=running.port, web_port=web.web_port)
    await expect(tab.page.locator("#status")).to_have_text("online", timeout=20000)
    await tab.buffer("#general")
    texts = tab.messages().locator(".msg .text")
    await expect(texts.last).to_have_text("second while away")
    bob = await again.running.user("bob", register=False)
    history = await bob.ok("history", room="general")
    mine = [m["text"] for m in history["messages"] if m["from"] == "ana"]
    assert mine == ["first while away", "second while away"]
    dms = await bob.ok("dms", **{"with": "ana"})
    assert [m["text"] for m in dms["messages"]] == ["around?", "and a word for bob"]
