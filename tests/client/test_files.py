"""Files in the full-screen client against a real server with a web port: /upload,
the attachment rows and previews, /save, /open; and how they are drawn, without I/O."""

from __future__ import annotations

import io
import os
from typing import Any

import pytest
from PIL import Image

from nexus.client import commands, render
from nexus.client.commands import Shown, path_completions
from nexus.client.layout import status_bar
from nexus.client.state import ChatState
from nexus.client.transfer import TransferError
from tests.client.conftest import room_info, until

MAX_UPLOAD = 256 * 1024


@pytest.fixture
async def server(start_server):
    """The client tests' server, with files (over its web port)."""
    return await start_server(web_port=0, max_upload=MAX_UPLOAD)


def png(width: int = 64, height: int = 32, colour=(200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, "PNG")
    return out.getvalue()


def said_with_files(driver) -> Any:
    """The newest message of the current buffer that carries files, once there is one."""
    buffer = driver.state.current
    return next(
        (e for e in reversed(list(buffer.messages())) if e.message.get("files")),
        None,
    )


def shown(entry, width: int = 80) -> list[str]:
    return ["".join(text for style, text, *_ in row) for row in entry.rows(width)]


async def test_an_upload_reaches_the_room_with_its_text_and_row(chat, tmp_path):
    ana, bob = await chat(), await chat()
    notes = tmp_path / "night notes.txt"
    notes.write_bytes(b"the log of last night\n" * 100)
    ana.type(f'/upload "{notes}" the log\r')
    entry = await until(lambda: said_with_files(bob), what="the file in bob's room")
    assert entry.text == "the log"
    rows = shown(entry)
    assert rows[0].endswith(f"{ana.state.me} │ the log [{entry.seq}]")
    assert "📎 night notes.txt  2.1 KiB  text/plain" in rows[1]
    await until(lambda: not ana.state.transfers, what="the status bar cleared")


async def test_an_image_shows_its_preview_once_its_thumbnail_came(chat, tmp_path):
    ana, bob = await chat(), await chat()
    picture = tmp_path / "red.png"
    picture.write_bytes(png())
    ana.type(f"/upload {picture}\r")
    entry = await until(lambda: said_with_files(bob), what="the picture in bob's room")
    file_id = entry.message["files"][0]["id"]
    await until(lambda: file_id in bob.state.thumbnails, what="the thumbnail")
    rows = entry.rows(80)
    cells = [f for row in rows for f in row if f[1].startswith("▀")]
    assert cells and all(style == "fg:#c81e1e bg:#c81e1e" for style, _ in cells)
    assert 1 < len(rows) - 2 <= 8  # the text's row, the file's row, then the picture
    assert file_id in bob.state.thumbnails_asked and not bob.state.thumbnails_wanted


async def test_no_preview_when_previews_are_off(chat, tmp_path):
    ana, bob = await chat(), await chat()
    bob.state.previews = False
    picture = tmp_path / "red.png"
    picture.write_bytes(png())
    ana.type(f"/upload {picture} look\r")
    entry = await until(lambda: said_with_files(bob), what="the picture in bob's room")
    assert len(shown(entry)) == 2 and not bob.state.thumbnails_wanted
    assert not bob.state.thumbnails


async def test_an_upload_in_a_conversation_is_a_direct_message(chat, tmp_path):
    ana, bob = await chat(), await chat()
    ana.type(f"/query {bob.state.me}\r")
    await until(lambda: ana.state.current.kind == "dm", what="the conversation")
    path = tmp_path / "for-bob.txt"
    path.write_text("psst")
    ana.type(f"/upload {path}\r")
    await until(lambda: bob.state.dms.get(ana.state.me.casefold()), what="bob's buffer")
    buffer = bob.state.dms[ana.state.me.casefold()]
    entry = await until(lambda: buffer.newest(), what="the file")
    assert entry.message["files"][0]["name"] == "for-bob.txt" and entry.text == ""


async def test_save_writes_the_same_bytes_and_never_over_a_file(chat, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    ana, bob = await chat(), await chat()
    body = os.urandom(200_000)
    path = tmp_path / "data.bin"
    path.write_bytes(body)
    ana.type(f"/upload {path}\r")
    entry = await until(lambda: said_with_files(bob), what="the file in bob's room")
    downloads = tmp_path / "home" / "Downloads"
    bob.type(f"/save {entry.seq}\r")
    await bob.shows(f"saved {downloads / 'data.bin'}")
    bob.type(f"/save {entry.seq}\r")
    await bob.shows(f"saved {downloads / 'data (1).bin'}")
    assert (
        (downloads / "data.bin").read_bytes() == (downloads / "data (1).bin").read_bytes() == body
    )
    elsewhere = tmp_path / "kept.bin"
    bob.type(f"/save {entry.seq} {elsewhere}\r")
    await bob.shows(f"saved {elsewhere}")
    assert elsewhere.read_bytes() == body
    under_a_file = elsewhere / "x.bin"
    bob.type(f"/save {entry.seq} {under_a_file}\r")
    await bob.shows(f"saving data.bin: cannot write in {elsewhere}")
    assert not bob.state.transfers


async def test_save_explains_what_it_cannot_do(chat):
    ana = await chat()
    ana.type("hello\r")
    entry = await until(lambda: ana.state.current.newest(), what="the message")
    ana.type(f"/save {entry.seq}\r")
    await ana.shows(f"message {entry.seq} carries no file")
    ana.type("/save 9999\r")
    await ana.shows("message 9999 is not loaded in #general: /goto 9999 loads it")
    ana.type("/save x\r")
    await ana.shows("n is the [number] after a message")


async def test_open_hands_the_file_to_xdg_open(chat, tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    opened = tmp_path / "opened"
    opener = bin_dir / "xdg-open"
    opener.write_text(f'#!/bin/sh\ncp "$1" {opened}\n')
    opener.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    ana = await chat()
    path = tmp_path / "photo.png"
    path.write_bytes(png())
    ana.type(f"/upload {path}\r")
    entry = await until(lambda: said_with_files(ana), what="the picture")
    ana.type(f"/open {entry.seq}\r")
    await until(opened.exists, what="xdg-open to run")
    assert opened.read_bytes() == png()


async def test_open_says_when_xdg_open_is_missing(chat, tmp_path, monkeypatch):
    ana = await chat()
    path = tmp_path / "a.txt"
    path.write_text("a")
    ana.type(f"/upload {path}\r")
    entry = await until(lambda: said_with_files(ana), what="the file")
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    ana.type(f"/open {entry.seq}\r")
    await ana.shows("xdg-open is not installed")


async def test_upload_refusals_are_one_line(chat, tmp_path):
    ana = await chat()
    ana.type(f"/upload {tmp_path / 'missing.png'}\r")
    await ana.shows(f"no file {tmp_path / 'missing.png'}")
    big = tmp_path / "big.bin"
    big.write_bytes(b"\0" * (MAX_UPLOAD + 1))
    ana.type(f"/upload {big}\r")
    await ana.shows(f"uploading big.bin: big.bin has {MAX_UPLOAD + 1:,} bytes")
    assert "(too_large)" in (await ana.shows("uploading big.bin"))
    assert not ana.state.transfers and said_with_files(ana) is None


async def test_a_server_without_a_web_port_takes_no_files(chat, start_server, tmp_path):
    plain = await start_server(tmp_path / "plain.json")
    ana = await chat(port=plain.port)
    path = tmp_path / "a.txt"
    path.write_text("a")
    ana.type(f"/upload {path}\r")
    await ana.shows("this server takes no files (it has no web port) (no_files)")


# -- without a server ----------------------------------------------------------


class Ctx:
    def __init__(self) -> None:
        self.state = ChatState("ana", "here")
        self.redraws = 0

    def changed(self) -> None:
        self.redraws += 1


def test_a_transfer_shows_its_percentage_in_the_status_bar_while_it_runs():
    ctx = Ctx()
    with Shown(ctx, "uploading cat.png") as progress:  # type: ignore[arg-type]
        progress(0, 4096)
        progress(1, 4096)  # still 0%: no redraw for it
        progress(2048, 4096)
        bar = "".join(text for _, text, *_ in status_bar(ctx.state))
        assert "[uploading cat.png 50%]" in bar
    assert ctx.redraws == 3 and not ctx.state.transfers
    assert "uploading" not in "".join(text for _, text, *_ in status_bar(ctx.state))


def test_a_failed_transfer_ends_as_an_error_line():
    ctx = Ctx()
    with Shown(ctx, "saving x.txt"):  # type: ignore[arg-type]
        raise TransferError("not_allowed", "only those who can read it may")
    line = ctx.state.home.entries[-1].plain
    assert line.endswith("saving x.txt: only those who can read it may (not_allowed)")


def test_an_attachment_row_says_name_size_and_type():
    file = {"id": "a" * 22, "name": "cat\x1b[2J.png", "size": 1536, "type": "image/png"}
    assert render.attachment_row(file).plain == "📎 cat.png  1.5 KiB  image/png"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (25 * 1024 * 1024, "25.0 MiB"),
        (3 << 30, "3.0 GiB"),
    ],
)
def test_sizes_as_people_read_them(n, text):
    assert render.size(n) == text


def test_a_message_of_files_alone_is_its_rows():
    state = ChatState("ana", "here")
    state.add_room(room_info("general"))
    files = [
        {"id": "a" * 22, "name": "a.txt", "size": 10, "type": "text/plain"},
        {"id": "b" * 22, "name": "b.png", "size": 10, "type": "image/png", "width": 2, "height": 4},
    ]
    state.apply(
        {
            "event": "message",
            "room": "general",
            "seq": 1,
            "from": "bob",
            "text": "",
            "ts": 0.0,
            "files": files,
        }  # type: ignore[typeddict-item]
    )
    entry = state.rooms["general"].find(1)
    assert [row.strip() for row in shown(entry)][1:] == [
        "│ 📎 a.txt  10 B  text/plain",
        "│ 📎 b.png  10 B  image/png",
    ]
    assert list(state.thumbnails_wanted) == ["b" * 22]  # only images have thumbnails
    state.add_thumbnail("b" * 22, png(2, 4, (0, 0, 255)))
    assert shown(entry)[-1].strip() == "│ ▀▀"


def test_paths_complete_from_the_disk(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "pictures").mkdir()
    (tmp_path / "photo.png").write_text("")
    (tmp_path / ".hidden").write_text("")
    assert path_completions("~/p") == ["~/photo.png", "~/pictures/"]
    assert path_completions("~/") == ["~/photo.png", "~/pictures/"]
    assert path_completions("~/.h") == ["~/.hidden"]
    assert path_completions(f"{tmp_path}/pic") == [f"{tmp_path}/pictures/"]
    assert path_completions("~") == ["~/"]
    assert path_completions("/no/such/dir/x") == []
    state = ChatState("ana", "here")
    assert commands.completions("/upload ~/ph", state) == ("~/ph", ["~/photo.png"])
