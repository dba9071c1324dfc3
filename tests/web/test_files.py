"""Files over the web port's HTTP, end to end: uploads by real HTTP clients,
shared in messages over the protocol, downloaded by those who may read
them and refused to everyone else (docs/protocol.md, "Files")."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from PIL import Image

from nexus.server import records
from nexus.server.files.shelf import UNSHARED_GRACE, files_root
from tests.conftest import PASSWORD, needs_postgresql
from tests.postgres import cluster
from tests.procs import server_command
from tests.test_migrate import everything, nexus_server
from tests.web.conftest import WebRunning
from tests.wire import Peer


class Member:
    """A registered user: a protocol peer, and HTTP with its login token."""

    def __init__(self, web: WebRunning, peer: Peer, name: str, token: str) -> None:
        self.web, self.peer, self.name, self.token = web, peer, name, token

    def auth(self, secret: str | None = None) -> dict[str, str]:
        raw = f"{self.name}:{self.token if secret is None else secret}".encode()
        return {"Authorization": "Basic " + base64.b64encode(raw).decode()}

    async def upload(
        self, body: bytes, name: str = "notes.txt", **headers: str
    ) -> tuple[int, dict[str, Any]]:
        headers = {
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}",
            **self.auth(),
            **headers,
        }
        async with (
            aiohttp.ClientSession() as http,
            http.post(self.web.base + "/files", data=body, headers=headers) as r,
        ):
            return r.status, await r.json()

    async def get(self, path: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
        async with (
            aiohttp.ClientSession() as http,
            http.get(self.web.base + path, headers={**self.auth(), **headers}) as r,
        ):
            return r.status, dict(r.headers), await r.read()


async def member(web: WebRunning, name: str) -> Member:
    peer = await web.running.peer()
    reply = await peer.ok("register", username=name, password=PASSWORD)
    peer.name = name
    return Member(web, peer, name, reply["token"])


def png(width: int = 40, height: int = 20) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


def stored(web: WebRunning) -> list[Path]:
    """Every file under the store's files directory (content, thumbnails, temporaries)."""
    root = files_root(web.running.server.config.data)
    return sorted(p for p in root.rglob("*") if p.is_file())


@pytest.fixture
async def pair(web: WebRunning) -> AsyncIterator[tuple[Member, Member]]:
    """Two members of #general."""
    yield await member(web, "ana"), await member(web, "bob")


async def test_hello_says_where_files_go(web: WebRunning) -> None:
    peer = await Peer.connect(web.running.host, web.running.port)
    hello = await peer.frame()
    await peer.close()
    assert hello["files"] == {
        "url": f"http://127.0.0.1:{web.web_port}/files",
        "max_upload": 25 * 1024 * 1024,
    }


async def test_hello_names_the_web_ports_own_host_when_it_has_one(start_web) -> None:
    """With --web-host set, uploads go there, not to the address the chat
    connection came to (the web port may not listen on that one)."""
    web = await start_web(web_host="localhost")
    peer = await Peer.connect(web.running.host, web.running.port)
    hello = await peer.frame()
    await peer.close()
    assert hello["files"]["url"] == f"http://localhost:{web.web_port}/files"


async def test_a_shared_file_reaches_a_member_byte_for_byte(pair: tuple[Member, Member]) -> None:
    ana, bob = pair
    body = b"the log of last night\n" * 1000
    status, up = await ana.upload(body, "night log.txt")
    assert status == 201, up
    assert up["name"] == "night log.txt" and up["size"] == len(body)
    assert up["type"] == "text/plain; charset=utf-8"
    assert up["url"] == f"/files/{up['id']}/night%20log.txt"
    await ana.peer.ok("say", room="general", text="here it is", files=[up["id"]])
    event = await bob.peer.event("message", room="general")
    assert event["files"] == [
        {"id": up["id"], "name": "night log.txt", "size": len(body), "type": up["type"]}
    ]
    status, headers, got = await bob.get(up["url"])
    assert status == 200 and got == body
    assert headers["Content-Disposition"].startswith("attachment;")
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in headers["Content-Security-Policy"]
    status, headers, part = await bob.get(up["url"], Range="bytes=4-11")
    assert status == 206 and part == body[4:12]


async def test_a_message_of_files_alone_needs_no_text(pair: tuple[Member, Member]) -> None:
    ana, bob = pair
    _, up = await ana.upload(png(), "red.png")
    await ana.peer.ok("say", room="general", files=[up["id"]])
    event = await bob.peer.event("message", room="general")
    assert event["text"] == "" and event["files"][0]["id"] == up["id"]
    await ana.peer.fails("empty", "say", room="general", text="  ")


async def test_images_are_inline_with_a_thumbnail(pair: tuple[Member, Member]) -> None:
    ana, bob = pair
    _, up = await ana.upload(png(640, 320), "red.png")
    assert up["type"] == "image/png" and (up["width"], up["height"]) == (640, 320)
    await ana.peer.ok("say", room="general", text="look", files=[up["id"]])
    status, headers, got = await bob.get(up["url"])
    assert got == png(640, 320)
    assert status == 200 and headers["Content-Disposition"].startswith("inline;")
    assert headers["Content-Type"] == "image/png"
    status, headers, thumb = await bob.get(f"/files/{up['id']}/thumb")
    assert status == 200
    assert Image.open(io.BytesIO(thumb)).size == (320, 160)


async def test_others_cannot_take_a_file_they_cannot_read(web: WebRunning) -> None:
    """A private room's file: its members only. A DM's: its two people. The
    uploader and an admin always."""
    ana, bob, eve = [await member(web, n) for n in ("ana", "bob", "eve")]
    await ana.peer.ok("create", room="inner", private=True)
    await ana.peer.ok("invite", room="inner", username="bob")
    await bob.peer.ok("join", room="inner")
    _, secret = await ana.upload(b"plans", "plans.txt")
    _, note = await ana.upload(b"for bob", "bob.txt")
    status, _, _ = await bob.get(secret["url"])
    assert status == 403  # not shared yet: the uploader's alone
    await ana.peer.ok("say", room="inner", text="plans", files=[secret["id"]])
    await ana.peer.ok("dm", to="bob", text="yours", files=[note["id"]])
    for path in (secret["url"], note["url"]):
        assert (await bob.get(path))[0] == 200
        assert (await ana.get(path))[0] == 200
        status, _, body = await eve.get(path)
        assert status == 403 and b"not_allowed" in body
    web.running.server.store.apply(records.Admin(target="eve", on=True))
    assert (await eve.get(secret["url"]))[0] == 200


async def test_erasing_the_message_takes_its_file_away(
    web: WebRunning, pair: tuple[Member, Member]
) -> None:
    ana, bob = pair
    _, up = await ana.upload(b"oops, a secret", "secret.txt")
    sent = await ana.peer.ok("say", room="general", text="x", files=[up["id"]])
    assert (await bob.get(up["url"]))[0] == 200
    await ana.peer.ok("erase", room="general", seq=sent["seq"])
    erased = await bob.peer.event("erased")
    assert "files" not in erased["message"]
    assert (await bob.get(up["url"]))[0] == 403
    shelf = web.running.server.shelf
    assert shelf is not None
    assert await shelf.sweep(now=up_time(web, up["id"]) + UNSHARED_GRACE + 1) == 1
    assert (await ana.get(up["url"]))[0] == 404
    assert stored(web) == []  # the content and its record are gone


def up_time(web: WebRunning, file_id: str) -> float:
    return web.running.server.store.model.files[file_id].ts


async def test_deleting_the_room_takes_its_files_away(web: WebRunning) -> None:
    ana, bob = await member(web, "ana"), await member(web, "bob")
    await ana.peer.ok("create", room="tmp")
    await bob.peer.ok("join", room="tmp")
    _, up = await ana.upload(b"short-lived", "a.txt")
    await ana.peer.ok("say", room="tmp", text="x", files=[up["id"]])
    assert (await bob.get(up["url"]))[0] == 200
    await ana.peer.ok("delete", room="tmp")
    assert (await bob.get(up["url"]))[0] == 403


async def test_a_file_shared_twice_is_kept_until_both_are_gone(
    web: WebRunning, pair: tuple[Member, Member]
) -> None:
    """Content stored once: two uploads of the same bytes share it, and it
    stays while either record does."""
    ana, bob = pair
    _, one = await ana.upload(b"same bytes", "one.txt")
    _, two = await bob.upload(b"same bytes", "two.txt")
    assert len(stored(web)) == 1  # one content, no thumbnail
    await bob.peer.ok("say", room="general", text="x", files=[two["id"]])
    shelf = web.running.server.shelf
    assert shelf is not None
    assert await shelf.sweep(now=up_time(web, one["id"]) + UNSHARED_GRACE + 1) == 1
    status, _, body = await ana.get(two["url"])
    assert status == 200 and body == b"same bytes"


async def test_only_ones_own_uploads_can_be_sent(pair: tuple[Member, Member]) -> None:
    ana, bob = pair
    _, up = await ana.upload(b"mine", "mine.txt")
    await bob.peer.fails("bad_args", "say", room="general", text="x", files=[up["id"]])
    await bob.peer.fails("bad_args", "say", room="general", text="x", files=["A" * 22])
    await bob.peer.fails("bad_args", "dm", to="ana", files=["not an id"])


async def test_a_link_to_ones_own_upload_shares_it(pair: tuple[Member, Member]) -> None:
    """What an IRC client does: upload to the FILEHOST URL, say the link."""
    ana, bob = pair
    _, up = await ana.upload(b"from irc", "irc.txt")
    link = f"{ana.web.base}{up['url']}"
    await ana.peer.ok("say", room="general", text=f"see {link}")
    event = await bob.peer.event("message", room="general")
    assert [f["id"] for f in event["files"]] == [up["id"]]
    assert (await bob.get(up["url"]))[0] == 200
    _, theirs = await bob.upload(b"bob's", "b.txt")
    await ana.peer.ok("say", room="general", text=f"{ana.web.base}{theirs['url']}")
    event = await bob.peer.event("message", room="general")
    assert "files" not in event  # a link to another's upload shares nothing


# -- what is refused -------------------------------------------------------------------


async def test_credentials_are_checked(web: WebRunning, pair: tuple[Member, Member]) -> None:
    ana, _ = pair
    async with aiohttp.ClientSession() as http, http.post(web.base + "/files", data=b"x") as r:
        assert r.status == 401
        assert r.headers["WWW-Authenticate"].startswith("Basic")
        assert (await r.json())["error"]["code"] == "auth_required"
    status, body = await ana.upload(b"x", Authorization=ana.auth("wrong")["Authorization"])
    assert status == 401 and body["error"]["code"] == "auth_failed"
    nobody = "Basic " + base64.b64encode(b"nobody:" + PASSWORD.encode()).decode()
    status, body = await ana.upload(b"x", Authorization=nobody)  # no account: the same answer
    assert status == 401 and body["error"]["code"] == "auth_failed"
    # The password itself, as an IRC client or a browser's prompt sends it.
    status, body = await ana.upload(b"x", Authorization=ana.auth(PASSWORD)["Authorization"])
    assert status == 201, body


async def test_a_file_too_big_is_refused_and_leaves_nothing(start_web) -> None:
    web = await start_web(max_upload=1000)
    ana = await member(web, "ana")
    status, body = await ana.upload(b"x" * 1001)
    assert status == 413 and body["error"]["code"] == "too_large"

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: found while it streams
        for _ in range(20):
            yield b"y" * 100

    async with (
        aiohttp.ClientSession() as http,
        http.post(web.base + "/files", data=chunks(), headers=ana.auth()) as r,
    ):
        assert r.status == 413
    assert (await ana.upload(b"x" * 1000))[0] == 201
    assert len(stored(web)) == 1


async def test_the_quota_counts_what_one_keeps(start_web) -> None:
    web = await start_web(upload_quota=2500)
    ana, bob = await member(web, "ana"), await member(web, "bob")
    assert (await ana.upload(b"a" * 2000))[0] == 201
    status, body = await ana.upload(b"b" * 600)
    assert status == 413 and body["error"]["code"] == "quota_exceeded"
    assert (await bob.upload(b"b" * 600))[0] == 201  # each account its own


async def test_a_cut_off_upload_leaves_nothing(web: WebRunning) -> None:
    ana = await member(web, "ana")
    _, writer = await asyncio.open_connection(web.web_host, web.web_port)
    auth = ana.auth()["Authorization"]
    writer.write(
        (
            f"POST /files HTTP/1.1\r\nHost: {web.web_host}:{web.web_port}\r\n"
            f"Authorization: {auth}\r\nContent-Length: 1000000\r\n\r\n"
        ).encode()
        + b"z" * 300_000
    )
    await writer.drain()
    for _ in range(100):  # the part sent is on disk
        if stored(web):
            break
        await asyncio.sleep(0.02)
    assert stored(web), "the upload never started"
    writer.transport.abort()
    for _ in range(100):
        if not stored(web):
            break
        await asyncio.sleep(0.02)
    assert stored(web) == []
    assert web.running.server.store.model.files == {}


async def test_what_is_served_is_what_the_bytes_are(pair: tuple[Member, Member]) -> None:
    """HTML named .png is HTML, served as an attachment; SVG is never inline."""
    ana, bob = pair
    html = b"<!DOCTYPE html><script>alert(document.cookie)</script>"
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    _, page = await ana.upload(html, "cat.png")
    _, drawing = await ana.upload(svg, "logo.svg")
    assert page["type"].startswith("text/html") and "width" not in page
    assert drawing["type"] == "image/svg+xml"
    await ana.peer.ok("say", room="general", text="x", files=[page["id"], drawing["id"]])
    for up in (page, drawing):
        status, headers, _ = await bob.get(up["url"])
        assert status == 200
        assert headers["Content-Disposition"].startswith("attachment;")
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Content-Security-Policy"] == "default-src 'none'; sandbox"
        assert (await bob.get(f"/files/{up['id']}/thumb"))[0] == 404


async def test_a_wrong_name_or_id_is_not_found(pair: tuple[Member, Member]) -> None:
    ana, _ = pair
    _, up = await ana.upload(b"x", "x.txt")
    assert (await ana.get(f"/files/{up['id']}/y.txt"))[0] == 404
    assert (await ana.get("/files/" + "B" * 22 + "/x.txt"))[0] == 404


async def test_an_upload_survives_a_restart(start_web, tmp_path: Path, engine: str) -> None:
    data = tmp_path / ("kept.db" if engine == "sqlite" else "kept.json")
    web = await start_web(data=data)
    ana, bob = await member(web, "ana"), await member(web, "bob")
    _, up = await ana.upload(png(), "red.png")
    await ana.peer.ok("say", room="general", text="x", files=[up["id"]])
    await web.close()
    await web.running.close()
    web = await start_web(data=data)
    bob.web = web
    status, _, body = await bob.get(up["url"])
    assert status == 200 and hashlib.sha256(body).hexdigest() == hashlib.sha256(png()).hexdigest()


# -- check and backup ------------------------------------------------------------------


def maintenance(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*server_command(), *args], capture_output=True, text=True, timeout=60)


@pytest.mark.engines("json", "sqlite")  # backup of postgresql: pg_dump (below)
async def test_check_verifies_and_backup_and_export_copy_the_files(
    start_web, tmp_path: Path, engine: str
) -> None:
    data = tmp_path / ("store.db" if engine == "sqlite" else "store.json")
    web = await start_web(data=data)
    ana = await member(web, "ana")
    _, up = await ana.upload(png(), "red.png")
    await ana.peer.ok("say", room="general", text="x", files=[up["id"]])
    out = maintenance("check", "--data", str(data))
    assert out.returncode == 0, out.stderr
    assert "files: 1 (1 contents" in out.stdout and "1 files" in out.stdout
    dest = tmp_path / ("copy.db" if engine == "sqlite" else "copy.json")
    out = maintenance("backup", "--data", str(data), str(dest))
    assert out.returncode == 0, out.stderr
    assert "1 files' content" in out.stdout
    out = maintenance("check", "--data", str(dest))
    assert out.returncode == 0 and "files: 1 (1 contents" in out.stdout, out.stdout + out.stderr
    exported = tmp_path / "exported"
    out = maintenance("export", "--data", str(data), "--files", str(exported))
    assert out.returncode == 0, out.stderr
    assert '"name":"red.png"' in out.stdout
    assert (exported / up["id"] / "red.png").read_bytes() == png()
    content = next(p for p in stored(web) if "thumbs" not in p.parts[-2:])
    content.write_bytes(b"altered")
    out = maintenance("check", "--data", str(data))
    assert out.returncode == 1 and "damaged" in out.stderr
    copy = await start_web(data=dest)
    ana.web = copy
    status, _, body = await ana.get(up["url"])
    assert status == 200 and body == png()


@needs_postgresql
@pytest.mark.engines("postgresql")
async def test_check_and_export_read_a_postgresql_store_in_use(
    start_web, tmp_path: Path, engine: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """While its server runs: check verifies the store and its files, export
    copies the files, backup says to use pg_dump; altered content is damage."""
    data = tmp_path / "store.pg"
    web = await start_web(data=data)
    store = ("--database", web.running.server.config.database, "--data", str(data))
    ana = await member(web, "ana")
    _, up = await ana.upload(png(), "red.png")
    await ana.peer.ok("say", room="general", text="x", files=[up["id"]])
    out = maintenance("check", *store)
    assert out.returncode == 0, out.stderr
    assert "store: 1 users, 3 rooms, 1 room messages, 0 conversations" in out.stdout
    assert "files: 1 (1 contents" in out.stdout and out.stdout.endswith("ok\n")
    exported = tmp_path / "exported"
    code, said = await asyncio.to_thread(
        nexus_server, capsys, "export", *store, "--files", str(exported)
    )
    assert code == 0 and '"name":"red.png"' in said, said
    assert (exported / up["id"] / "red.png").read_bytes() == png()
    code, said = await asyncio.to_thread(
        nexus_server, capsys, "backup", str(tmp_path / "copy.db"), *store
    )
    assert code == 1 and said.startswith("nexus-server backup: use_pg_dump: ")
    assert "pg_dump --format=custom" in said and not (tmp_path / "copy.db").exists()
    elsewhere = str(tmp_path / "elsewhere.pg")
    code, said = await asyncio.to_thread(nexus_server, capsys, "check", *store, "--data", elsewhere)
    assert code == 1 and f"{elsewhere}.files is missing (is --data the server's?)" in said, said
    content = next(p for p in stored(web) if "thumbs" not in p.parts[-2:])
    content.write_bytes(b"altered")
    code, said = await asyncio.to_thread(nexus_server, capsys, "check", *store)
    assert code == 1 and said.startswith("nexus-server check: damaged: content "), said


@needs_postgresql
@pytest.mark.engines("json")
async def test_a_store_goes_through_postgresql_and_sqlite_and_back_with_its_files(
    start_web, tmp_path: Path, engine: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """What a real server wrote (messages, a DM, an edit, reactions, files)
    goes json -> postgresql -> sqlite -> json unchanged, each step with its
    files, exporting the same; a server on the last copy serves the file."""
    source, pg_data = tmp_path / "source.json", tmp_path / "moved.pg"
    web = await start_web(data=source)
    ana, bob = await member(web, "ana"), await member(web, "bob")
    _, up = await ana.upload(png(), "red.png")
    _, note = await bob.upload(b"plain words", "note.txt")
    sent = await ana.peer.ok("say", room="general", text="look @bob", files=[up["id"]])
    await bob.peer.ok("react", room="general", seq=sent["seq"], emoji="🎉")
    await ana.peer.ok("edit", room="general", seq=sent["seq"], text="look now @bob")
    dm = await bob.peer.ok("dm", to="ana", text="yours", files=[note["id"]])
    await ana.peer.ok("react", seq=dm["seq"], emoji="👀", **{"with": "bob"})
    await web.running.close()
    url = cluster().database_for(pg_data)
    db, back = tmp_path / "moved.db", tmp_path / "back.json"
    for src, dest in ((source, url), (url, db), (db, back)):
        out = maintenance("migrate", str(src), str(dest), "--data", str(pg_data))
        assert out.returncode == 0, out.stderr
        assert "2 users" in out.stdout and "2 files' content" in out.stdout
    assert await asyncio.to_thread(everything, back) == await asyncio.to_thread(everything, source)
    stores = (
        ("--data", str(source)),
        ("--database", url, "--data", str(pg_data)),
        ("--data", str(db)),
    )
    exports = [await asyncio.to_thread(nexus_server, capsys, "export", *store) for store in stores]
    assert exports[0] == exports[1] == exports[2]
    assert (
        '"text":"look now @bob"' in exports[0][1] and '"reactions":{"👀":["ana"]}' in exports[0][1]
    )
    code, said = await asyncio.to_thread(nexus_server, capsys, "check", *stores[1])
    assert code == 0 and "files: 2 (2 contents" in said, said
    copy = await start_web(data=back)
    ana.web = copy
    status, _, body = await ana.get(up["url"])
    assert status == 200 and body == png()
