"""The server's own names and IRC's service nicks are nobody's, in any case,
whichever front end asks."""

from __future__ import annotations

import pytest

from nexus.protocol import RESERVED_NAMES
from nexus.server.irc.numerics import SERVER
from tests.conftest import PASSWORD
from tests.irc.conftest import IrcPeer
from tests.web.wspeer import WsPeer

TAKEN = ["NickServ", "nickserv", "CHANSERV", "nexus", "Nexus", "SaslServ", "OperServ"]


def test_the_name_irc_lines_come_from_is_reserved():
    assert SERVER.lower() in RESERVED_NAMES


@pytest.mark.parametrize("name", TAKEN)
async def test_registering_a_reserved_name_is_refused_over_tcp(server, name):
    peer = await server.peer()
    error = await peer.fails("invalid_username", "register", username=name, password=PASSWORD)
    assert "reserved" in error["message"]
    await peer.ok("register", username=f"{name}2", password=PASSWORD)  # only the name itself


async def test_registering_a_reserved_name_is_refused_over_websocket(start_server):
    server = await start_server(web_port=0)
    host, port = server.server.web_address
    peer = await WsPeer.open(f"ws://{host}:{port}/ws")
    await peer.frame()  # hello
    await peer.fails("invalid_username", "register", username="ChanServ", password=PASSWORD)
    await peer.close()


@pytest.mark.parametrize("nick", ["NickServ", "chanserv", "NEXUS"])
async def test_an_irc_guest_cannot_take_a_service_nick(start_server, nick):
    server = await start_server(irc_port=0, irc_guests=True)
    peer = await IrcPeer.connect(*server.server.irc_address("irc"))
    await peer.send(f"NICK {nick}", "USER g 0 * :guest")
    await peer.expect(rf" 432 \* {nick} :Erroneous nickname: .*{nick} is reserved")
    await peer.send("NICK visitor")  # another nick gets in
    await peer.expect(r" 001 visitor ")
    await peer.close()
