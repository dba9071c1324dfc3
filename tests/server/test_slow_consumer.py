"""A member that stops reading neither stalls its room nor grows the server's memory."""

from __future__ import annotations

import asyncio
import socket

import orjson

from tests.conftest import PASSWORD

FLOOD = 1_500
TEXT = "x" * 1_000  # ~1.1 KB a frame: the flood is ~1.6 MB, past the 1 MiB cap


def raw_member(server, name: str, room: str) -> socket.socket:
    """A plain socket that registers, joins `room` and then reads only when told to.

    (An asyncio peer would keep reading in the background whatever the test
    does, so it could never stall.)"""
    sock = socket.create_connection((server.host, server.port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    frames = [
        {"cmd": "register", "username": name, "password": PASSWORD},
        {"cmd": "join", "room": room},
    ]
    sock.sendall(b"".join(orjson.dumps(f) + b"\n" for f in frames))
    return sock


def set_send_buffer(server, name: str, size: int) -> None:
    for connection in server.connections(name):
        sock = server.transport(connection).get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)


async def joined(server, name: str, room: str) -> None:
    """Waits until `name` is a member of `room`, then shrinks its kernel send buffer,
    so its backlog builds up in the server's buffers rather than in megabytes of
    loopback socket memory."""
    for _ in range(500):
        if name in server.server.store.model.rooms[room].members:
            break
        await asyncio.sleep(0.01)
    set_send_buffer(server, name, 4096)


async def gone(server, name: str, timeout: float) -> bool:
    """Waits up to `timeout` seconds for `name` to have no connection left."""
    for _ in range(int(timeout * 100)):
        if not server.connections(name):
            return True
        await asyncio.sleep(0.01)
    return False


async def flood(sender, room: str, count: int) -> None:
    for start in range(0, count, 250):
        await sender.pipeline(
            [
                {"cmd": "say", "room": room, "text": f"{i} {TEXT}"}
                for i in range(start, min(count, start + 250))
            ]
        )


async def test_a_stalled_reader_is_cut_off_and_the_room_carries_on(start_server):
    """The flood reaches every reading member; the member that stopped reading is
    dropped once it has taken nothing for slow_reader_timeout, its backlog bounded."""
    server = await start_server(slow_reader_timeout=1.0)
    sender = await server.user("sender")
    reader = await server.user("reader")
    for peer in (sender, reader):
        await peer.ok("join", room="random")
    stalled = raw_member(server, "stalled", "random")
    await joined(server, "stalled", "random")

    peak = 0

    async def sample() -> None:
        nonlocal peak
        while True:
            for connection in server.connections():
                peak = max(peak, server.transport(connection).get_write_buffer_size())
            await asyncio.sleep(0.002)

    sampler = asyncio.create_task(sample())
    await flood(sender, "random", FLOOD)
    texts = [(await reader.event("message"))["text"] for _ in range(FLOOD)]
    assert await gone(server, "stalled", timeout=4)
    sampler.cancel()

    assert [int(t.split()[0]) for t in texts] == list(range(FLOOD))
    assert server.server.config.max_outbound < peak <= server.server.config.max_outbound_hard
    assert not server.server.core.hub.is_online("stalled")
    assert server.connections("reader")  # the reader that kept up is still there
    stalled.close()


async def test_a_reader_past_the_hard_limit_is_cut_off_at_once(start_server):
    """However recently it fell behind, a reader holding more than the hard limit goes."""
    server = await start_server(
        slow_reader_timeout=60.0, max_outbound=64 * 1024, max_outbound_hard=256 * 1024
    )
    sender = await server.user("sender")
    await sender.ok("join", room="random")
    stalled = raw_member(server, "stalled", "random")
    await joined(server, "stalled", "random")
    await flood(sender, "random", 500)  # ~550 KB: past the hard limit
    assert await gone(server, "stalled", timeout=2)
    stalled.close()


async def test_a_reader_briefly_behind_stays_connected_and_misses_nothing(server):
    """A member that pauses while a burst arrives keeps its connection and every message."""
    sender = await server.user("sender")
    await sender.ok("join", room="random")
    slow = raw_member(server, "slowpoke", "random")
    await joined(server, "slowpoke", "random")
    await flood(sender, "random", 300)  # ~330 KB
    assert server.server.core.hub.is_online("slowpoke")

    set_send_buffer(server, "slowpoke", 1 << 20)  # catching up: full speed again
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    slow.setblocking(False)
    reader, _ = await asyncio.open_connection(sock=slow, limit=1 << 22)
    seqs = []
    while len(seqs) < 300:
        frame = orjson.loads(await asyncio.wait_for(reader.readline(), 5))
        if frame.get("event") == "message":
            seqs.append(int(frame["text"].split()[0]))
    assert seqs == list(range(300))
    assert server.server.core.hub.is_online("slowpoke")
