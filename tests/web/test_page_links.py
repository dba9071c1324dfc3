"""Links to messages in the web page, in a real browser against a real server:
`#room/seq` opens the room at that message with its neighbours (a page
`around` it), highlighted for a moment; scrolling down loads the pages after
it until the newest, then live messages come on; a search result and a page
address open a message the same way; a message's link can be copied."""

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
LINES = 300
AROUND = 50  # the page the web client opens at a message


async def _long_room(web: WebRunning) -> Any:
    """#general with LINES lines from bob (`line 1` is seq 1); bob's peer."""
    bob = await web.running.user("bob")
    await bob.ok("join", room="general")
    replies = await bob.burst(
        [{"cmd": "say", "room": "general", "text": f"line {i}"} for i in range(1, LINES + 1)]
    )
    assert [reply["seq"] for reply in replies] == list(range(1, LINES + 1))
    return bob


def _row(tab: Tab, seq: int) -> Any:
    return tab.messages().locator(f'.msg[data-seq="{seq}"]')


async def _shown(tab: Tab) -> list[int]:
    """The seqs of the messages drawn, in order."""
    rows = tab.messages().locator(".msg")
    return list(await rows.evaluate_all("rows => rows.map(r => +r.dataset.seq)"))


async def _opened_at(tab: Tab, seq: int, fades: bool = False) -> None:
    """Message `seq` of #general is shown with its neighbours only, outlined and
    in view (and with `fades`, the outline goes after a moment)."""
    await expect(tab.page.locator("#title")).to_have_text("#general")
    row = _row(tab, seq)
    await expect(row).to_have_class(re.compile(r"\bfound\b"))
    await expect(row).to_be_in_viewport()
    shown = await _shown(tab)
    assert seq - 1 in shown and seq + 1 in shown
    assert min(shown) > seq - AROUND and max(shown) < seq + AROUND, shown
    assert shown == list(range(min(shown), max(shown) + 1))
    if fades:
        await expect(row).not_to_have_class(re.compile(r"\bfound\b"))


async def _scroll_to_bottom(tab: Tab) -> None:
    await tab.page.locator("#messages").evaluate("pane => { pane.scrollTop = pane.scrollHeight; }")


def _more_below(tab: Tab) -> Any:
    return tab.messages().locator(".more", has_text="scroll down for newer messages")


async def _page_down_to_the_newest(tab: Tab) -> int:
    """Scrolls down a page opened at a message until no newer page remains,
    each page coming below what was shown; how many pages it took."""
    pages = 0
    while await _more_below(tab).count():
        pages += 1
        assert pages < 10
        before = max(await _shown(tab))
        await _scroll_to_bottom(tab)
        last = tab.messages().locator(".msg").last
        await expect(last).not_to_have_attribute("data-seq", str(before))
        await expect(_row(tab, before)).to_be_visible()  # the page came below, the rest stays
    return pages


@SIZES
async def test_a_link_opens_its_message_with_its_neighbours_then_pages_after_it(
    web: WebRunning, browser, size: tuple[int, int]
) -> None:
    """A click on `#general/60` opens the page around message 60, not every page
    since; scrolling down loads the pages after it (a message said meanwhile
    waits for them, in order) until the newest; then live messages come on."""
    bob = await _long_room(web)
    tab = await browser.tab(*size)
    await tab.register(web.base, "ana", PASSWORD)
    link_said = await bob.ok("say", room="general", text="the start is at #general/60")
    await expect(_row(tab, link_said["seq"])).to_be_visible()
    await tab.messages().locator("a.msglink", has_text="#general/60").click()
    await _opened_at(tab, 60, fades=True)
    assert link_said["seq"] not in await _shown(tab)
    await expect(_more_below(tab)).to_have_count(1)

    meanwhile = await bob.ok("say", room="general", text="said while ana reads the past")
    await tab.type("/ping")  # the event has reached the page by the time pong shows
    await expect(tab.messages()).to_contain_text("pong in")
    assert meanwhile["seq"] not in await _shown(tab)

    assert await _page_down_to_the_newest(tab) >= 2  # 85 to 302: more than one page after
    shown = await _shown(tab)
    assert shown == list(range(min(shown), meanwhile["seq"] + 1))
    await expect(_row(tab, meanwhile["seq"])).to_contain_text("said while ana reads the past")

    live = await bob.ok("say", room="general", text="and now live again")
    await _scroll_to_bottom(tab)
    await expect(_row(tab, live["seq"])).to_be_in_viewport()
    assert (await _shown(tab))[-2:] == [meanwhile["seq"], live["seq"]]


async def test_scrolling_up_from_a_message_opened_loads_older_pages(
    web: WebRunning, browser
) -> None:
    """The page around a message loads older ones as the top is reached."""
    await _long_room(web)
    tab = await browser.tab(*DESK)
    await tab.register(web.base, "ana", PASSWORD)
    await tab.type("/goto #general/200")
    await _opened_at(tab, 200)
    first = min(await _shown(tab))
    await tab.page.locator("#messages").evaluate("pane => { pane.scrollTop = 0; }")
    await expect(_row(tab, first - 1)).to_be_attached()
    await expect(_row(tab, first)).to_be_attached()


@SIZES
async def test_a_search_result_opens_its_message_the_same_way(
    web: WebRunning, browser, size: tuple[int, int]
) -> None:
    """A search result far back opens the page around it, in its room."""
    bob = await _long_room(web)
    await bob.ok("edit", room="general", seq=42, text="line 42, the needle")
    tab = await browser.tab(*size)
    await tab.register(web.base, "ana", PASSWORD)
    await tab.type("/join tech")
    await expect(tab.page.locator("#title")).to_have_text("#tech")
    if await tab.page.locator("#menu").is_visible():
        await tab.page.click("#menu")
    await tab.page.fill("#search", "needle")
    await tab.page.press("#search", "Enter")
    result = tab.page.locator("#results .result")
    await expect(result).to_have_count(1)
    await result.click()
    await _opened_at(tab, 42)


async def test_a_page_address_opens_its_message(web: WebRunning, browser) -> None:
    """`/#general/120` opens message 120 once logged in (here with the login
    remembered); a changed address opens another."""
    await _long_room(web)
    tab = await browser.tab(*DESK)
    await tab.register(web.base, "ana", PASSWORD, remember=True)
    page = await tab.page.context.new_page()
    other = Tab(page)
    browser.tabs.append(other)
    await page.goto(f"{web.base}/#general/120")
    await _opened_at(other, 120)
    await page.evaluate("location.hash = '#general/250'")
    await _opened_at(other, 250)


async def test_a_message_that_is_not_there_says_so(web: WebRunning, browser) -> None:
    """A link to a message never sent is one line, and what was shown stays."""
    await _long_room(web)
    tab = await browser.tab(*DESK)
    await tab.register(web.base, "ana", PASSWORD)
    before = await _shown(tab)
    await tab.type("/goto #general/9999")
    error = tab.messages().locator(".note.error")
    await expect(error).to_contain_text("no message 9999 in #general")
    assert await _shown(tab) == before


async def test_copy_link_puts_the_messages_link_on_the_clipboard(web: WebRunning, browser) -> None:
    """A message's "copy link" action copies `#room/seq`, which opens it."""
    bob = await _long_room(web)
    tab = await browser.tab(*DESK)
    await tab.page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=web.base)
    await tab.register(web.base, "ana", PASSWORD)
    said = await bob.ok("say", room="general", text="remember this one")
    row = _row(tab, said["seq"])
    await row.hover()
    await row.locator('button[title="copy link"]').click()
    await expect(row.locator(f'button[title="copied #general/{said["seq"]}"]')).to_have_count(1)
    assert await tab.page.evaluate("navigator.clipboard.readText()") == f"#general/{said['seq']}"
    await tab.type(f"/goto #general/{said['seq']}")
    await expect(row).to_have_class(re.compile(r"\bfound\b"))


async def test_a_page_opened_at_a_message_survives_a_server_restart(start_web, browser) -> None:
    """Reconnected while a page opened at a message is shown, the page stays
    where the reader was; paging down then reaches what was said meanwhile,
    each message once and in order."""
    web = await start_web()
    await _long_room(web)
    tab = await browser.tab(*DESK)
    await tab.register(web.base, "ana", PASSWORD, remember=True)
    await tab.type("/goto #general/100")
    await _opened_at(tab, 100)
    shown = await _shown(tab)
    browser.expected.append(r"WebSocket connection to .* failed")
    config = web.running.server.config
    await web.running.close()
    await expect(tab.page.locator("#status")).to_contain_text("reconnecting")
    again = await start_web(data=config.data, port=web.running.port, web_port=web.web_port)
    bob = await again.running.user("bob", register=False)
    meanwhile = await bob.ok("say", room="general", text="said during the restart")
    await expect(tab.page.locator("#status")).to_have_text("online", timeout=20000)
    said = tab.messages().locator(".note .text", has_text="reconnected")
    await expect(said).to_have_text("reconnected")  # nothing shown was missing: no gap filled in
    assert await _shown(tab) == shown
    await _page_down_to_the_newest(tab)
    assert await _shown(tab) == list(range(shown[0], meanwhile["seq"] + 1))


async def test_a_message_of_a_conversation_opens_with_its_neighbours(
    web: WebRunning, browser
) -> None:
    """`/goto bob 30` opens the page of the conversation around message 30
    (`dms` with `around`); scrolling down reaches the newest."""
    tab = await browser.tab(*DESK)
    await tab.register(web.base, "ana", PASSWORD)
    bob = await web.running.user("bob")
    frames = [{"cmd": "dm", "to": "ana", "text": f"note {i}"} for i in range(1, 151)]
    seqs = [reply["seq"] for reply in await bob.burst(frames)]
    await tab.type(f"/goto bob {seqs[29]}")
    await expect(tab.page.locator("#title")).to_have_text("bob")
    row = _row(tab, seqs[29])
    await expect(row).to_have_class(re.compile(r"\bfound\b"))
    await expect(row).to_contain_text("note 30")
    shown = await _shown(tab)
    assert seqs[28] in shown and seqs[30] in shown and seqs[-1] not in shown
    await _page_down_to_the_newest(tab)
    assert await _shown(tab) == list(range(min(shown), seqs[-1] + 1))
