"""Small things the web page must say once and say right, in a real browser
against a real server: one line for a room deleted or a user banned from the
page, counts in the singular, and an input placeholder that fits a phone."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.conftest import PASSWORD
from tests.web.browser import Tab, expect, needs_browser
from tests.web.conftest import WebRunning

pytestmark = needs_browser()

DESK = (1280, 800)
PHONE = (390, 844)


def _notes(tab: Tab, text: str) -> object:
    return tab.page.locator("#messages .note .text", has_text=text)


async def test_deleting_a_room_and_banning_a_member_are_one_line_each(
    web: WebRunning, browser
) -> None:
    """/delete of one's room says so once (not also as the event), and /ban of a
    member says it once (the event's line), whichever arrives first."""
    tab = await browser.tab(*DESK)
    await tab.register(web.base, "ana", PASSWORD)
    await tab.type("/create secret")
    await expect(tab.page.locator("#title")).to_have_text("#secret")
    await tab.type("/delete secret")
    await expect(tab.page.locator("#title")).to_have_text("#general")
    await tab.type("/ping")  # its answer comes after every line of the delete
    await expect(tab.messages()).to_contain_text("pong in")
    await expect(_notes(tab, "#secret")).to_have_count(1)
    await expect(_notes(tab, "#secret")).to_have_text("you deleted #secret")

    await tab.type("/create den")
    bob = await web.running.user("bob")
    await bob.ok("join", room="den")
    await expect(tab.page.locator('.people li[data-name="bob"]')).to_have_count(1)
    await tab.type("/ban bob spamming")
    await bob.event("kicked", room="den")
    await tab.type("/ping")
    await expect(tab.messages().locator(".note", has_text="pong in")).to_have_count(1)
    await expect(_notes(tab, "banned")).to_have_count(1)
    await expect(_notes(tab, "banned")).to_have_text("bob was banned from #den by ana: spamming")


async def test_one_missed_message_is_one_message(web: WebRunning, browser) -> None:
    """After the connection drops and comes back, the page says how many messages
    it filled in, in the singular for one; /names counts one member as one."""
    tab = await browser.tab(*DESK)
    links: list[Any] = []
    down = False

    def route(ws: Any) -> None:
        if down:
            ws.close()
            return
        server = ws.connect_to_server()
        ws.on_message(server.send)
        server.on_message(ws.send)
        links.append(ws)

    await tab.page.route_web_socket("**/ws", route)
    await tab.register(web.base, "ana", PASSWORD)
    browser.expected.append(r"WebSocket connection to .* failed")
    down = True
    await links[-1].close()
    await expect(tab.page.locator("#status")).to_contain_text("reconnecting")
    bob = await web.running.user("bob")
    await bob.ok("join", room="general")
    await bob.ok("say", room="general", text="one while you were away")
    down = False
    await tab.type("/reconnect")
    await expect(tab.page.locator("#status")).to_have_text("online")
    await expect(tab.messages()).to_contain_text("one while you were away")
    await expect(_notes(tab, "reconnected").last).to_have_text(
        "reconnected: 1 missed message filled in"
    )
    await tab.type("/create den")
    await tab.type("/names")
    await expect(tab.messages()).to_contain_text("#den (1 online, 1 member): ana")


async def test_a_connection_lost_while_logging_in_again_leaves_no_unhandled_error(
    web: WebRunning, browser
) -> None:
    """The connection drops while the page, back after a first drop, restores
    its rooms (its joins asked, none answered): every request then in flight
    fails, none of them unhandled, and the page logs in again by itself."""
    tab = await browser.tab(*DESK)
    links: list[Any] = []
    armed = False  # the next join drops the connection
    closing: list[asyncio.Task[None]] = []

    def route(ws: Any) -> None:
        server = ws.connect_to_server()

        def to_server(frame: str | bytes) -> None:
            nonlocal armed
            if armed and '"cmd":"join"' in str(frame):
                armed = False
                closing.append(asyncio.ensure_future(ws.close()))
                return
            server.send(frame)

        ws.on_message(to_server)
        server.on_message(ws.send)
        links.append(ws)

    await tab.page.route_web_socket("**/ws", route)
    await tab.register(web.base, "ana", PASSWORD)
    browser.expected.append(r"WebSocket connection to .* failed")
    armed = True
    await links[-1].close()
    await expect(tab.page.locator("#status")).to_contain_text("reconnecting")
    await tab.type("/reconnect")
    await expect(tab.page.locator("#status")).to_contain_text("reconnecting")
    await tab.type("/reconnect")
    await expect(tab.page.locator("#status")).to_have_text("online")
    assert closing and not armed
    await closing[0]


@pytest.mark.parametrize("size", [DESK, PHONE], ids=["desk", "phone"])
async def test_the_inputs_placeholder_fits(web: WebRunning, browser, size: tuple[int, int]) -> None:
    """The input's placeholder is never cut off, on a desk or on a phone."""
    tab = await browser.tab(*size)
    await tab.register(web.base, "ana", PASSWORD)
    fits = await tab.page.locator("#input").evaluate(
        """input => {
          const style = getComputedStyle(input);
          const context = document.createElement("canvas").getContext("2d");
          const font = [style.fontStyle, style.fontWeight, style.fontSize, style.fontFamily];
          context.font = font.join(" ");
          const padding = parseFloat(style.paddingLeft) + parseFloat(style.paddingRight);
          const room = input.clientWidth - padding;
          return [input.placeholder, context.measureText(input.placeholder).width, room];
        }"""
    )
    placeholder, width, room = fits
    assert placeholder.startswith("Message #general")
    assert width <= room, fits
