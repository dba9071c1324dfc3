"""A real full disk under the real binary: every request still gets its reply, in order.

The data directory is a 2 MiB tmpfs mounted by the test (root only, like
the half-open test); filling it makes the journal's next write fail with
ENOSPC exactly as a full disk does.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.procs import ServerProcess, data_file, engine_flags
from tests.wire import Peer

PASSWORD = "full-disk-password"


def _mount(path: Path) -> bool:
    path.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(path)], capture_output=True
    )
    return done.returncode == 0


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    disk = tmp_path / "disk"
    if os.geteuid() != 0 or not _mount(disk):
        pytest.skip("needs root to mount a tmpfs")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def fill(disk: Path) -> Path:
    """Takes every free byte of `disk`; removing the file frees them again."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        with contextlib.suppress(OSError):
            while True:
                os.write(fd, b"\0" * 512)
    finally:
        os.close(fd)
    return filler


async def logged_in(port: int, name: str, register: bool = True) -> Peer:
    peer = await Peer.connect("127.0.0.1", port)
    await peer.frame()
    await peer.ok("register" if register else "login", username=name, password=PASSWORD)
    return peer


@pytest.mark.engines("json", "sqlite")  # PostgreSQL's disk is the database server's
async def test_every_request_gets_its_reply_in_order_on_a_full_disk(small_disk, engine):
    """Pipelined reads beside a refused write are all answered, in order; so are
    other users' requests in flight at the same moment; writes resume after."""
    server = ServerProcess(
        data_file(small_disk, engine), *engine_flags(engine, data_file(small_disk, engine))
    ).start()
    try:
        ana = await logged_in(server.port, "ana")
        bob = await logged_in(server.port, "bob")
        await ana.ok("say", room="general", text="before")
        filler = fill(small_disk)
        big = "\U0001f4be" * 4000  # 16 KB: more than the last page of the journal holds
        for frames in (
            [{"cmd": "ping"}, {"cmd": "say", "room": "general", "text": big}],
            [{"cmd": "history", "room": "general"}, {"cmd": "say", "room": "general", "text": big}],
            [
                {"cmd": "whois", "username": "bob"},
                {"cmd": "dm", "to": "bob", "text": big},
                {"cmd": "rooms"},
            ],
        ):
            # bob's ping goes out at the same moment as ana's pipeline.
            ana_replies, bob_reply = await asyncio.gather(ana.pipeline(frames), bob.request("ping"))
            assert bob_reply["ok"], bob_reply
            for frame, reply in zip(frames, ana_replies, strict=True):
                if frame["cmd"] in ("say", "dm"):
                    assert reply["error"]["code"] == "internal", reply
                else:
                    assert reply["ok"], (frame, reply)
        filler.unlink()
        await ana.ok("say", room="general", text="after")
        history = await bob.ok("history", room="general")
        assert [m["text"] for m in history["messages"]] == ["before", "after"]
        await ana.close()
        await bob.close()
    finally:
        assert server.stop() == 0
        server.__exit__()
