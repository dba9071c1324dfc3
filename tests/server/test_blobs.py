"""The content store, the type sniffer and the thumbnails, on real files."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import stat
import struct
import sys
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from PIL import Image

from nexus.server.files.background import Background
from nexus.server.files.blobs import Blobs, TooLarge
from nexus.server.files.sniff import inline, sniff
from nexus.server.files.thumbs import thumbnail


async def stream(*pieces: bytes) -> AsyncIterator[bytes]:
    for piece in pieces:
        yield piece


@pytest.fixture
def background() -> Iterator[Background]:
    pool = Background()
    yield pool
    pool.close()


def everything(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


# -- blobs -----------------------------------------------------------------------------


async def test_content_is_stored_whole_once_and_privately(
    tmp_path: Path, background: Background
) -> None:
    blobs = Blobs(tmp_path / "files")
    body = b"abc" * 100_000
    got = await blobs.receive(stream(body[:7], body[7:]), len(body), background)
    assert got.sha256 == hashlib.sha256(body).hexdigest() and got.size == len(body)
    assert got.head == body[:4096]
    assert blobs.path(got.sha256).read_bytes() == body
    again = await blobs.receive(stream(body), len(body), background)
    assert again.sha256 == got.sha256
    assert everything(blobs.root) == [blobs.path(got.sha256)]
    assert stat.S_IMODE(blobs.path(got.sha256).stat().st_mode) == 0o600
    assert stat.S_IMODE(blobs.root.stat().st_mode) == 0o700
    assert blobs.shas() == {got.sha256}
    blobs.remove(got.sha256)
    assert blobs.shas() == set()


async def test_past_the_limit_nothing_is_kept(tmp_path: Path, background: Background) -> None:
    blobs = Blobs(tmp_path / "files")
    assert (await blobs.receive(stream(b"x" * 10), 10, background)).size == 10
    with pytest.raises(TooLarge):
        await blobs.receive(stream(b"y" * 6, b"y" * 5), 10, background)
    assert len(everything(blobs.root)) == 1


async def test_an_upload_cut_off_or_cancelled_leaves_nothing(
    tmp_path: Path, background: Background
) -> None:
    blobs = Blobs(tmp_path / "files")

    async def cut() -> AsyncIterator[bytes]:
        yield b"a" * 3_000_000
        raise ConnectionResetError

    with pytest.raises(ConnectionResetError):
        await blobs.receive(cut(), 10**9, background)
    assert everything(blobs.root) == []
    started = asyncio.Event()

    async def endless() -> AsyncIterator[bytes]:
        while True:
            yield b"b" * 100_000
            started.set()
            await asyncio.sleep(0)

    task = asyncio.ensure_future(blobs.receive(endless(), 10**9, background))
    await started.wait()
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert everything(blobs.root) == []


async def test_a_crashs_leftovers_are_swept(tmp_path: Path) -> None:
    blobs = Blobs(tmp_path / "files")
    blobs.tmp.mkdir(parents=True)
    (blobs.tmp / "half").write_bytes(b"half an upload")
    assert blobs.sweep() == 1 and everything(blobs.root) == []


def test_a_name_that_is_no_sha_is_refused(tmp_path: Path) -> None:
    blobs = Blobs(tmp_path / "files")
    for bad in ("../../etc/passwd", "A" * 64, "ab"):
        with pytest.raises(ValueError):
            blobs.path(bad)


async def test_a_big_upload_is_never_held_whole(tmp_path: Path, background: Background) -> None:
    blobs = Blobs(tmp_path / "files")
    chunk = b"z" * 65536

    async def big() -> AsyncIterator[bytes]:
        for _ in range(480):  # 30 MiB
            yield chunk

    tracemalloc.start()
    got = await blobs.receive(big(), 1 << 30, background)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert got.size == 480 * 65536
    assert peak < 8 << 20, peak


# -- sniff -----------------------------------------------------------------------------


def image(kind: str, mode: str = "RGB", size: tuple[int, int] = (8, 8), **save: object) -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, (10, 200, 30) if mode == "RGB" else None).save(out, kind, **save)
    return out.getvalue()


@pytest.mark.parametrize(
    ("kind", "expected"),
    [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("GIF", "image/gif"), ("WEBP", "image/webp")],
)
def test_images_are_told_by_their_bytes(kind: str, expected: str) -> None:
    assert sniff(image(kind)[:4096]) == expected
    assert inline(expected)


def test_markup_is_never_an_image_whatever_its_name() -> None:
    assert sniff(b"  <!DOCTYPE html><p>hi") == "text/html"
    assert sniff(b"\xef\xbb\xbf<html><body>") == "text/html"
    assert sniff(b"<!-- x --><script>alert(1)</script>") == "text/html"
    svg = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>'
    assert sniff(svg) == "image/svg+xml"
    for kind in ("text/html", "image/svg+xml", "text/plain; charset=utf-8"):
        assert not inline(kind)


def test_text_and_the_rest() -> None:
    assert sniff("ünïcödé text".encode()) == "text/plain; charset=utf-8"
    cut = ("é" * 2048).encode()[:4095]  # a character cut at the head's end
    assert sniff(cut) == "text/plain; charset=utf-8"
    assert sniff(b"\x00\x01\x02junk\xff") == "application/octet-stream"
    assert sniff(b"%PDF-1.7\n") == "application/pdf"
    assert sniff(b"PK\x03\x04rest") == "application/zip"
    assert sniff(b"\x00\x00\x00\x18ftypmp42") == "video/mp4"
    assert sniff(b"ID3\x04") == "audio/mpeg" and inline("audio/mpeg")


# -- thumbnails ------------------------------------------------------------------------


async def test_a_photo_stands_up_and_loses_its_metadata(
    tmp_path: Path, background: Background
) -> None:
    """EXIF orientation 6 (turned 90 degrees) and a GPS position: the thumbnail
    is upright and carries no EXIF at all."""
    photo = Image.new("RGB", (400, 200), (255, 0, 0))
    photo.paste((0, 0, 255), (0, 0, 200, 200))  # the left half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 CW to view
    exif[0x010F] = "PhoneMaker"
    exif[0x8825] = {1: "N", 2: (48.0, 51.0, 0.0)}
    source = tmp_path / "photo.jpg"
    photo.save(source, "JPEG", exif=exif)
    target = tmp_path / "thumb"
    made = await thumbnail(background, source, "image/jpeg", target)
    assert made is not None and (made.width, made.height) == (200, 400)
    with Image.open(target) as thumb:
        assert thumb.size == (160, 320)
        assert not thumb.getexif() and "exif" not in thumb.info
        rgb = thumb.convert("RGB")
        assert rgb.getpixel((80, 10))[2] > 200  # blue on top once stood up
        assert rgb.getpixel((80, 310))[0] > 200  # red below


async def test_transparency_stays_png_and_animations_give_their_first_frame(
    tmp_path: Path,
    background: Background,
) -> None:
    source = tmp_path / "alpha.png"
    Image.new("RGBA", (50, 50), (0, 0, 0, 0)).save(source)
    made = await thumbnail(background, source, "image/png", tmp_path / "t1")
    assert made is not None and (tmp_path / "t1").read_bytes()[:4] == b"\x89PNG"
    frames = [Image.new("RGB", (30, 30), color) for color in ((255, 0, 0), (0, 255, 0))]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    made = await thumbnail(background, tmp_path / "anim.gif", "image/gif", tmp_path / "t2")
    assert made is not None and (made.width, made.height) == (30, 30)


def huge_png(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims `width` x `height` pixels."""
    png = image("PNG", "L", (1, 1))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return png[:8] + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk)) + png[33:]


async def test_what_cannot_or_must_not_be_decoded_has_no_thumbnail(
    tmp_path: Path, background: Background
) -> None:
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(huge_png(20_000, 20_000))
    assert await thumbnail(background, bomb, "image/png", tmp_path / "t") is None
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(image("JPEG")[:40])
    assert await thumbnail(background, broken, "image/jpeg", tmp_path / "t") is None
    text = tmp_path / "a.txt"
    text.write_text("not an image")
    assert await thumbnail(background, text, "text/plain; charset=utf-8", tmp_path / "t") is None
    assert not (tmp_path / "t").exists()


async def test_only_the_decoder_of_the_sniffed_type_reads_a_file(
    tmp_path: Path, background: Background
) -> None:
    """A file is never handed to a decoder its type does not name: GIF bytes
    said to be a PNG are no PNG, and get no thumbnail."""
    source = tmp_path / "a.gif"
    source.write_bytes(image("GIF"))
    assert await thumbnail(background, source, "image/png", tmp_path / "t") is None
    assert await thumbnail(background, source, "image/gif", tmp_path / "t") is not None


@pytest.mark.skipif(sys.platform != "linux", reason="only Linux lowers one thread's priority")
async def test_the_heavy_work_runs_only_in_time_the_chat_leaves(background: Background) -> None:
    """Hashing, writing and drawing run under SCHED_IDLE: any thread of the
    event loop's priority that wakes takes the core at once."""
    assert await background.run(os.sched_getscheduler, 0) == os.SCHED_IDLE
    assert os.sched_getscheduler(0) == os.SCHED_OTHER  # the loop's own thread is untouched
