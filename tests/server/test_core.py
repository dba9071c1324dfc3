"""The connection core over TCP: frames answered in order around handlers that
suspend, half-close, dropped connections and a reader that falls behind."""

from __future__ import annotations

import asyncio
import socket

import orjson

from tests.conftest import PASSWORD


def lines(*frames: dict) -> bytes:
    return b"".join(orjson.dumps(frame) + b"\n" for frame in frames)


async def gate_password_checks(server) -> tuple[asyncio.Event, asyncio.Event]:
    """Holds every password check until `release` is set, so a test can act
    while a login handler is suspended; `entered` is set once one is held."""
    hashing = server.server.hashing
    verify = hashing.verify
    entered, release = asyncio.Event(), asyncio.Event()

    async def held(stored, password):
        entered.set()
        await release.wait()
        return await verify(stored, password)

    hashing.verify = held
    return entered, release


async def test_frames_behind_a_suspended_handler_are_answered_after_it(server):
    """`register` awaits a hash and a write; the join and say sent in the same
    packet run after it (as the new user) and their replies follow in order."""
    peer = await server.peer()
    await peer.send_raw(
        lines(
            {"id": 1, "cmd": "register", "username": "ada", "password": PASSWORD},
            {"id": 2, "cmd": "join", "room": "tech"},
            {"id": 3, "cmd": "say", "room": "tech", "text": "first words"},
            {"id": 4, "cmd": "ping"},
        )
    )
    replies = [await peer.reply() for _ in range(4)]
    assert [r["id"] for r in replies] == [1, 2, 3, 4]
    assert all(r["ok"] for r in replies), replies
    assert replies[0]["user"]["username"] == "ada"
    message = await peer.event("message", room="tech")
    assert message["text"] == "first words" and message["seq"] == replies[2]["seq"]


async def test_a_half_closed_peer_still_gets_the_reply_to_a_suspended_login(server):
    """A script that writes its login and shuts its side gets the answer, then EOF."""
    await server.user("ada")
    entered, release = await gate_password_checks(server)
    peer = await server.peer()
    await peer.send_raw(lines({"id": 1, "cmd": "login", "username": "ada", "password": PASSWORD}))
    await entered.wait()
    peer.writer.write_eof()
    await asyncio.sleep(0.05)  # the EOF reaches the server while the check is held
    release.set()
    reply = await peer.reply()
    assert reply["id"] == 1 and reply["ok"] is True
    assert await peer.closed()


async def test_a_peer_gone_during_a_suspended_login_is_forgotten(server):
    """The login finishes after the connection dropped (reading is paused
    meanwhile, so the loss is seen once it resumes): the session still leaves
    the server, and the others see the user go offline again."""
    first = await server.user("ada")
    watcher = await server.user("bob")
    await first.close()
    await watcher.event("presence", user="ada", online=False)
    entered, release = await gate_password_checks(server)
    peer = await server.peer()
    await peer.send_raw(lines({"id": 1, "cmd": "login", "username": "ada", "password": PASSWORD}))
    await entered.wait()
    peer.writer.transport.abort()
    await asyncio.sleep(0.05)  # the reset reaches the server's socket
    assert len(server.connections()) == 2  # bob's, and the one whose login is held
    release.set()
    await watcher.event("presence", user="ada", online=True)
    await watcher.event("presence", user="ada", online=False)
    assert len(server.connections()) == 1
    assert sum(server.server.core.per_address.values()) == 1


async def test_stop_waits_for_sessions_and_records_when_users_were_last_seen(start_server):
    first = await start_server()
    ada = await first.user("ada")
    await first.server.stop()
    assert not first.connections()
    assert await ada.closed()
    second = await start_server()
    bob = await second.user("bob")
    profile = (await bob.ok("whois", username="ada"))["user"]
    assert profile["online"] is False and profile["last_seen"] is not None


async def test_a_peer_that_asks_for_more_than_it_reads_is_held_to_the_cap(start_server):
    """Requests pipelined for large pages wait while the asker's unread
    replies pass the outbound cap (instead of all being answered into server
    memory at once); once it reads, every reply arrives, in order."""
    cap = 64 * 1024
    server = await start_server(max_outbound=cap)
    writer = await server.user("ada")
    text = "x" * 1_000
    await writer.burst([{"cmd": "say", "room": "general", "text": text} for _ in range(100)])

    sock = socket.create_connection((server.host, server.port))
    sock.sendall(lines({"cmd": "login", "username": "ada", "password": PASSWORD}))
    received = b""
    while b'"ok":true' not in received:
        received += await asyncio.to_thread(sock.recv, 65_536)
    (connection,) = [c for c in server.connections("ada") if c.frames == 1]
    transport = server.transport(connection)
    server_side = transport.get_extra_info("socket")
    server_side.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)

    count = 200  # ~32 KiB a page (half the cap): ~6 MiB if all were answered
    history = [{"id": i, "cmd": "history", "room": "general", "limit": 100} for i in range(count)]
    sock.sendall(lines(*history))
    answered = -1
    while answered != connection.frames - 1:  # until the server stops answering
        answered = connection.frames - 1
        await asyncio.sleep(0.1)
    # The cap, plus what the kernel holds: the asker's receive buffer
    # (128 KiB by default) and the server's send buffer (4 KiB).
    assert 0 < answered <= (cap + 256 * 1024) // (cap // 2), answered
    assert transport.get_write_buffer_size() <= 2 * cap
    assert connection.session.open

    server_side.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
    ids = []
    buffer = received[received.rindex(b"\n") + 1 :]
    while len(ids) < count:
        buffer += await asyncio.to_thread(sock.recv, 1 << 20)
        *complete, buffer = buffer.split(b"\n")
        for line in complete:
            reply = orjson.loads(line)
            assert reply["ok"] is True, reply
            assert len(orjson.dumps(reply)) > cap // 4  # a large page indeed
            ids.append(reply["id"])
    assert ids == list(range(count))
    sock.close()
