"""Text in the web page cannot fake its direction, in a real browser against a real
server: the bidirectional override, embedding and isolate controls are dropped
from what is shown, and each message body and name is isolated from its
neighbours."""

from __future__ import annotations

import re

import pytest

from tests.conftest import PASSWORD
from tests.web.browser import expect, needs_browser
from tests.web.conftest import WebRunning

pytestmark = needs_browser()

DESK = (1280, 800)
PHONE = (390, 844)
CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")

# The left edges of the first and last letter of `word` in the first element
# matching `selector` whose text has it: in reading order when left < right.
EDGES = """([selector, word]) => {
  for (const node of document.querySelectorAll(selector)) {
    const walker = document.createTreeWalker(node, NodeFilter.SHOW_TEXT);
    for (let text = walker.nextNode(); text; text = walker.nextNode()) {
      const at = text.data.indexOf(word);
      if (at < 0) continue;
      const edge = (i) => {
        const range = document.createRange();
        range.setStart(text, i);
        range.setEnd(text, i + 1);
        return range.getBoundingClientRect().left;
      };
      return [edge(at), edge(at + word.length - 1)];
    }
  }
  return null;
}"""


@pytest.mark.parametrize("size", [DESK, PHONE], ids=["desk", "phone"])
async def test_override_characters_cannot_reverse_text(
    web: WebRunning, browser, size: tuple[int, int]
) -> None:
    """`RLO \\u202eoverride\\u202c` reads "RLO override", left to right, in the
    message, its quote, the topic, a profile and a search result; no control
    of the kind is left in the page; bodies and names are isolated."""
    await web.running.user("root")  # the first account is an admin: bob is not
    bob = await web.running.user("bob")
    await bob.ok("join", room="general")
    tab = await browser.tab(*size)
    await tab.register(web.base, "ana", PASSWORD)
    page = tab.page
    said = await bob.ok("say", room="general", text="RLO \u202eoverride\u202c and \u2067isolate")
    await bob.ok("say", room="general", text="quoted", reply_to=said["seq"])
    await bob.ok("bio", text="\u202eoib")
    await bob.ok("create", room="den", topic="\u202bembedded\u202c topic")
    row = tab.messages().locator(f'.msg[data-seq="{said["seq"]}"]')
    await expect(row.locator(".text")).to_have_text("RLO override and isolate")
    left, right = await page.evaluate(EDGES, [f'.msg[data-seq="{said["seq"]}"] .text', "override"])
    assert left < right, "override shown reversed"
    await expect(row.locator(".text")).to_have_attribute("dir", "auto")
    await expect(row.locator(".from bdi")).to_have_text("bob")
    quote = tab.messages().locator(".quote").last
    await expect(quote).to_contain_text("bob: RLO override and isolate")
    left, right = await page.evaluate(EDGES, [".quote", "override"])
    assert left < right, "the quote shown reversed"

    await tab.type("/whois bob")
    await expect(tab.messages()).to_contain_text("bob (online) — oib")
    await tab.type("/search override")
    await expect(tab.messages()).to_contain_text("RLO override and isolate")
    await tab.type("/join den")
    await expect(page.locator("#topic")).to_have_text("embedded topic")
    await expect(page.locator("#topic")).to_have_attribute("dir", "auto")
    shown = await page.evaluate("document.body.innerText + document.title")
    assert not CONTROLS.search(shown)
    assert not CONTROLS.search(await page.locator("#topic").get_attribute("title") or "")


async def test_a_right_to_left_message_does_not_move_its_neighbours(
    web: WebRunning, browser
) -> None:
    """A Hebrew message is shown right to left in its own box; the name and time
    beside it keep their places."""
    bob = await web.running.user("bob")
    await bob.ok("join", room="general")
    tab = await browser.tab(*DESK)
    await tab.register(web.base, "ana", PASSWORD)
    said = await bob.ok("say", room="general", text="שלום bob, 12")
    row = tab.messages().locator(f'.msg[data-seq="{said["seq"]}"]')
    text = row.locator(".text")
    await expect(text).to_have_attribute("dir", "auto")
    assert await text.evaluate("node => getComputedStyle(node).direction") == "rtl"
    assert await row.locator(".from").evaluate("node => getComputedStyle(node).direction") == "ltr"
