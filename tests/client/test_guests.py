"""What nexus-chat shows of an IRC guest (`--irc-guests`): a user with no account."""

from __future__ import annotations

import pytest

from tests.client.conftest import until
from tests.irc.conftest import IrcServer


@pytest.fixture
async def server(start_server):
    """A server that lets IRC clients in as guests."""
    return await start_server(irc_port=0, irc_guests=True)


async def test_whois_of_a_guest_says_it_has_no_account(chat, server):
    """A guest's profile carries `guest`: /whois says there is no account behind the
    name, and an account's profile says nothing of the kind."""
    irc = IrcServer(server)
    await irc.guest("gus")
    ana = await chat()
    ana.type("/whois gus\r")
    await until(lambda: "a guest, gone when it disconnects" in ana.screen(), what="whois")
    ana.type(f"/whois {ana.state.me}\r")
    await until(lambda: ana.screen().count("status") == 2, what="second whois")
    assert ana.screen().count("a guest") == 1
    await irc.close()
