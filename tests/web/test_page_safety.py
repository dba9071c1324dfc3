"""What the web page must never show wrongly, in a real browser against a real
server: an erased message's text left in a reply's quote."""

from __future__ import annotations

from typing import Any

from tests.conftest import PASSWORD
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
