"""Files in the web page, in a real browser against a real server over real
HTTP: attached with the button or pasted, uploaded with a progress bar that
can cancel, shared in the room with the text typed, shown to every member as
a thumbnail or a card whose download is the same bytes, opened in the
viewer; and refused with a reason, before a byte is sent or by the server."""

from __future__ import annotations

import asyncio
import base64
import io
import re
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from nexus.server.files.shelf import Shelf
from tests.conftest import PASSWORD
from tests.web.browser import Tab, expect, needs_browser
from tests.web.conftest import WebRunning

pytestmark = needs_browser()


def png(width: int, height: int, noise: bool = False) -> bytes:
    if noise:  # barely compressible: a file big enough to watch go up
        pixels = bytes(i * 7919 % 251 for i in range(width * height * 3))
        image = Image.frombytes("RGB", (width, height), pixels)
    else:
        image = Image.new("RGB", (width, height), (30, 120, 200))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def picked(name: str, body: bytes, kind: str = "application/octet-stream") -> dict[str, Any]:
    """A file as the file input's picker would give it."""
    return {"name": name, "mimeType": kind, "buffer": body}


async def pair(web: WebRunning, browser) -> tuple[Tab, Tab]:
    """ana's page and bob's, both in #general."""
    ana, bob = await browser.tab(), await browser.tab()
    await ana.register(web.base, "ana", PASSWORD)
    await bob.register(web.base, "bob", PASSWORD)
    return ana, bob


# A DataTransfer holding one file, as a paste or a drop brings it.
HOLDING = """
    const bytes = Uint8Array.from(atob(file.body), (c) => c.charCodeAt(0));
    const data = new DataTransfer();
    data.items.add(new File([bytes], file.name, { type: file.type }));
"""


async def paste(page: Any, body: bytes, name: str, kind: str = "") -> None:
    """`body` pasted in the input as a file (an image copied, say)."""
    await page.focus("#input")
    script = """file => {%s
        const init = { clipboardData: data, bubbles: true, cancelable: true };
        document.getElementById("input").dispatchEvent(new ClipboardEvent("paste", init));
    }"""
    file = {"body": base64.b64encode(body).decode(), "name": name, "type": kind}
    await page.evaluate(script % HOLDING, file)


async def drop(page: Any, body: bytes, name: str, kind: str = "") -> None:
    """`body` dragged onto the messages and dropped there as a file."""
    script = """file => {%s
        const pane = document.getElementById("messages");
        for (const type of ["dragenter", "dragover", "drop"]) {
            const init = { dataTransfer: data, bubbles: true, cancelable: true };
            pane.dispatchEvent(new DragEvent(type, init));
        }
    }"""
    file = {"body": base64.b64encode(body).decode(), "name": name, "type": kind}
    await page.evaluate(script % HOLDING, file)


async def thumbnail_drawn(tab: Tab) -> Any:
    """The last message's thumbnail, once drawn from the bytes the page fetched."""
    image = tab.messages().locator(".msg").last.locator("img.thumb-image")
    await expect(image).to_have_attribute("src", re.compile(r"^blob:"))
    await tab.page.wait_for_function(
        "() => { const i = [...document.querySelectorAll('#messages img.thumb-image')].pop();"
        " return i.complete && i.naturalWidth > 0; }"
    )
    return image


async def test_a_picture_goes_up_with_progress_and_shows_as_a_thumbnail_to_everyone(
    web: WebRunning, browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the server holds the upload, the progress bar shows what left and
    Cancel stops it: nothing is sent and the text is back in the input.
    Attached again, it goes up and one message carries the text and the
    picture, a thumbnail in ana's page and in bob's."""
    gate = asyncio.Event()
    receive = Shelf.receive

    async def held(self: Shelf, *args: Any) -> Any:
        await gate.wait()
        return await receive(self, *args)

    monkeypatch.setattr(Shelf, "receive", held)
    ana, bob = await pair(web, browser)
    page = ana.page
    await expect(page.locator("#attach")).to_be_visible()
    big = png(400, 300, noise=True)
    await page.fill("#input", "the view from here")
    await page.set_input_files("#file-input", [picked("view.png", big, "image/png")])
    row = page.locator("#uploads .upload")
    await expect(row.locator(".upload-name")).to_have_text("view.png")
    await page.wait_for_function("() => document.querySelector('#uploads progress').value > 0")
    await expect(page.locator("#input")).to_have_value("")
    await row.get_by_role("button", name="cancel the upload of view.png").click()
    await expect(page.locator("#uploads")).to_be_hidden()
    await expect(page.locator("#input")).to_have_value("the view from here")
    gate.set()

    await page.set_input_files("#file-input", [picked("view.png", big, "image/png")])
    for tab in (ana, bob):
        last = tab.messages().locator(".msg").last
        await expect(last.locator(".text")).to_have_text("the view from here")
        image = await thumbnail_drawn(tab)
        assert await image.get_attribute("width") == "240"  # fitted before its bytes came
    await expect(page.locator("#input")).to_have_value("")
    await expect(page.locator("#uploads")).to_be_hidden()


async def test_a_pasted_image_is_shared_and_opens_in_the_viewer(web: WebRunning, browser) -> None:
    """An image pasted in the input (no text on the clipboard) goes as a
    message of its own; its thumbnail opens the whole image in the viewer,
    which Escape closes (the focus back on the thumbnail), as a click does."""
    ana, bob = await pair(web, browser)
    page = ana.page
    picture = png(900, 300)
    await paste(page, picture, "image.png", "image/png")
    await thumbnail_drawn(bob)
    await thumbnail_drawn(ana)
    thumb = bob.messages().locator(".msg").last.locator("button.thumb")
    await thumb.focus()
    await bob.page.keyboard.press("Enter")
    viewer = bob.page.locator("#viewer")
    await expect(viewer).to_be_visible()
    await expect(bob.page.locator("#viewer-name")).to_contain_text("image.png")
    whole = bob.page.locator("#viewer-image")
    await bob.page.wait_for_function(
        "() => document.getElementById('viewer-image').naturalWidth === 900"
    )
    await bob.page.keyboard.press("Escape")
    await expect(viewer).to_be_hidden()
    await expect(thumb).to_be_focused()
    assert await whole.get_attribute("src") is None  # its object URL let go
    await thumb.click()
    await expect(viewer).to_be_visible()
    await whole.click()
    await expect(viewer).to_be_hidden()


async def test_a_file_dropped_in_a_conversation_is_a_card_whose_download_is_the_same_bytes(
    web: WebRunning, browser, tmp_path: Path
) -> None:
    """A file that is no image, dropped on ana's conversation with bob, is a
    card in bob's page: its name, size and type, and Download saves the
    bytes that were sent, under their name."""
    ana, bob = await pair(web, browser)
    await ana.type("/query bob")
    await expect(ana.page.locator("#title")).to_have_text("bob")
    body = b"\x00\x01 not text, not a picture \xff" * 300
    await drop(ana.page, body, "data set.bin")
    await bob.buffer("ana")
    card = bob.messages().locator(".msg").last.locator(".file-card")
    await expect(card.locator(".file-name")).to_have_text("data set.bin")
    await expect(card.locator(".file-meta")).to_have_text("8.2 KB · application/octet-stream")
    async with bob.page.expect_download() as waiting:
        await card.get_by_role("button", name="download data set.bin").click()
    download = await waiting.value
    assert download.suggested_filename == "data set.bin"
    saved = tmp_path / "saved"
    await download.save_as(saved)
    assert saved.read_bytes() == body


async def test_a_file_past_the_limit_is_refused_before_it_is_sent(start_web, browser) -> None:
    """Above hello's max_upload, nothing goes: the page says why, beside the
    input, and the text typed stays there."""
    web = await start_web(max_upload=3000)
    ana, bob = await pair(web, browser)
    page = ana.page
    await page.fill("#input", "the big one")
    await page.set_input_files("#file-input", [picked("big.bin", b"x" * 5000)])
    error = page.locator("#uploads .upload.failed")
    await expect(error.locator(".upload-error")).to_have_text(
        "big.bin was not sent: it has 4.9 KB, and the server takes files of at most 2.9 KB"
    )
    await expect(page.locator("#input")).to_have_value("the big one")
    await error.get_by_role("button", name="dismiss the error about big.bin").click()
    await expect(page.locator("#uploads")).to_be_hidden()
    await expect(bob.messages().locator(".msg")).to_have_count(0)


async def test_a_refusal_by_the_server_is_said_and_the_text_comes_back(start_web, browser) -> None:
    """Past the account's quota the server answers 413 `quota_exceeded`: the
    page says so in words and gives the text back."""
    web = await start_web(upload_quota=3000)
    browser.expected.append(r"status of 413")  # Chrome's own line for any refused request
    ana, _ = await pair(web, browser)
    page = ana.page
    await page.fill("#input", "two of them")
    await page.set_input_files("#file-input", [picked("one.bin", b"1" * 2000)])
    await expect(ana.messages().locator(".msg .text").last).to_have_text("two of them")
    await page.fill("#input", "and another")
    await page.set_input_files("#file-input", [picked("two.bin", b"2" * 2000)])
    await expect(page.locator("#uploads .upload-error")).to_have_text(
        "two.bin was not sent: your files would take more room than the server gives each"
        " account (quota_exceeded)"
    )
    await expect(page.locator("#input")).to_have_value("and another")


async def test_without_files_there_is_nothing_to_attach(
    web: WebRunning, browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hello without `files`: no attach button, and an image pasted in the
    input is not taken for an upload."""
    monkeypatch.setattr(Shelf, "offer", lambda self, address: None)
    ana, _ = await pair(web, browser)
    await expect(ana.page.locator("#attach")).to_be_hidden()
    await paste(ana.page, png(20, 20), "image.png", "image/png")
    await ana.type("only words")
    await expect(ana.messages().locator(".msg .text").last).to_have_text("only words")
    await expect(ana.page.locator("#uploads")).to_be_hidden()
    await expect(ana.messages().locator(".msg")).to_have_count(1)


async def test_files_go_up_after_a_reload_that_logged_in_with_the_saved_token(
    web: WebRunning, browser
) -> None:
    """The token a saved login used is the one /files takes: a reloaded page
    (whose login reply carries no token) still uploads."""
    tab = await browser.tab()
    await tab.register(web.base, "ana", PASSWORD, remember=True)
    await tab.page.reload()
    await expect(tab.page.locator("#status")).to_have_text("online")
    await tab.page.set_input_files("#file-input", [picked("after.txt", b"still me\n")])
    card = tab.messages().locator(".msg").last.locator(".file-card")
    await expect(card.locator(".file-name")).to_have_text("after.txt")
