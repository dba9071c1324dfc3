"""The conversations of an account in the web page, in a real browser against a
real server: every one is listed at login, read or not, the most recently active
first; a server that cannot list them is tolerated."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import PASSWORD
from tests.web.browser import Tab, expect, needs_browser
from tests.web.conftest import WebRunning

pytestmark = needs_browser()

DESK = (1280, 800)
PHONE = (390, 844)
SIZES = pytest.mark.parametrize("size", [DESK, PHONE], ids=["desk", "phone"])


async def _log_in(tab: Tab, base: str, name: str) -> None:
    page = tab.page
    await page.goto(base + "/")
    await page.fill("#username", name)
    await page.fill("#password", PASSWORD)
    await page.click("#submit")
    await expect(page.locator("#chat")).to_be_visible()


async def _drawer(tab: Tab) -> None:
    """Opens the side panel where it folds (a phone); nothing on a desk."""
    if await tab.page.locator("#menu").is_visible():
        await tab.page.click("#menu")
        await expect(tab.page.locator("#sidebar")).to_be_in_viewport()


def _dm_names(tab: Tab) -> Any:
    return tab.page.locator("#dms .buffer .label")


@SIZES
async def test_every_conversation_is_listed_at_login_most_recent_first(
    web: WebRunning, browser, size: tuple[int, int]
) -> None:
    """Conversations read long ago are in the side list after logging in again,
    the most recently active first, with the unread count of the one not read."""
    bob = await web.running.user("bob")
    carol = await web.running.user("carol")
    ana = await web.running.user("ana")
    dave = await web.running.user("dave")
    await carol.ok("dm", to="bob", text="an old one")
    await ana.ok("dm", to="bob", text="a newer one")
    await bob.ok("dms", **{"with": "carol"})  # read: no longer in login's unread
    await bob.ok("dms", **{"with": "ana"})
    await dave.ok("dm", to="bob", text="not read yet")
    await bob.ok("dm", to="bob", text="a note to self")
    tab = await browser.tab(*size)
    await _log_in(tab, web.base, "bob")
    await _drawer(tab)
    await expect(_dm_names(tab)).to_have_text(["bob", "dave", "ana", "carol"])
    dave_entry = tab.page.locator("#dms .buffer", has_text="dave")
    await expect(dave_entry.locator(".count")).to_have_text("1")
    await tab.page.locator("#dms .buffer", has_text="carol").click()
    await expect(tab.page.locator("#title")).to_have_text("carol")
    await expect(tab.messages()).to_contain_text("an old one")
    await carol.ok("dm", to="bob", text="back on top")  # a new message moves it up
    await _drawer(tab)
    await expect(_dm_names(tab)).to_have_text(["carol", "bob", "dave", "ana"])


async def test_a_server_without_the_list_of_conversations_is_tolerated(
    web: WebRunning, browser
) -> None:
    """Where `conversations` is an unknown command, the page lists the conversations
    with unread messages, as login says them, and shows no error."""
    bob = await web.running.user("bob")
    ana = await web.running.user("ana")
    await ana.ok("dm", to="bob", text="unread")
    await bob.ok("quit")
    tab = await browser.tab(*DESK)
    asked: list[str] = []

    def route(ws: Any) -> None:
        server = ws.connect_to_server()

        def upward(message: str | bytes) -> None:
            frame = json.loads(message)
            if frame.get("cmd") == "conversations":
                asked.append(frame["cmd"])
                error = {"code": "unknown_command", "message": "unknown command conversations"}
                ws.send(json.dumps({"id": frame["id"], "ok": False, "error": error}))
            else:
                server.send(message)

        ws.on_message(upward)
        server.on_message(ws.send)

    await tab.page.route_web_socket("**/ws", route)
    await _log_in(tab, web.base, "bob")
    await expect(_dm_names(tab)).to_have_text(["ana"])
    await expect(tab.page.locator("#dms .buffer .mention")).to_have_text("@1")
    assert asked == ["conversations"]
    await expect(tab.messages().locator(".note.error")).to_have_count(0)


async def test_a_click_held_across_a_redraw_of_the_list_still_opens_its_buffer(
    web: WebRunning, browser
) -> None:
    """The press lands on a conversation, a message redraws the side list, the
    release follows: the conversation opens, as it would had nothing arrived."""
    tab = await browser.tab(*DESK)
    await tab.register(web.base, "ana", PASSWORD)
    bob = await web.running.user("bob")
    await bob.ok("dm", to="ana", text="first")
    conversation = tab.page.locator("#dms .buffer", has_text="bob")
    await expect(conversation.locator(".mention")).to_have_text("@1")
    box = await conversation.bounding_box()
    assert box is not None
    await tab.page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    await tab.page.mouse.down()
    await bob.ok("dm", to="ana", text="second")
    await expect(conversation.locator(".mention")).to_have_text("@2")
    await tab.page.mouse.up()
    await expect(tab.page.locator("#title")).to_have_text("bob")
    await expect(tab.messages()).to_contain_text("second")
