"""Everyday things done with the mouse in the web page, in a real browser against
a real server: the room browser, the search box and clickable results, links to
messages, name completion, the phone drawer, joining again after a kick, erasing
through the page's own dialog, and the clickable lines of /rooms, /whois and
/search."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.conftest import PASSWORD
from tests.web.browser import Tab, expect, needs_browser
from tests.web.conftest import WebRunning

pytestmark = needs_browser()

DESK = (1280, 800)
PHONE = (390, 844)
SIZES = pytest.mark.parametrize("size", [DESK, PHONE], ids=["desk", "phone"])


async def _drawer(tab: Tab) -> None:
    """Opens the side panel where it folds (a phone); nothing on a desk."""
    if await tab.page.locator("#menu").is_visible():
        await tab.page.click("#menu")
        await expect(tab.page.locator("#sidebar")).to_be_in_viewport()


async def _switch(tab: Tab, label: str) -> None:
    """Switches to a buffer from the side panel, opening it first on a phone."""
    await _drawer(tab)
    await tab.buffer(label)


async def _found_in_view(tab: Tab, room: str, seq: int) -> None:
    """Message `seq` of `room` is shown, highlighted and scrolled into view."""
    await expect(tab.page.locator("#title")).to_have_text(f"#{room}")
    row = tab.messages().locator(f'.msg[data-seq="{seq}"]')
    await expect(row).to_have_class(re.compile(r"\bfound\b"))
    await expect(row).to_be_in_viewport()


# -- rooms ------------------------------------------------------------------------


@SIZES
async def test_the_room_browser_lists_joins_and_creates_with_the_mouse(
    web: WebRunning, browser, size: tuple[int, int]
) -> None:
    """The room browser lists every room with its topic and member counts; a click
    joins one, and its form creates a room, with no command typed."""
    bob = await web.running.user("bob")
    await bob.ok("create", room="den", topic="where the bears sleep")
    carol = await web.running.user("carol")
    await carol.ok("join", room="den")
    tab = await browser.tab(*size)
    await tab.register(web.base, "ana", PASSWORD)
    page = tab.page
    await _drawer(tab)
    await page.click("#browse")
    dialog = page.locator("#rooms-dialog")
    await expect(dialog).to_be_visible()
    den = dialog.locator('li[data-room="den"]')
    await expect(den.locator(".topic-text")).to_have_text("where the bears sleep")
    await expect(den.locator(".counts")).to_have_text("2 members, 2 online")
    await expect(dialog.locator('li[data-room="general"] .join')).to_have_text("Open")
    await den.locator(".join").click()
    await expect(dialog).to_be_hidden()
    await expect(page.locator("#title")).to_have_text("#den")
    await bob.event("joined", room="den", user="ana")

    await _drawer(tab)
    await page.click("#browse")
    await expect(dialog.locator('li[data-room="den"] .counts')).to_have_text("3 members, 3 online")
    await page.fill("#create-name", "plans")
    await page.fill("#create-topic", "release on friday")
    await page.click("#create-submit")
    await expect(dialog).to_be_hidden()
    await expect(page.locator("#title")).to_have_text("#plans")
    await expect(page.locator("#topic")).to_have_text("release on friday")
    await _drawer(tab)
    await page.click("#browse")
    await page.fill("#create-name", "plans")
    await page.click("#create-submit")
    await expect(dialog.locator("#create-error")).to_contain_text("(room_exists)")
    await page.keyboard.press("Escape")
    await expect(dialog).to_be_hidden()


# -- finding messages ----------------------------------------------------------------


async def _long_room(web: WebRunning) -> tuple[Any, int]:
    """#general with 170 lines from bob, the fifth naming a needle; its seq."""
    bob = await web.running.user("bob")
    await bob.ok("join", room="general")
    lines = [f"line {i}" if i != 5 else "a needle in the hay" for i in range(1, 171)]
    replies = await bob.burst([{"cmd": "say", "room": "general", "text": t} for t in lines])
    return bob, replies[4]["seq"]


@SIZES
async def test_the_search_box_opens_a_result_in_its_room_loading_history(
    web: WebRunning, browser, size: tuple[int, int]
) -> None:
    """Words typed in the search box list what matches; a click on a result opens
    its room, loads the older pages it needs, and shows the message highlighted."""
    _, needle = await _long_room(web)
    tab = await browser.tab(*size)
    await tab.register(web.base, "ana", PASSWORD)
    await tab.type("/join tech")
    await expect(tab.page.locator("#title")).to_have_text("#tech")
    assert await tab.messages().locator(f'.msg[data-seq="{needle}"]').count() == 0
    await _drawer(tab)
    await tab.page.fill("#search", "needle")
    await tab.page.press("#search", "Enter")
    results = tab.page.locator("#results")
    await expect(results).to_be_visible()
    await expect(results.locator(".result")).to_have_count(1)
    await expect(results.locator(".result")).to_contain_text("a needle in the hay")
    await results.locator(".result").click()
    await expect(results).to_be_hidden()
    await _found_in_view(tab, "general", needle)


@SIZES
async def test_a_link_to_a_message_opens_it(
    web: WebRunning, browser, size: tuple[int, int]
) -> None:
    """`#room/seq` in a message is a link that opens that message, older history
    loaded as needed; /goto takes the same link (or `#room seq`, as the terminal
    client's /goto); a message's link button puts its link in the input."""
    bob, needle = await _long_room(web)
    tab = await browser.tab(*size)
    await tab.register(web.base, "ana", PASSWORD)
    await bob.ok("say", room="general", text=f"see #general/{needle}, and #nowhere/2.")
    await expect(tab.messages().locator("a.msglink")).to_have_text(
        [f"#general/{needle}", "#nowhere/2"]
    )
    link = tab.messages().locator("a.msglink", has_text=f"#general/{needle}")
    await expect(link).to_have_attribute("href", f"#general/{needle}")
    await tab.type("/join tech")
    await _switch(tab, "#general")
    await link.click()
    await _found_in_view(tab, "general", needle)

    await tab.type("/join tech")
    await tab.type(f"/goto #general {needle + 1}")
    await _found_in_view(tab, "general", needle + 1)
    await tab.type(f"/goto #general/{needle + 2}")
    await _found_in_view(tab, "general", needle + 2)

    row = tab.messages().locator(f'.msg[data-seq="{needle + 2}"]')
    await row.hover()
    await row.locator("button[title=link]").click()
    await expect(tab.page.locator("#input")).to_have_value(f"#general/{needle + 2} ")


# -- the input -------------------------------------------------------------------


@SIZES
async def test_tab_completes_names_and_stays_in_the_input(
    web: WebRunning, browser, size: tuple[int, int]
) -> None:
    """Tab completes the name before the caret from the room's people (`name: ` at
    the start of a line, `@name` after an @), cycles on a second Tab, and never
    takes the focus out of the input."""
    for name in ("bob", "bobby", "carol"):
        peer = await web.running.user(name)
        await peer.ok("join", room="general")
    tab = await browser.tab(*size)
    await tab.register(web.base, "ana", PASSWORD)
    page = tab.page
    people = page.locator(".people")
    await expect(people.locator('li[data-name="carol"]')).to_have_count(1)
    await page.fill("#input", "ca")
    await page.press("#input", "Tab")
    await expect(page.locator("#input")).to_have_value("carol: ")
    assert await page.evaluate("document.activeElement.id") == "input"
    await page.fill("#input", "ask @bo")
    await page.press("#input", "Tab")
    await expect(page.locator("#input")).to_have_value("ask @bob ")
    await page.press("#input", "Tab")
    await expect(page.locator("#input")).to_have_value("ask @bobby ")
    await page.press("#input", "Tab")
    await expect(page.locator("#input")).to_have_value("ask @bob ")
    await page.fill("#input", "nothing matches zz")
    await page.press("#input", "Tab")
    await expect(page.locator("#input")).to_have_value("nothing matches zz")
    assert await page.evaluate("document.activeElement.id") == "input"
    await page.press("#input", "Enter")
    await expect(tab.messages().locator(".msg .text").last).to_have_text("nothing matches zz")


async def test_escape_closes_the_phone_drawer(web: WebRunning, browser) -> None:
    """On a phone, Escape folds the side panel away again."""
    tab = await browser.tab(*PHONE)
    await tab.register(web.base, "ana", PASSWORD)
    await tab.page.click("#menu")
    await expect(tab.page.locator("#sidebar")).to_be_in_viewport()
    await tab.page.keyboard.press("Escape")
    await expect(tab.page.locator("#sidebar")).not_to_be_in_viewport()


# -- after a kick, and erasing ----------------------------------------------------


@SIZES
async def test_a_kicked_user_joins_again_with_a_click(
    web: WebRunning, browser, size: tuple[int, int]
) -> None:
    """Kicked (not banned), the page says who did it and offers to join again."""
    bob = await web.running.user("bob")
    await bob.ok("create", room="den")
    tab = await browser.tab(*size)
    await tab.register(web.base, "ana", PASSWORD)
    await tab.type("/join den")
    await expect(tab.page.locator("#title")).to_have_text("#den")
    await bob.ok("kick", room="den", username="ana", reason="cool off")
    line = tab.messages().locator(".note", has_text="you were kicked from #den by bob")
    await expect(line).to_contain_text("cool off")
    await expect(tab.page.locator("#title")).to_have_text("#general")
    await line.locator(".note-action", has_text="join #den again").click()
    await expect(tab.page.locator("#title")).to_have_text("#den")
    await bob.event("joined", room="den", user="ana")


@SIZES
async def test_erasing_asks_in_the_pages_own_dialog(
    web: WebRunning, browser, size: tuple[int, int]
) -> None:
    """The erase button asks in the page's dialog, not the browser's confirm():
    Cancel erases nothing, Erase erases it for everyone."""
    tab = await browser.tab(*size)
    await tab.register(web.base, "ana", PASSWORD)
    native: list[str] = []
    tab.page.on("dialog", lambda dialog: native.append(dialog.message))
    bob = await web.running.user("bob")
    await bob.ok("join", room="general")
    await tab.type("oops, wrong room")
    said = await bob.event("message", **{"from": "ana"})
    row = tab.messages().locator(f'.msg[data-seq="{said["seq"]}"]')
    dialog = tab.page.locator("#ask")
    for confirm in (False, True):
        await row.hover()
        await row.locator("button[title=erase]").click()
        await expect(dialog).to_be_visible()
        await expect(dialog.locator("#ask-text")).to_have_text("Erase this message for everyone?")
        await expect(dialog.locator("#reason")).to_be_hidden()
        await tab.page.click("#ask-ok" if confirm else "#ask-cancel")
        await expect(dialog).to_be_hidden()
        if not confirm:
            await tab.type("/ping")
            await expect(tab.messages()).to_contain_text("pong in")
            await bob.no_event("erased", wait=0.2)
    erased = await bob.event("erased")
    assert erased["message"]["seq"] == said["seq"]
    await expect(row.locator(".erased")).to_have_text("(message erased)")
    assert native == []


# -- clickable lines ---------------------------------------------------------------


async def test_rooms_profiles_and_search_results_are_clickable(web: WebRunning, browser) -> None:
    """/rooms lists rooms with a button to join (or open) each; /whois offers to
    message the person and to open their rooms; /search and /mentions results
    open their message."""
    bob = await web.running.user("bob")
    await bob.ok("create", room="den", topic="cosy")
    await bob.ok("bio", text="keeper of the den")
    tab = await browser.tab(*DESK)
    await tab.register(web.base, "ana", PASSWORD)
    await tab.type("/rooms")
    listed = tab.messages().locator(".note", has_text="#den")
    await expect(listed).to_contain_text("cosy")
    await listed.locator(".note-action", has_text="join").click()
    await expect(tab.page.locator("#title")).to_have_text("#den")
    said = await bob.ok("say", room="den", text="@ana welcome to the den")

    await tab.buffer("#general")
    await tab.type("/whois bob")
    profile = tab.messages().locator(".note", has_text="keeper of the den")
    await profile.locator(".note-action", has_text="message").click()
    await expect(tab.page.locator("#title")).to_have_text("bob")
    await tab.buffer("#general")
    await tab.type("/whois bob")
    rooms = tab.messages().locator(".note", has_text="rooms:").last
    await rooms.locator(".note-action", has_text="#den").click()
    await expect(tab.page.locator("#title")).to_have_text("#den")

    await tab.buffer("#general")
    await tab.type("/search welcome")
    found = tab.messages().locator(".note", has_text="welcome to the den").last
    await found.locator(".note-action", has_text="open").click()
    await _found_in_view(tab, "den", said["seq"])
    await tab.buffer("#general")
    await tab.type("/mentions")
    found = tab.messages().locator(".note", has_text="welcome to the den").last
    await found.locator(".note-action", has_text="open").click()
    await _found_in_view(tab, "den", said["seq"])
