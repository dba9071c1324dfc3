"""`nexus-chat send --file`: the real binary uploads, then sends one message with the files."""

from __future__ import annotations

import base64
from urllib.parse import quote

import aiohttp
import pytest

from nexus.client.script import plain
from tests.client.test_script import at, chat, no_leftovers  # noqa: F401 - a fixture
from tests.conftest import PASSWORD

MAX_UPLOAD = 64 * 1024


@pytest.fixture
async def server(start_server):
    return await start_server(web_port=0, max_upload=MAX_UPLOAD)


async def fetch(server, user: str, file: dict) -> bytes:
    web_host, web_port = server.server.web_address
    url = f"http://{web_host}:{web_port}/files/{file['id']}/{quote(file['name'], safe='')}"
    auth = "Basic " + base64.b64encode(f"{user}:{PASSWORD}".encode()).decode()
    async with aiohttp.ClientSession() as http, http.get(url, headers={"Authorization": auth}) as r:
        assert r.status == 200
        return await r.read()


async def test_send_uploads_the_files_then_says_them_with_the_text(server, tmp_path):
    await server.user("ana")
    bob = await server.user("bob")
    first, second = tmp_path / "a.txt", tmp_path / "b b.bin"
    first.write_text("first file\n")
    second.write_bytes(bytes(range(256)) * 10)
    code, out, err = await chat(
        "send", *at(server), "--user", "ana", "--room", "general",
        "--file", str(first), "--file", str(second), "two files",
    )  # fmt: skip
    assert (code, out, err) == (0, "", "")
    message = await bob.event("message")
    assert message["text"] == "two files"
    assert [f["name"] for f in message["files"]] == ["a.txt", "b b.bin"]
    assert await fetch(server, "bob", message["files"][1]) == second.read_bytes()


async def test_send_a_file_alone_to_a_person(server, tmp_path):
    await server.user("ana")
    bob = await server.user("bob")
    path = tmp_path / "note.txt"
    path.write_text("psst")
    code, _, err = await chat(
        "send", *at(server), "--user", "ana", "--to", "bob", "--file", str(path)
    )
    assert (code, err) == (0, "")
    dm = await bob.event("dm")
    assert dm["text"] == "" and dm["files"][0]["name"] == "note.txt"


async def test_send_file_failures_exit_non_zero_and_say_why(server, start_server, tmp_path):
    await server.user("ana")
    base = ("send", *at(server), "--user", "ana", "--room", "general")
    code, _, err = await chat(*base, "--file", str(tmp_path / "missing.txt"))
    assert code == 2 and f"--file {tmp_path / 'missing.txt'}: no such file" in err
    big = tmp_path / "big.bin"
    big.write_bytes(b"\0" * (MAX_UPLOAD + 1))
    code, _, err = await chat(*base, "--file", str(big), "too big")
    assert code == 1 and f"{big} not uploaded, nothing sent" in err and "(too_large)" in err
    many = ["--file", str(big)] * 11
    code, _, err = await chat(*base, *many)
    assert code == 2 and "at most 10 files" in err
    plain = await start_server(tmp_path / "plain.json")
    await plain.user("ana")
    path = tmp_path / "a.txt"
    path.write_text("a")
    code, _, err = await chat(
        "send", *at(plain), "--user", "ana", "--room", "general", "--file", str(path)
    )
    assert code == 1 and "this server takes no files (it has no web port)" in err


def test_tail_shows_each_file_on_a_line_of_its_own():
    event = {
        "event": "message",
        "room": "general",
        "seq": 1,
        "from": "ana",
        "text": "the minutes",
        "ts": 0.0,
        "files": [{"id": "a" * 22, "name": "m\x1b[2J.txt", "size": 2048, "type": "text/plain"}],
    }
    assert plain(event, "bob") == "#general ana: the minutes\n    📎 m.txt  2.0 KiB  text/plain"
    alone = {**event, "text": ""}
    assert plain(alone, "bob") == "#general ana: 📎 m.txt  2.0 KiB  text/plain"
