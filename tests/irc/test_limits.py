"""The TCP protocol's limits hold for IRC connections: per-address cap, budget and
deadline before login, flood control, over-long lines, readers that stop reading."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from nexus.server.irc.translator import Translator
from tests.clock import ManualClock
from tests.irc.conftest import IrcPeer, IrcServer


async def test_per_address_cap_refuses_with_error(start_irc: Any) -> None:
    """Past --max-connections-per-ip an IRC client gets ERROR and is closed."""
    irc: IrcServer = await start_irc(max_connections_per_ip=2)
    await irc.peer()
    await irc.peer()
    third = await irc.peer()
    await third.expect(r"^ERROR :Closing link: too many connections")
    await third.closed()


async def test_lines_before_login_are_budgeted(start_irc: Any) -> None:
    """An unregistered client past --login-frames lines is refused and closed."""
    irc: IrcServer = await start_irc(login_frames=5)
    peer = await irc.peer()
    await peer.send(*["PING :x"] * 10)
    await peer.expect(r"^ERROR :Closing link: too many frames before login")
    await peer.closed()


async def test_login_deadline_closes_a_silent_client(start_irc: Any) -> None:
    """A client that never logs in is closed after --login-timeout with ERROR."""
    clock = ManualClock(time.time())
    irc: IrcServer = await start_irc(login_timeout=30.0, clock=clock)
    peer = await irc.peer()
    await peer.send("NICK slow")
    await peer.send("PING :still here")
    await peer.expect(r"PONG .*still here")
    clock.advance(30.0)
    await peer.expect(r"^ERROR :Closing link: login timed out")
    await peer.closed()


async def test_flood_control_refuses_channel_messages_with_404(start_irc: Any) -> None:
    """Past the message burst, PRIVMSG #room answers 404 with the rate limit's reason."""
    irc: IrcServer = await start_irc(rate_limit=True, message_burst=3, message_rate=0.01)
    ana = await irc.irc_user("ana")
    await ana.send(*[f"PRIVMSG #general :m{i}" for i in range(6)])
    await ana.expect(r" 404 ana #general :Cannot send to channel: .*")


async def test_an_over_long_line_closes_and_its_tail_never_runs(irc: IrcServer) -> None:
    """A line past 512 + 8191 bytes ends the connection; a command hidden after it never runs."""
    ana = await irc.irc_user("ana")
    native = await irc.running.user("bob")
    await ana.send_raw(b"PRIVMSG #general :" + b"x" * 9000 + b"\r\nPRIVMSG #general :tail\r\n")
    await ana.expect(r"^ERROR :Closing link")
    await ana.closed()
    await native.ok("ping")
    assert not [e for e in native.events if e.get("event") == "message"]


async def test_a_reader_that_stops_reading_is_dropped(start_irc: Any) -> None:
    """An IRC client that never reads is dropped once its backlog passes the hard limit,
    and the room goes on for everyone else."""
    irc: IrcServer = await start_irc(
        max_outbound=16_384, max_outbound_hard=65_536, slow_reader_timeout=1.0
    )
    stuck = await irc.irc_user("ana")
    stuck.writer.transport.pause_reading()  # type: ignore[attr-defined]
    bob = await irc.running.user("bob")
    text = "y" * 4_000
    for _ in range(40):  # up to 8 MB: more than the kernel's buffers hold
        for _ in range(50):
            await bob.send({"cmd": "say", "room": "general", "text": text})
        for _ in range(50):
            assert (await bob.reply())["ok"]
        if not irc.running.connections("ana"):
            break
    assert not irc.running.connections("ana")
    listener = await irc.irc_user("cyd")
    await bob.ok("say", room="general", text="still here")
    await listener.expect("PRIVMSG #general :still here")


async def test_garbage_never_costs_a_traceback(irc: IrcServer) -> None:
    """Binary noise, lone colons, tags without commands and NULs are answered, not fatal."""
    ana = await irc.irc_user("ana")
    await ana.send_raw(b"\x00\xff\xfe\r\n:\r\n@a=b\r\n:src\r\n@x :y\r\n\r\n   \r\nPRIVMSG\r\n")
    await ana.send("PING :alive")
    await ana.expect("PONG nexus alive")


async def test_the_server_lets_go_of_closed_irc_connections(irc: IrcServer) -> None:
    """A client that disconnects gives back its address's slot and goes offline."""
    ana = await irc.irc_user("ana")
    await ana.close()
    for _ in range(100):
        if not irc.running.server.core.per_address:
            break
        await asyncio.sleep(0.02)
    assert not irc.running.server.core.per_address
    assert not irc.running.server.core.hub.is_online("ana")


async def test_peer_helper_sees_the_welcome(irc: IrcServer) -> None:
    """The IRC listener answers a fresh client's CAP LS (the helpers speak real IRC)."""
    peer = await IrcPeer.connect(irc.host, irc.port)
    irc.peers.append(peer)
    await peer.send("CAP LS")
    await peer.expect(r"^:nexus CAP \* LS :")


async def test_a_failed_translation_drops_one_client_not_the_flush(
    irc: IrcServer, monkeypatch: Any, caplog: Any
) -> None:
    """A translation that raises drops that IRC client, with its traceback in the
    log; every other connection of the same flush still gets its lines."""
    ana = await irc.irc_user("ana")
    bob = await irc.irc_user("bob")
    carol = await irc.running.user("carol")
    # Both ways a write is translated: a room broadcast's view, a frame of its own.
    for way in ("server_view", "server_event"):
        real = getattr(Translator, way)

        def broken_for_bob(self: Translator, part: Any, real: Any = real) -> Any:
            if self.nick == "bob":
                raise RuntimeError("a translation bug")
            return real(self, part)

        monkeypatch.setattr(Translator, way, broken_for_bob)
    await carol.ok("say", room="general", text="one flush for everyone")
    await ana.expect(r"^:carol!~carol@nexus PRIVMSG #general :one flush for everyone$")
    with pytest.raises(ConnectionResetError):  # dropped: reset, nothing left queued
        while True:
            await bob.line()
    assert "IRC translation failed" in caplog.text and "a translation bug" in caplog.text
    assert (await carol.ok("say", room="general", text="and on"))["seq"] == 2
    await ana.expect(r"PRIVMSG #general :and on$")
