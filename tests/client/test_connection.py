"""ChatConnection against a real server on port 0: replies, errors, events, a dropped link;
and against a scripted one for the malformed frames a real server never sends."""

from __future__ import annotations

import asyncio
import logging

import pytest

from nexus.client.connection import ChatConnection, ConnectionClosed
from nexus.errors import NexusError
from nexus.protocol import PROTOCOL_VERSION
from tests.client.conftest import HELLO, scripted_server


async def test_connect_returns_the_servers_hello(server):
    """connect() waits for and returns the hello event."""
    conn = ChatConnection()
    hello = await conn.connect(server.host, server.port)
    assert (hello["event"], hello["protocol"]) == ("hello", PROTOCOL_VERSION)
    await conn.close()


async def test_refusals_raise_nexus_error_with_the_wire_code(connect):
    """An ok:false reply raises NexusError carrying the server's code and message."""
    conn, _ = await connect()
    with pytest.raises(NexusError) as caught:
        await conn.request("join", room="no such room!")
    assert caught.value.code == "invalid_room"


async def test_unknown_error_codes_become_internal():
    """A refusal with a code this client does not know is NexusError `internal`, text kept."""
    error = {"code": "brand_new", "message": "later", "retry_after": 2}
    async with scripted_server(HELLO, answer=lambda request: {"ok": False, "error": error}) as port:
        conn = ChatConnection()
        await conn.connect("127.0.0.1", port)
        with pytest.raises(NexusError) as caught:
            await conn.request("ping")
        await conn.close()
    assert (caught.value.code, caught.value.message, caught.value.extra) == (
        "internal",
        "brand_new: later",
        {"retry_after": 2},
    )


async def test_a_malformed_event_is_dropped_and_the_next_one_still_arrives(caplog):
    """Malformed events are logged and skipped, unknown kinds skipped quietly; the link lives."""
    caplog.set_level(logging.WARNING, logger="nexus.client")
    frames = [
        HELLO,
        {"event": "joined", "room": 5, "user": "bob"},  # a room is a name
        {"event": ["joined"]},  # a kind is a string
        {"event": "poll", "user": "bob"},  # a newer server's kind: not an error
        {"event": "joined", "room": "tech", "user": "bob"},
    ]
    async with scripted_server(*frames) as port:
        conn = ChatConnection()
        await conn.connect("127.0.0.1", port)
        event = await asyncio.wait_for(anext(aiter(conn)), 5)
        assert event == {"event": "joined", "room": "tech", "user": "bob"}
        assert not conn.closed
        await conn.close()
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.WARNING, "dropped a malformed 'joined' event from the server"),
        (logging.WARNING, "dropped a malformed event (its kind is not a string) from the server"),
    ]


async def test_a_malformed_reply_is_a_nexus_error_and_the_link_goes_on():
    """An ok reply missing its command's fields raises NexusError `internal`, not a KeyError."""

    def answer(request):
        if request["cmd"] == "rooms":
            return {"ok": True, "rooms": [{"name": "tech"}]}
        return {"ok": True, "ts": 1.5}

    async with scripted_server(HELLO, answer=answer) as port:
        conn = ChatConnection()
        await conn.connect("127.0.0.1", port)
        with pytest.raises(NexusError) as caught:
            await conn.request("rooms")
        assert (caught.value.code, caught.value.message) == (
            "internal",
            "the server sent a malformed reply to 'rooms'",
        )
        assert (await conn.request("ping"))["ts"] == 1.5
        await conn.close()


async def test_a_malformed_hello_fails_connect_at_once():
    """Without a usable hello, connect() says why instead of waiting for its timeout."""
    async with scripted_server({**HELLO, "protocol": "1"}) as port:
        conn = ChatConnection()
        with pytest.raises(ConnectionClosed, match="malformed 'hello' event"):
            await conn.connect("127.0.0.1", port, timeout=5)
        assert conn.closed


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
