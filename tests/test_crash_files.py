"""SIGKILL the real server during and after uploads: an acknowledged file
survives, a partial one leaves nothing behind."""

from __future__ import annotations

import asyncio
import base64
import re
from pathlib import Path

import aiohttp

from nexus.server.files.shelf import files_root
from tests.procs import ServerProcess, data_file, engine_flags
from tests.wire import Peer

PASSWORD = "crash-test-password"


def web_port(server: ServerProcess) -> int:
    """The web port, from the line the server prints after the one it listens with."""
    assert server.proc is not None and server.proc.stdout is not None
    line = server.proc.stdout.readline()
    found = re.search(r"web client on http://[\d.]+:(\d+)/", line)
    assert found, line
    return int(found.group(1))


async def account(port: int, name: str, register: bool = True) -> Peer:
    peer = await Peer.connect("127.0.0.1", port)
    await peer.frame()
    await peer.ok("register" if register else "login", username=name, password=PASSWORD)
    return peer


def auth(name: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{name}:{PASSWORD}".encode()).decode()}


def contents(data: Path) -> list[Path]:
    root = files_root(data)
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


async def test_an_acknowledged_upload_survives_sigkill(tmp_path: Path, engine: str) -> None:
    data = data_file(tmp_path, engine)
    body = bytes(range(256)) * 4096  # 1 MiB
    flags = (*engine_flags(engine, data), "--web-port", "0", "--rate-limit", "off")
    server = ServerProcess(data, *flags).start()
    try:
        port = web_port(server)
        ana = await account(server.port, "ana")
        bob = await account(server.port, "bob")
        headers = {**auth("ana"), "Content-Disposition": 'attachment; filename="blob.bin"'}
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"http://127.0.0.1:{port}/files", data=body, headers=headers) as r,
        ):
            assert r.status == 201
            up = await r.json()
        await ana.ok("say", room="general", text="x", files=[up["id"]])
        await ana.close()
        await bob.close()
        server.kill()
        server = ServerProcess(data, *flags).start()
        port = web_port(server)
        async with aiohttp.ClientSession() as http:
            url = f"http://127.0.0.1:{port}{up['url']}"
            async with http.get(url, headers=auth("bob")) as r:
                assert r.status == 200 and await r.read() == body
    finally:
        server.kill()


async def test_an_upload_cut_by_sigkill_leaves_nothing(tmp_path: Path, engine: str) -> None:
    data = data_file(tmp_path, engine)
    flags = (*engine_flags(engine, data), "--web-port", "0", "--rate-limit", "off")
    server = ServerProcess(data, *flags).start()
    try:
        port = web_port(server)
        await (await account(server.port, "ana")).close()
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        head = (
            f"POST /files HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: {auth('ana')['Authorization']}\r\nContent-Length: 10000000\r\n\r\n"
        )
        writer.write(head.encode() + b"q" * 2_000_000)
        await writer.drain()
        for _ in range(200):  # part of it is on disk
            if contents(data):
                break
            await asyncio.sleep(0.02)
        assert contents(data), "the upload never reached the disk"
        server.kill()
        writer.close()
        server = ServerProcess(data, *flags).start()
        web_port(server)
        assert contents(data) == []
        peer = await account(server.port, "ana", register=False)
        await peer.close()
    finally:
        server.kill()
