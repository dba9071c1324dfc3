"""A password change locks out every login that raced it, on every front end.

A login checks its password (an argon2 run in a thread) and then writes its
new token; a `password` change can land in either wait. These tests hold a
login in each wait while the owner changes the password, then let it go on:
once the change is acknowledged, nothing signed in with the old password or
an old token may remain.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tests.conftest import PASSWORD, Running
from tests.irc.conftest import IrcPeer
from tests.web.wspeer import WsPeer
from tests.wire import Peer

NEW = "new password 1"


def hold_first(target: Any, name: str) -> tuple[asyncio.Event, asyncio.Event]:
    """Makes the next call of `target.name` finish its work, then wait for a
    release: returns (reached, release). Later calls are not held."""
    original = getattr(target, name)
    reached, release = asyncio.Event(), asyncio.Event()
    calls = 0

    async def held(*args: Any) -> Any:
        nonlocal calls
        calls += 1
        result = await original(*args)
        if calls == 1:
            reached.set()
            await release.wait()
        return result

    setattr(target, name, held)
    return reached, release


async def owner_changes_password(server: Running) -> Peer:
    owner = await server.peer()
    await owner.ok("login", username="alice", password=PASSWORD)
    await owner.ok("password", old=PASSWORD, new=NEW)
    return owner


async def assert_locked_out(server: Running, old_token: str) -> None:
    """Nobody is signed in as alice but the owner's session, and neither the
    old password nor the old token logs in."""
    for _ in range(200):
        if len(server.connections("alice")) == 1:
            break
        await asyncio.sleep(0.01)
    assert len(server.connections("alice")) == 1
    fresh = await server.peer()
    await fresh.fails("auth_failed", "login", username="alice", token=old_token)
    await fresh.fails("auth_failed", "login", username="alice", password=PASSWORD)


@pytest.mark.parametrize("wait", ["verify", "written"])
async def test_a_login_racing_a_password_change_is_refused_over_tcp(start_server, wait):
    """The login's password (or token) is checked before the change, and the
    login would finish after the change's reply: it is refused instead."""
    server = await start_server()
    first = await (await server.peer()).ok("register", username="alice", password=PASSWORD)
    # `verify`: held in the argon2 check (a password login); `written`: held
    # while its token is written (a token login, no argon2 at all).
    target = server.server.hashing if wait == "verify" else server.server.store
    attacker = await server.peer()
    reached, release = hold_first(target, wait)
    if wait == "verify":
        await attacker.send({"id": 1, "cmd": "login", "username": "alice", "password": PASSWORD})
    else:
        await attacker.send({"id": 1, "cmd": "login", "username": "alice", "token": first["token"]})
    await asyncio.wait_for(reached.wait(), 5)
    await owner_changes_password(server)
    release.set()
    reply = await attacker.reply()
    assert reply["ok"] is False and reply["error"]["code"] == "auth_failed", reply
    await assert_locked_out(server, first["token"])


async def _irc_login(server: Running, port: int) -> Callable[[], Awaitable[bool]]:
    peer = await IrcPeer.connect("127.0.0.1", port)
    await peer.send("CAP LS 302", "NICK alice", "USER u 0 * :real", "CAP REQ :sasl")
    await peer.expect(r" CAP \S+ ACK ")
    await peer.send("AUTHENTICATE PLAIN")
    await peer.expect(r"^AUTHENTICATE \+$")
    creds = base64.b64encode(f"alice\0alice\0{PASSWORD}".encode()).decode()
    await peer.send(f"AUTHENTICATE {creds}")

    async def accepted() -> bool:
        found = await peer.expect(r" (903|904) ")
        await peer.close()
        return found.group(1) == "903"

    return accepted


async def _ws_login(server: Running, url: str) -> Callable[[], Awaitable[bool]]:
    peer = await WsPeer.open(url)
    await peer.frame()  # hello
    await peer.send({"id": 1, "cmd": "login", "username": "alice", "password": PASSWORD})

    async def accepted() -> bool:
        reply = await peer.reply()
        await peer.close()
        return bool(reply["ok"])

    return accepted


@pytest.mark.parametrize("front", ["irc", "ws"])
async def test_a_login_racing_a_password_change_is_refused_on_every_front_end(start_server, front):
    """SASL over IRC and a login over WebSocket are the same handler's: held
    in the password check across the change, each is refused."""
    server = await start_server(irc_port=0, web_port=0)
    first = await (await server.peer()).ok("register", username="alice", password=PASSWORD)
    reached, release = hold_first(server.server.hashing, "verify")
    if front == "irc":
        accepted = await _irc_login(server, server.server.irc_address("irc")[1])
    else:
        host, port = server.server.web_address
        accepted = await _ws_login(server, f"ws://{host}:{port}/ws")
    await asyncio.wait_for(reached.wait(), 5)
    await owner_changes_password(server)
    release.set()
    assert not await accepted()
    await assert_locked_out(server, first["token"])


async def test_logins_looping_with_a_stolen_password_keep_nothing_after_the_change(start_server):
    """An attacker logging in over and over while the owner changes the
    password: once the change is acknowledged, none of its sessions or tokens
    remains (before, 2-3 of its last dozen tokens kept working)."""
    server = await start_server(login_attempts_per_minute=1000, max_connections_per_ip=1000)
    await (await server.peer()).ok("register", username="alice", password=PASSWORD)
    tokens: list[str] = []
    sessions: list[Peer] = []
    stop = asyncio.Event()

    async def attacker() -> None:
        for _ in range(100):  # bounded, should the change never land
            if stop.is_set():
                return
            peer = await server.peer()
            reply = await peer.request("login", username="alice", password=PASSWORD)
            if not reply["ok"]:
                await peer.close()
                return
            tokens.append(reply["token"])
            sessions.append(peer)

    loops = [asyncio.create_task(attacker()) for _ in range(4)]
    await asyncio.sleep(0.05)
    await owner_changes_password(server)
    stop.set()
    await asyncio.gather(*loops)
    assert tokens  # the attacker did get in before the change
    for _ in range(200):
        if len(server.connections("alice")) == 1:
            break
        await asyncio.sleep(0.01)
    assert len(server.connections("alice")) == 1
    check = await server.peer()
    for token in tokens[-12:]:
        await check.fails("auth_failed", "login", username="alice", token=token)
        check = await server.peer()
