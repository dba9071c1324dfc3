"""Threads in the web page, in a real browser against a real server: a root's
summary, the side pane (root, replies, its own input, "also send to"),
live replies going to the pane and the summary rather than the timeline,
following, the inbox of followed threads and its count, threads in a
conversation, and a narrow window."""

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
HOSTILE = '<img src=x onerror="window.__pwned = 1">'


def _row(tab: Tab, seq: int) -> Any:
    return tab.messages().locator(f'.msg[data-seq="{seq}"]')


def _pane(tab: Tab) -> Any:
    return tab.page.locator("#thread")


async def _pane_seqs(tab: Tab) -> list[int]:
    rows = _pane(tab).locator(".msg")
    return list(await rows.evaluate_all("rows => rows.map(r => +r.dataset.seq)"))


async def _ana_over_tcp(web: WebRunning) -> Any:
    """Another session of ana's (registered in the page), over TCP."""
    peer = await web.running.peer()
    await peer.ok("login", username="ana", password=PASSWORD)
    return peer


async def _inbox(peer: Any) -> list[tuple[int, int]]:
    """(root seq, unread) of each thread the peer's user follows."""
    reply = await peer.ok("threads")
    return [(entry["root"]["seq"], entry["unread"]) for entry in reply["threads"]]


@SIZES
async def test_a_thread_pane_shows_its_root_and_replies_and_sends_one(
    web: WebRunning, browser, size: tuple[int, int]
) -> None:
    """A root shows its summary; a click opens the pane with the root on top and
    the replies in order; a reply typed there reaches another client with
    `thread` (not sent to the room), and replies live go to the pane and the
    summary, never the timeline. A reply's text is text, never HTML."""
    bob = await web.running.user("bob")
    await bob.ok("join", room="general")
    tab = await browser.tab(*size)
    await tab.register(web.base, "ana", PASSWORD)
    root = (await bob.ok("say", room="general", text="lunch at noon?"))["seq"]
    first = (await bob.ok("say", room="general", text="the usual place", thread=root))["seq"]
    second = (await bob.ok("say", room="general", text=HOSTILE, thread=root))["seq"]
    summary = _row(tab, root).locator(".thread-summary")
    await expect(summary).to_have_text(re.compile(r"^2 replies · last \d\d:\d\d · bob$"))
    assert await _row(tab, first).count() == 0 and await _row(tab, second).count() == 0

    await summary.click()
    pane = _pane(tab)
    await expect(pane).to_be_visible()
    await expect(pane.locator("#thread-title")).to_have_text("Thread in #general")
    await expect(pane.locator(".msg")).to_have_count(3)
    assert await _pane_seqs(tab) == [root, first, second]
    await expect(pane.locator(f'.msg[data-seq="{second}"] .text')).to_have_text(HOSTILE)
    assert await pane.locator(".msg img").count() == 0
    await expect(pane.locator("#thread-broadcast-label")).to_have_text("also send to #general")

    await tab.page.fill("#thread-input", "count me in")
    await tab.page.press("#thread-input", "Enter")
    said = await bob.event("message", **{"from": "ana"})
    assert said["thread"] == root and not said.get("broadcast"), said
    assert said["text"] == "count me in"
    await expect(pane.locator(f'.msg[data-seq="{said["seq"]}"]')).to_contain_text("count me in")
    third = (await bob.ok("say", room="general", text="see you there", thread=root))["seq"]
    await expect(pane.locator(f'.msg[data-seq="{third}"]')).to_contain_text("see you there")
    assert await _pane_seqs(tab) == [root, first, second, said["seq"], third]
    await expect(_pane(tab).locator(".rule.replies")).to_have_text("4 replies")
    if await tab.page.locator("#menu").is_visible():  # a phone: the pane covers the room
        covering = "document.elementFromPoint(innerWidth / 2, innerHeight / 2).closest('#thread')"
        assert await tab.page.evaluate(f"{covering} !== null")
    await tab.page.click("#thread-close")
    await expect(pane).to_be_hidden()
    await expect(summary).to_have_text(re.compile(r"^4 replies · last \d\d:\d\d · bob, ana$"))
    assert await _row(tab, said["seq"]).count() == 0 and await _row(tab, third).count() == 0
    assert await tab.page.evaluate("window.__pwned") is None


async def test_replies_sent_to_the_room_too_appear_in_its_timeline(
    web: WebRunning, browser
) -> None:
    """The box "also send to #general" sends a reply with `broadcast`; such replies,
    the page's or another's, are in the timeline as well as the pane, each
    saying which thread it is in."""
    bob = await web.running.user("bob")
    await bob.ok("join", room="general")
    tab = await browser.tab(*DESK)
    await tab.register(web.base, "ana", PASSWORD)
    root = (await bob.ok("say", room="general", text="release on friday"))["seq"]
    row = _row(tab, root)
    await row.hover()
    await row.locator('button[title="reply in thread"]').click()
    await expect(_pane(tab)).to_be_visible()
    await expect(tab.page.locator("#thread-input")).to_be_focused()
    await tab.page.check("#thread-broadcast")
    await tab.page.fill("#thread-input", "friday works for me")
    await tab.page.press("#thread-input", "Enter")
    said = await bob.event("message", **{"from": "ana"})
    assert said["thread"] == root and said["broadcast"] is True, said
    await expect(tab.page.locator("#thread-broadcast")).not_to_be_checked()
    mine = _row(tab, said["seq"])
    await expect(mine.locator(".text")).to_have_text("friday works for me")
    await expect(mine.locator(".thread-of")).to_contain_text("release on friday")
    other = await bob.ok("say", room="general", text="me too", thread=root, broadcast=True)
    await expect(_row(tab, other["seq"]).locator(".thread-of")).to_contain_text("release on friday")
    assert await _pane_seqs(tab) == [root, said["seq"], other["seq"]]
    quiet = await bob.ok("say", room="general", text="only in the thread", thread=root)
    await expect(_pane(tab).locator(f'.msg[data-seq="{quiet["seq"]}"]')).to_be_visible()
    assert await _row(tab, quiet["seq"]).count() == 0

    await tab.page.click("#thread-close")
    await _row(tab, other["seq"]).locator(".thread-of").click()
    await expect(_pane(tab)).to_be_visible()
    assert await _pane_seqs(tab) == [root, said["seq"], other["seq"], quiet["seq"]]


@SIZES
async def test_the_inbox_counts_threads_with_unread_replies_until_read(
    web: WebRunning, browser, size: tuple[int, int]
) -> None:
    """A reply by someone else in a thread ana follows (her root) raises the
    count on the inbox button; the inbox lists it, opens it in the pane, and
    reading it there moves the thread's read marker: the count falls, here and
    for ana's other sessions."""
    bob = await web.running.user("bob")
    await bob.ok("join", room="general")
    tab = await browser.tab(*size)
    await tab.register(web.base, "ana", PASSWORD)
    await tab.type("who has the keys?")
    root = (await bob.event("message", **{"from": "ana"}))["seq"]
    badge = tab.page.locator("#threads-count")
    await expect(badge).to_be_hidden()
    await bob.ok("say", room="general", text="I do", thread=root)
    await expect(badge).to_have_text("1")
    ana = await _ana_over_tcp(web)
    assert await _inbox(ana) == [(root, 1)]

    await tab.page.click("#threads-button")
    entry = tab.page.locator("#results .result")
    await expect(entry).to_have_count(1)
    await expect(entry).to_contain_text("who has the keys?")
    await expect(entry.locator(".result-unread")).to_contain_text("1 unread")
    await entry.click()
    await expect(_pane(tab).locator(".msg")).to_have_count(2)
    await expect(badge).to_be_hidden()
    read = await ana.event("read", thread=root)
    assert read["room"] == "general"
    assert await _inbox(ana) == [(root, 0)]

    await bob.ok("say", room="general", text="and a spare", thread=root)
    await expect(_pane(tab).locator(".msg")).to_have_count(3)  # the pane is open: read at once
    await ana.event("read", thread=root)
    await expect(badge).to_be_hidden()
    assert await _inbox(ana) == [(root, 0)]


async def test_following_and_unfollowing_in_the_pane(web: WebRunning, browser) -> None:
    """A thread ana neither wrote nor joined is not followed; Follow in the pane
    lists it in her inbox, with its replies counted from then on; Following
    again stops it."""
    bob = await web.running.user("bob")
    await bob.ok("join", room="general")
    tab = await browser.tab(*DESK)
    await tab.register(web.base, "ana", PASSWORD)
    root = (await bob.ok("say", room="general", text="plans for the weekend"))["seq"]
    await bob.ok("say", room="general", text="hiking", thread=root)
    ana = await _ana_over_tcp(web)
    await tab.type(f"/thread {root}")
    follow = tab.page.locator("#thread-follow")
    await expect(follow).to_have_text("Follow")
    assert await _inbox(ana) == []
    await follow.click()
    await expect(follow).to_have_text("Following ✓")
    assert await _inbox(ana) == [(root, 0)]
    await tab.page.click("#thread-close")
    await bob.ok("say", room="general", text="or a museum", thread=root)
    await expect(tab.page.locator("#threads-count")).to_have_text("1")

    await tab.type(f"/thread #general/{root}")
    await expect(tab.page.locator("#threads-count")).to_be_hidden()
    await follow.click()
    await expect(follow).to_have_text("Follow")
    assert await _inbox(ana) == []


@SIZES
async def test_a_thread_in_a_conversation(web: WebRunning, browser, size: tuple[int, int]) -> None:
    """Threads work in direct messages: the summary, the pane, a reply that the
    other party receives as a `dm` with `thread`."""
    tab = await browser.tab(*size)
    await tab.register(web.base, "ana", PASSWORD)
    bob = await web.running.user("bob")
    root = (await bob.ok("dm", to="ana", text="a question about the invoice"))["seq"]
    await bob.ok("dm", to="ana", text="the total looks off", thread=root)
    if await tab.page.locator("#menu").is_visible():
        await tab.page.click("#menu")
    await tab.buffer("bob")
    summary = _row(tab, root).locator(".thread-summary")
    await expect(summary).to_have_text(re.compile(r"^1 reply · last \d\d:\d\d · bob$"))
    await summary.click()
    pane = _pane(tab)
    await expect(pane.locator("#thread-title")).to_have_text("Thread in bob")
    await expect(pane.locator("#thread-broadcast-label")).to_have_text("also send to bob")
    await expect(pane.locator(".msg")).to_have_count(2)
    await tab.page.fill("#thread-input", "I will check it")
    await tab.page.press("#thread-input", "Enter")
    said = await bob.event("dm", **{"from": "ana"})
    assert said["thread"] == root and said["text"] == "I will check it", said
    await expect(pane.locator(".msg")).to_have_count(3)
    assert await _row(tab, said["seq"]).count() == 0


async def test_a_search_result_in_a_thread_opens_its_thread(web: WebRunning, browser) -> None:
    """A reply found by search opens its room at the root, and the thread in the
    pane with the reply in it."""
    bob = await web.running.user("bob")
    await bob.ok("join", room="general")
    root = (await bob.ok("say", room="general", text="where did we park?"))["seq"]
    said = await bob.ok("say", room="general", text="level three, by the lift", thread=root)
    reply = said["seq"]
    tab = await browser.tab(*DESK)
    await tab.register(web.base, "ana", PASSWORD)
    await tab.type("/join tech")
    await expect(tab.page.locator("#title")).to_have_text("#tech")
    await tab.page.fill("#search", "lift")
    await tab.page.press("#search", "Enter")
    await tab.page.locator("#results .result").click()
    await expect(tab.page.locator("#title")).to_have_text("#general")
    await expect(_row(tab, root)).to_have_class(re.compile(r"\bfound\b"))
    await expect(_pane(tab).locator(f'.msg[data-seq="{reply}"]')).to_contain_text("by the lift")
    assert await _pane_seqs(tab) == [root, reply]


async def test_a_link_to_a_reply_opens_its_thread_with_the_reply_outlined(
    web: WebRunning, browser
) -> None:
    """`#general/N` naming a reply (on no timeline page) opens the thread it
    is in, in the pane, the reply outlined; a number past the newest is
    still "no message"."""
    bob = await web.running.user("bob")
    await bob.ok("join", room="general")
    root = (await bob.ok("say", room="general", text="the plan"))["seq"]
    reply = (await bob.ok("say", room="general", text="step one", thread=root))["seq"]
    tab = await browser.tab(*DESK)
    await tab.register(web.base, "ana", PASSWORD)
    await tab.type(f"/goto #general/{reply}")
    found = _pane(tab).locator(f'.msg[data-seq="{reply}"]')
    await expect(found).to_contain_text("step one")
    await expect(found).to_have_class(re.compile(r"\bfound\b"))
    assert await _pane_seqs(tab) == [root, reply]
    await tab.type(f"/goto #general/{reply + 50}")
    await expect(tab.messages()).to_contain_text(f"no message {reply + 50} in #general")


async def test_the_pane_fills_in_replies_said_while_the_server_was_away(start_web, browser) -> None:
    """Reconnected after a server restart, the pane shows the replies said
    while the page was away, and the root's summary counts them."""
    web = await start_web()
    bob = await web.running.user("bob")
    await bob.ok("join", room="general")
    tab = await browser.tab(*DESK)
    await tab.register(web.base, "ana", PASSWORD, remember=True)
    root = (await bob.ok("say", room="general", text="who brings the cake?"))["seq"]
    await tab.type(f"/thread {root}")
    await expect(_pane(tab).locator(".rule.replies")).to_have_text("no replies yet")
    browser.expected.append(r"WebSocket connection to .* failed")
    config = web.running.server.config
    await web.running.close()
    await expect(tab.page.locator("#status")).to_contain_text("reconnecting")
    again = await start_web(data=config.data, port=web.running.port, web_port=web.web_port)
    bob = await again.running.user("bob", register=False)
    said = await bob.ok("say", room="general", text="I will", thread=root)
    await expect(tab.page.locator("#status")).to_have_text("online", timeout=20000)
    await expect(_pane(tab).locator(f'.msg[data-seq="{said["seq"]}"]')).to_contain_text("I will")
    await expect(_pane(tab).locator(".rule.replies")).to_have_text("1 reply")


async def test_a_long_thread_loads_older_replies_and_counts_out_an_erased_one(
    web: WebRunning, browser
) -> None:
    """The pane opens at the newest replies and "older replies" loads the rest;
    a reply erased shows erased in the pane and counts out of the summary."""
    bob = await web.running.user("bob")
    await bob.ok("join", room="general")
    tab = await browser.tab(*DESK)
    await tab.register(web.base, "ana", PASSWORD)
    root = (await bob.ok("say", room="general", text="a long story"))["seq"]
    frames = [
        {"cmd": "say", "room": "general", "text": f"part {i}", "thread": root} for i in range(120)
    ]
    replies = [reply["seq"] for reply in await bob.burst(frames)]
    summary = _row(tab, root).locator(".thread-summary")
    await expect(summary).to_contain_text("120 replies")
    await summary.click()
    pane = _pane(tab)
    await expect(pane.locator(".msg")).to_have_count(101)
    assert await _pane_seqs(tab) == [root, *replies[-100:]]
    await pane.locator(".older-replies").click()
    await expect(pane.locator(".msg")).to_have_count(121)
    await expect(pane.locator(".older-replies")).to_have_count(0)
    assert await _pane_seqs(tab) == [root, *replies]

    await bob.ok("erase", room="general", seq=replies[5])
    erased = pane.locator(f'.msg[data-seq="{replies[5]}"]')
    await expect(erased.locator(".erased")).to_have_text("(message erased)")
    await expect(pane.locator(".rule.replies")).to_have_text("119 replies")
    await expect(summary).to_contain_text("119 replies")
    assert await _row(tab, replies[5]).count() == 0


@SIZES
async def test_a_reply_is_edited_in_the_pane(
    web: WebRunning, browser, size: tuple[int, int]
) -> None:
    """✎ on one's own reply edits it in the pane's input; Escape first cancels
    the edit, then closes the pane."""
    bob = await web.running.user("bob")
    await bob.ok("join", room="general")
    tab = await browser.tab(*size)
    await tab.register(web.base, "ana", PASSWORD)
    root = (await bob.ok("say", room="general", text="the meeting moved"))["seq"]
    await tab.type(f"/thread {root}")
    await tab.page.fill("#thread-input", "to tuesday?")
    await tab.page.press("#thread-input", "Enter")
    said = await bob.event("message", **{"from": "ana"})
    row = _pane(tab).locator(f'.msg[data-seq="{said["seq"]}"]')
    await row.hover()
    await row.locator('button[title="edit"]').click()
    await expect(tab.page.locator("#thread-input")).to_have_value("to tuesday?")
    await expect(tab.page.locator("#thread-editing")).to_be_visible()
    await tab.page.keyboard.press("Escape")
    await expect(tab.page.locator("#thread-editing")).to_be_hidden()
    await expect(tab.page.locator("#thread-input")).to_have_value("")
    await row.hover()
    await row.locator('button[title="edit"]').click()
    await tab.page.fill("#thread-input", "to wednesday?")
    await tab.page.press("#thread-input", "Enter")
    edited = await bob.event("edited")
    assert edited["message"]["seq"] == said["seq"] and edited["message"]["text"] == "to wednesday?"
    await expect(row.locator(".text")).to_have_text("to wednesday?")
    await expect(row.locator(".edited")).to_be_visible()
    await bob.ok("ping")  # an edit, not another reply:
    assert not [ev for ev in bob.events if ev.get("event") == "message" and ev["from"] == "ana"]
    await tab.page.press("#thread-input", "Escape")
    await expect(_pane(tab)).to_be_hidden()
