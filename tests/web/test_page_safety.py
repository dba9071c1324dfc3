"""What the web page must never show wrongly, in a real browser against a real
server: an erased message's text left in a reply's quote, and a guest's words
passed off as an account's."""

from __future__ import annotations

import re
from typing import Any

from tests.conftest import PASSWORD
from tests.irc.conftest import IrcServer
from tests.web.browser import Tab, expect, needs_browser
from tests.web.conftest import WebRunning

pytestmark = needs_browser()


def _row(tab: Tab, seq: int) -> Any:
    return tab.messages().locator(f'.msg[data-seq="{seq}"]')


async def test_a_quote_drops_the_text_of_a_message_erased_or_edited_after_it(
    web: WebRunning, browser
) -> None:
    """B replies to A; when A is edited, B's quote shows the new text, and when A
    is erased, B's quote shows it erased at once, with none of A's words left in
    the page (nor in the bar of a reply being written to A)."""
    tab = await browser.tab()
    await tab.register(web.base, "ana", PASSWORD)
    bob = await web.running.user("bob")
    await bob.ok("join", room="general")
    said = await bob.ok("say", room="general", text="the door code is 4711")
    answer = await bob.ok("say", room="general", text="sorry, wrong room", reply_to=said["seq"])
    quote = _row(tab, answer["seq"]).locator(".quote")
    await expect(quote).to_contain_text("bob: the door code is 4711")

    await bob.ok("edit", room="general", seq=said["seq"], text="the door code is 0000")
    await expect(_row(tab, said["seq"]).locator(".text")).to_have_text("the door code is 0000")
    await expect(quote).to_contain_text("bob: the door code is 0000")

    original = _row(tab, said["seq"])
    await original.hover()
    await original.locator("button[title=reply]").click()
    bar = tab.page.locator("#context-text")
    await expect(bar).to_contain_text("replying to bob: the door code")

    await bob.ok("erase", room="general", seq=said["seq"])
    await expect(_row(tab, said["seq"]).locator(".erased")).to_have_text("(message erased)")
    await expect(quote).to_have_text("↪ bob: (message erased)")
    await expect(bar).to_have_text("replying to bob: (message erased)")
    await expect(tab.messages()).not_to_contain_text("door code")


async def test_a_guests_lines_are_marked_and_an_accounts_of_the_same_name_are_not(
    start_web, browser
) -> None:
    """An IRC guest's line, its quote and its entry in the member list say it is a
    guest's; once the guest is gone and an account takes its name, that account's
    line is not marked, and the guest's line still is."""
    web = await start_web(irc_port=0, irc_guests=True)
    irc = IrcServer(web.running)
    tab = await browser.tab()
    await tab.register(web.base, "ana", PASSWORD)
    gus = await irc.guest("gus")
    await gus.join("#general")
    people = tab.page.locator(".people")
    await expect(people.locator('li[data-name="gus"] .guest-mark')).to_have_text("(guest)")
    await expect(people.locator('li[data-name="ana"] .guest-mark')).to_have_count(0)
    await gus.send("PRIVMSG #general :I am the admin, send me your password")
    guest_line = tab.messages().locator(".msg", has_text="send me your password")
    author = guest_line.locator(".from")
    await expect(author).to_have_text("gus (guest)")
    await expect(author).to_have_class(re.compile(r"\bguest\b"))
    await expect(author).to_have_attribute("title", re.compile(r"^a guest with no account"))

    await gus.send("QUIT :bye")
    await expect(people.locator('li[data-name="gus"]')).to_have_count(0)
    impostor = await web.running.user("gus")
    await impostor.ok("join", room="general")
    said = await impostor.ok("say", room="general", text="that was not me")
    line = _row(tab, said["seq"])
    await expect(line.locator(".from")).to_have_text("gus")
    await expect(line.locator(".guest-mark")).to_have_count(0)
    assert "guest" not in (await line.locator(".from").get_attribute("class") or "")
    await expect(author).to_have_text("gus (guest)")  # the guest's line stays marked

    earlier = await guest_line.get_attribute("data-seq")
    assert earlier is not None
    answer = await impostor.ok("say", room="general", text="see above", reply_to=int(earlier))
    await expect(_row(tab, answer["seq"]).locator(".quote")).to_have_text(
        "↪ gus (guest): I am the admin, send me your password"
    )
    await irc.close()
