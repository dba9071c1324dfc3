"""ChatConnection against a real server on port 0: replies, errors, events, a dropped link."""

from __future__ import annotations

import asyncio

import pytest

from nexus.client.connection import ChatConnection, ConnectionClosed, _error_from
from nexus.errors import NexusError


async def test_connect_returns_the_servers_hello(server):
    """connect() waits for and returns the hello event."""
    conn = ChatConnection()
    hello = await conn.connect(server.host, server.port)
    assert (hello["event"], hello["protocol"]) == ("hello", 1)
    await conn.close()


async def test_refusals_raise_nexus_error_with_the_wire_code(connect):
    """An ok:false reply raises NexusError carrying the server's code and message."""
    conn, _ = await connect()
    with pytest.raises(NexusError) as caught:
        await conn.request("join", room="no such room!")
    assert caught.value.code == "invalid_room"


def test_unknown_error_codes_become_internal():
    """A code this client does not know still becomes a NexusError, keeping the text."""
    err = _error_from({"code": "brand_new", "message": "later", "retry_after": 2})
    assert (err.code, err.message, err.extra) == (
        "internal",
        "brand_new: later",
        {"retry_after": 2},
    )


async def test_concurrent_requests_get_their_own_replies(connect):
    """Many requests in flight at once are each resolved with their own reply."""
    conn, _ = await connect()
    rooms = ["general", "random", "tech"] * 10
    replies = await asyncio.gather(*(conn.request("join", room=r) for r in rooms))
    assert [reply["room"]["name"] for reply in replies] == rooms


async def test_events_arrive_by_async_iteration(connect):
    """A message said by one user reaches another's event iterator."""
    ana, _ = await connect()
    bob, _ = await connect()
    await bob.request("say", room="general", text="hello ana")
    events = aiter(ana)
    while (event := await asyncio.wait_for(anext(events), 5))["event"] != "message":
        pass
    assert event["text"] == "hello ana"


async def test_a_dropped_link_fails_pending_requests_and_ends_the_events(connect, proxy):
    """When the link dies, waiting requests raise ConnectionClosed and iteration stops."""
    conn, _ = await connect(port=proxy.port)
    await proxy.cut()
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(conn.request("ping"), 5)
    assert [e async for e in conn if e["event"] == "message"] == []
    assert conn.closed
    with pytest.raises(ConnectionClosed):
        await conn.request("ping")


async def test_refused_connection_raises_oserror():
    """Nothing listening: connect() raises OSError for the caller to report."""
    with pytest.raises(OSError):
        await ChatConnection().connect("127.0.0.1", 1)


async def test_dms_with_keyword_argument_is_sent_as_with(connect):
    """`with_=` reaches the server as `with`; None arguments are left out."""
    conn, reply = await connect()
    me = reply["user"]["username"]
    await conn.request("dm", to=me, text="note to self")
    page = await conn.request("dms", with_=me, before=None)
    assert [m["text"] for m in page["messages"]] == ["note to self"]
