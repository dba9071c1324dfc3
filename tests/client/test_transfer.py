"""transfer.py against a real server's web port: uploads, downloads, thumbnails, refusals;
and the names a download is given on this machine."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from nexus.client import transfer
from nexus.client.connection import ChatConnection
from nexus.client.transfer import Files, TransferError
from tests.client.conftest import fresh_name
from tests.conftest import PASSWORD


def png(width: int = 40, height: int = 20) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
async def files_server(start_server):
    return await start_server(web_port=0, max_upload=64 * 1024)


@pytest.fixture
async def account(files_server, connect):
    """(connection, Files) of a fresh account, logging in to HTTP with its token."""
    conn, login = await connect(port=files_server.port)
    files = Files.offered(conn.hello, login["user"]["username"], login["token"])
    yield conn, files
    await files.close()


async def test_an_upload_streams_the_file_and_answers_its_record(account, tmp_path):
    conn, files = account
    path = tmp_path / "night log.txt"
    path.write_bytes(b"the log of last night\n" * 2000)
    seen: list[tuple[int, int]] = []
    record = await files.upload(path, lambda done, total: seen.append((done, total)))
    assert record["name"] == "night log.txt" and record["size"] == 44_000
    assert record["type"].startswith("text/plain")
    assert seen[0] == (0, 44_000) and seen[-1] == (44_000, 44_000) and len(seen) >= 2
    sent = await conn.request("say", room="general", text="", files=[record["id"]])
    assert sent["seq"] >= 1


async def test_a_download_is_the_same_bytes_and_never_replaces_a_file(account, tmp_path):
    _, files = account
    source = tmp_path / "up" / "photo.png"
    source.parent.mkdir()
    source.write_bytes(png())
    record = await files.upload(source)
    dest = tmp_path / "down" / "photo.png"
    first = await files.download(record, dest)
    second = await files.download(record, dest)
    assert first == dest and second == dest.with_name("photo (1).png")
    assert first.read_bytes() == second.read_bytes() == png()
    assert sorted(p.name for p in dest.parent.iterdir()) == ["photo (1).png", "photo.png"]


async def test_a_thumbnail_is_a_small_picture(account, tmp_path):
    _, files = account
    path = tmp_path / "wide.png"
    path.write_bytes(png(640, 320))
    record = await files.upload(path)
    assert (record["width"], record["height"]) == (640, 320)
    thumb = Image.open(io.BytesIO(await files.thumbnail(record)))
    assert thumb.size == (320, 160)


async def test_refusals_are_the_servers_codes(account, files_server, tmp_path):
    _, files = account
    path = tmp_path / "notes.txt"
    path.write_bytes(b"notes")
    record = await files.upload(path)
    with pytest.raises(TransferError) as no_thumb:
        await files.thumbnail(record)
    assert no_thumb.value.code == "no_such_file"
    with pytest.raises(TransferError) as unknown:
        await files.download({**record, "id": "x" * 22}, tmp_path / "x")
    assert unknown.value.code == "no_such_file"
    assert not list(tmp_path.glob("*.part")) and not (tmp_path / "x").exists()

    stranger = Files(files.url, files.max_upload, fresh_name(), "wrong")
    with pytest.raises(TransferError) as refused:
        await stranger.upload(path)
    await stranger.close()
    assert refused.value.code == "auth_failed"
    assert str(refused.value).endswith("(auth_failed)")

    other = ChatConnection()
    await other.connect(files_server.host, files_server.port)
    login = await other.request("register", username=fresh_name(), password=PASSWORD)
    theirs = Files.offered(other.hello, login["user"]["username"], login["token"])
    with pytest.raises(TransferError) as private:
        await theirs.download(record, tmp_path / "theirs.txt")
    await theirs.close()
    await other.close()
    assert private.value.code == "not_allowed"


async def test_a_file_over_the_limit_is_refused_before_a_byte_is_sent(account, tmp_path):
    _, files = account
    path = tmp_path / "big.bin"
    path.write_bytes(b"\0" * (files.max_upload + 1))
    sent: list[int] = []
    with pytest.raises(TransferError) as too_large:
        await files.upload(path, lambda done, total: sent.append(done))
    assert too_large.value.code == "too_large" and not sent
    files.max_upload *= 2  # the server's own limit answers too
    with pytest.raises(TransferError) as server_says:
        await files.upload(path)
    assert server_says.value.code == "too_large"


async def test_no_server_no_file(tmp_path):
    files = Files("http://127.0.0.1:9/files", 100, "ana", "token")
    path = tmp_path / "a.txt"
    path.write_bytes(b"a")
    with pytest.raises(TransferError) as down:
        await files.upload(path)
    assert down.value.code == "unreachable"
    with pytest.raises(TransferError) as missing:
        await files.upload(tmp_path / "missing.txt")
    assert missing.value.code == "unreadable"
    await files.close()


def test_a_server_without_a_web_port_has_no_files():
    hello = {"event": "hello", "server": "s", "version": "0", "protocol": 2, "motd": ""}
    with pytest.raises(TransferError) as none:
        Files.offered(hello, "ana", "token")  # type: ignore[arg-type]
    assert none.value.code == "no_files"


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("photo.png", "photo.png"),
        ("../../.bashrc", "_.._.bashrc"),
        ("..", "file"),
        ("", "file"),
        (".hidden", "hidden"),
        ("a\x1b[31mb\nc", "a_[31mb_c"),
        ("C:\\evil.exe", "C:_evil.exe"),
        ("  spaced  ", "spaced"),
    ],
)
def test_a_name_from_elsewhere_is_a_plain_file_name_here(name, safe):
    assert transfer.safe_name(name) == safe


@pytest.mark.parametrize(
    ("name", "number", "numbered"),
    [
        ("photo.png", 0, "photo.png"),
        ("photo.png", 1, "photo (1).png"),
        ("logs.tar.gz", 2, "logs (2).tar.gz"),
        ("README", 3, "README (3)"),
        ("v1.2.zip", 1, "v1.2 (1).zip"),
    ],
)
def test_a_taken_name_gets_a_number_before_its_extension(name, number, numbered):
    assert transfer.numbered(Path("/d") / name, number) == Path("/d") / numbered


def test_placing_a_file_skips_every_taken_name(tmp_path):
    for name in ("a.txt", "a (1).txt"):
        (tmp_path / name).write_text("kept")
    temporary = tmp_path / ".part"
    temporary.write_text("new")
    assert transfer.place(temporary, tmp_path / "a.txt") == tmp_path / "a (2).txt"
    assert (tmp_path / "a.txt").read_text() == "kept" and not temporary.exists()
