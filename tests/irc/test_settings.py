"""The settings a deployment sets for everyone, over real sockets:
--password-min-length and --default-rooms."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from nexus.server.config import ServerConfig
from tests.irc.conftest import IrcServer


@pytest.mark.parametrize(
    ("length", "short", "enough"), [(4, "abc", "abcd"), (12, "eleven char", "twelve chars")]
)
async def test_a_deployment_sets_the_shortest_password(
    start_irc: Callable[..., Any], length: int, short: str, enough: str
) -> None:
    """--password-min-length lowers (or raises) the 8 characters a password
    needs, for registration and for a change; the refusal says the number."""
    server: IrcServer = await start_irc(password_min_length=length)
    peer = await server.running.peer()
    error = await peer.fails("weak_password", "register", username="shorty", password=short)
    assert f"at least {length} characters" in error["message"]
    await peer.ok("register", username="shorty", password=enough)
    await peer.fails("weak_password", "password", old=enough, new=short)
    await peer.ok("password", old=enough, new=enough[::-1])
    irc_peer = await server.peer()
    await irc_peer.register("shorty", password=enough[::-1])


async def test_default_rooms_are_a_setting(start_irc: Callable[..., Any]) -> None:
    """--default-rooms names the rooms a new store starts with (a new account
    joins the first); empty, LIST shows only the channels made."""
    server: IrcServer = await start_irc(default_rooms=("lobby", "help"))
    ana = await server.irc_user("ana", joined="#lobby")
    await ana.send("LIST")
    listed = [line.split()[3] for line in await ana.until(r" 323 ana ") if " 322 " in line]
    assert sorted(listed) == ["#help", "#lobby"]
    await ana.send("JOIN #general")  # no longer a default room: made, and owned
    assert (await ana.expect(r" 353 ana = #general :(.*)$")).group(1) == "@ana"


async def test_no_default_rooms_lists_only_channels_made(start_irc: Callable[..., Any]) -> None:
    """With --default-rooms empty, an account joins nothing at first and LIST
    is empty until a channel is made."""
    server: IrcServer = await start_irc(default_rooms=())
    ana = await server.irc_user("ana", joined="")
    await ana.send("LIST")
    assert [line for line in await ana.until(r" 323 ana ") if " 322 " in line] == []
    await ana.join("#made")
    bob = await server.irc_user("bob", joined="")
    await bob.send("LIST")
    assert [line.split()[3] for line in await bob.until(r" 323 bob ") if " 322 " in line] == [
        "#made"
    ]


def test_default_rooms_are_room_names() -> None:
    """--default-rooms takes names with or without `#`, several to an item with
    commas (NEXUS_DEFAULT_ROOMS=a,b), each once; anything else is refused."""
    config = ServerConfig(default_rooms=("Lobby,#help", "lobby", ""))
    assert config.default_rooms == ("lobby", "help")
    with pytest.raises(ValueError, match="default-rooms"):
        ServerConfig(default_rooms=("no spaces",))
