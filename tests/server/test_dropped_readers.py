"""A reader the server drops is gone at once, on every carrier: its connection is
reset, so neither the server's kernel nor the peer keeps the unsent bytes, and
what the log says it took is counted in the bytes that crossed its socket."""

from __future__ import annotations

import asyncio
import base64
import fcntl
import os
import re
import socket
import struct
import termios
from pathlib import Path
from typing import Any

import orjson
import pytest
from websockets.frames import Frame, Opcode

from tests.conftest import PASSWORD, Running
from tests.server.test_slow_consumer import flood, gone, joined, raw_member

SOFT = 64 * 1024
TEXT = "z" * 3_000  # ~3 KB a message, as a paste would be


def server_side(port: int, peer_port: int) -> list[tuple[int, int]]:
    """(state, unsent bytes) of each loopback socket the server has on `port`
    towards a peer's `peer_port`, from /proc/net/tcp and tcp6."""
    found = []
    for name in ("tcp", "tcp6"):
        path = Path("/proc/net") / name
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            local, remote, state = fields[1], fields[2], fields[3]
            tx_queue = fields[4].split(":")[0]
            if int(local.rsplit(":", 1)[1], 16) == port and (
                int(remote.rsplit(":", 1)[1], 16) == peer_port
            ):
                found.append((int(state, 16), int(tx_queue, 16)))
    return found


async def drain(sock: socket.socket, timeout: float = 10.0) -> int:
    """Reads `sock` to its end: the bytes read before a clean end of stream
    (a reset raises ConnectionResetError instead)."""
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    total = 0
    while True:
        data = await asyncio.wait_for(loop.sock_recv(sock, 1 << 16), timeout)
        if not data:
            return total
        total += len(data)


async def drop_is_a_reset(server: Running, sock: socket.socket, name: str, port: int) -> None:
    """Once `name` is dropped: no server socket is left holding its bytes, and
    its peer learns at once that the connection was reset."""
    assert await gone(server, name, timeout=6)
    peer_port = sock.getsockname()[1]
    assert server_side(port, peer_port) == []
    with pytest.raises(ConnectionResetError):
        await drain(sock)
    sock.close()


async def senders(server: Running, room: str) -> Any:
    sender = await server.user("sender")
    await sender.ok("join", room=room)
    return sender


async def pour(sender: Any, room: str, until: Any, rounds: int = 80, text: str = TEXT) -> None:
    """Sends pipelined bursts of 100 messages until `until()` holds."""
    for _ in range(rounds):
        await sender.burst([{"cmd": "say", "room": room, "text": text}] * 100)
        if until():
            return
        await asyncio.sleep(0.05)


# -- a raw WebSocket member and a raw IRC member, which read only when told --


async def raw_ws_member(host: str, port: int, name: str, room: str) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /ws HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = await asyncio.wait_for(loop.sock_recv(sock, 1), 5)
        assert chunk, head
        head += chunk
    assert head.startswith(b"HTTP/1.1 101 "), head
    frames = [
        {"cmd": "register", "username": name, "password": PASSWORD},
        {"cmd": "join", "room": room},
    ]
    for frame in frames:
        await loop.sock_sendall(sock, Frame(Opcode.TEXT, orjson.dumps(frame)).serialize(mask=True))
    return sock


async def raw_irc_member(server: Running, name: str, channel: str) -> tuple[socket.socket, int]:
    """The socket, logged in and in `channel`, and the bytes it read (up to its MOTD)."""
    native = await server.user(name)
    await native.ok("quit")
    host, port = server.server.irc_address("irc")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, port))
    sock.sendall(f"PASS :{name}:{PASSWORD}\r\nNICK {name}\r\nUSER u 0 * :r\r\n".encode())
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    welcome = b""
    while b" 376 " not in welcome:
        chunk = await asyncio.wait_for(loop.sock_recv(sock, 1 << 16), 5)
        assert chunk, welcome
        welcome += chunk
    await loop.sock_sendall(sock, f"JOIN {channel}\r\n".encode())
    return sock, len(welcome)


# -- the reset, on every carrier ---------------------------------------------


async def test_a_dropped_tcp_reader_is_reset_not_left_draining(start_server) -> None:
    """A member that stopped reading is dropped after the timeout with a reset:
    before, the close was graceful, so the server's kernel kept its unsent bytes
    (FIN-WAIT-1) and the peer, reading again, got them and a clean end."""
    server = await start_server(slow_reader_timeout=0.5, max_outbound=SOFT)
    sender = await senders(server, "random")
    stalled = raw_member(server, "stalled", "random")
    await joined(server, "stalled", "random")
    await pour(sender, "random", lambda: not server.connections("stalled"), rounds=1)
    await drop_is_a_reset(server, stalled, "stalled", server.port)
    assert server.connections("sender")


async def test_a_tcp_reader_past_the_hard_limit_is_reset(start_server) -> None:
    """The drop at the hard limit resets too."""
    server = await start_server(
        slow_reader_timeout=60.0, max_outbound=SOFT, max_outbound_hard=256 * 1024
    )
    sender = await senders(server, "random")
    stalled = raw_member(server, "stalled", "random")
    await joined(server, "stalled", "random")
    await flood(sender, "random", 500)
    await drop_is_a_reset(server, stalled, "stalled", server.port)


async def test_a_dropped_websocket_reader_is_reset(start_server) -> None:
    server = await start_server(web_port=0, slow_reader_timeout=0.5, max_outbound=SOFT)
    host, port = server.server.web_address or ("", 0)
    sender = await senders(server, "random")
    stalled = await raw_ws_member(host, port, "stalled", "random")
    await joined(server, "stalled", "random")
    await pour(sender, "random", lambda: not server.connections("stalled"), rounds=1)
    await drop_is_a_reset(server, stalled, "stalled", port)


async def test_a_dropped_irc_reader_is_reset(start_server) -> None:
    server = await start_server(
        irc_port=0, slow_reader_timeout=60.0, max_outbound=SOFT, max_outbound_hard=256 * 1024
    )
    port = server.server.irc_address("irc")[1]
    sender = await senders(server, "random")
    stalled, _ = await raw_irc_member(server, "stalled", "#random")
    await joined(server, "stalled", "random")
    await pour(sender, "random", lambda: not server.connections("stalled"), rounds=3)
    await drop_is_a_reset(server, stalled, "stalled", port)


# -- what the judge counts: the bytes that crossed the socket ---------------


def kernel_holds(sock: Any, request: int) -> int:
    """SIOCINQ (bytes received, not read) or SIOCOUTQ (sent, not yet acknowledged)."""
    out = fcntl.ioctl(sock.fileno(), request, b"\0\0\0\0")
    return int(struct.unpack("i", out)[0])


async def stalled_member(server: Running, carrier: str) -> tuple[socket.socket, int]:
    """A member that stops reading, and the bytes of its outlet it read before."""
    if carrier == "tcp":
        return raw_member(server, "stalled", "random"), 0
    if carrier == "ws":
        host, port = server.server.web_address or ("", 0)
        return await raw_ws_member(host, port, "stalled", "random"), 0  # read: the handshake
    return await raw_irc_member(server, "stalled", "#random")


@pytest.mark.parametrize("carrier", ["tcp", "ws", "irc"])
async def test_what_a_reader_took_is_what_crossed_its_socket(start_server, carrier: str) -> None:
    """Whatever the carrier, the bytes the outbox says a reader took are the bytes
    its socket carried: those the peer has received plus those the server's
    kernel still holds for it. (Counting the frames handed to the link was off by
    the WebSocket framing and by the IRC translation, for every frame still
    unsent: a WebSocket reader looked slower than it was, an IRC one faster.)"""
    server = await start_server(web_port=0, irc_port=0, slow_reader_timeout=60.0, max_outbound=SOFT)
    sender = await senders(server, "random")
    stalled, read = await stalled_member(server, carrier)
    await joined(server, "stalled", "random")
    await pour(sender, "random", lambda: False, rounds=3)
    await asyncio.sleep(0.2)
    (connection,) = server.connections("stalled")
    outlet = connection.session.outlet
    own = server.transport(connection).get_extra_info("socket")
    assert outlet.link.backlog() > SOFT  # most of it is still the server's to send
    for _ in range(50):  # a segment between the two sockets counts in both for a moment
        held = kernel_holds(stalled, termios.FIONREAD) + kernel_holds(own, termios.TIOCOUTQ)
        crossed = read + held
        if outlet.taken() == crossed:
            break
        await asyncio.sleep(0.01)
    assert outlet.taken() == crossed
    stalled.close()


def took(caplog: Any, sock: socket.socket) -> list[int]:
    """What the log says the reader on `sock` took before it was dropped."""
    name = re.escape(f"127.0.0.1:{sock.getsockname()[1]}")
    return [
        int(n)
        for n in re.findall(name + r"\S* fell too far behind \(took (-?\d+) bytes", caplog.text)
    ]


async def test_a_stalled_websocket_reader_is_logged_with_the_bytes_it_took(
    start_server, caplog: Any
) -> None:
    """The log's count of what a dropped WebSocket reader took is what crossed
    its socket: a stalled reader took next to nothing, never a negative count
    (the raw frames handed to the link were compared with framed bytes)."""
    server = await start_server(web_port=0, slow_reader_timeout=2.0, max_outbound=SOFT)
    host, port = server.server.web_address or ("", 0)
    sender = await senders(server, "random")
    stalled = await raw_ws_member(host, port, "stalled", "random")
    await joined(server, "stalled", "random")
    # Messages keep coming while it is judged, so what it holds keeps growing.
    await pour(sender, "random", lambda: not server.connections("stalled"))
    assert not server.connections("stalled")
    (count,) = took(caplog, stalled)
    assert 0 <= count < SOFT
    stalled.close()


async def test_a_stalled_irc_reader_is_judged_by_the_lines_it_took(start_server) -> None:
    """An IRC member that stopped reading is dropped within the timeout while its
    channel keeps talking in short lines: an IRC line is shorter than the frame
    it comes from, and counting the frames made the growing backlog look like
    reading, so such a reader was never dropped (until the hard limit)."""
    soft = 16 * 1024
    server = await start_server(irc_port=0, slow_reader_timeout=0.5, max_outbound=soft)
    sender = await senders(server, "random")
    stalled, _ = await raw_irc_member(server, "stalled", "#random")
    await joined(server, "stalled", "random")
    loop = asyncio.get_running_loop()
    start = loop.time()

    def done() -> bool:
        return not server.connections("stalled") or loop.time() > start + 6

    await pour(sender, "random", done, rounds=1000, text="w" * 200)
    assert not server.connections("stalled")
    assert loop.time() - start < 4
    stalled.close()
