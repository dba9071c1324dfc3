"""ChatSession: every command against a real server, offline refusals, giving up on bad logins."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from prompt_toolkit.mouse_events import MouseButton, MouseEvent, MouseEventType

from nexus.client.commands import COMMANDS
from nexus.client.layout import MessagePane, header
from nexus.client.render import rows
from nexus.client.servers import Server
from nexus.client.session import ChatSession, Outgoing
from nexus.client.state import ChatState
from tests.client.conftest import PASSWORD, room_info, until


@contextlib.asynccontextmanager
async def running(host: str, port: int, connect) -> AsyncIterator[ChatSession]:
    conn, login = await connect(port=port)
    state = ChatState(login["user"]["username"], f"{host}:{port}")
    session = ChatSession(state, [Server(host, port)], PASSWORD, backoff=(0.05, 0.1))
    task = asyncio.create_task(session.run(conn, login))
    await until(lambda: state.connected, what="connected")
    yield session
    await session.close()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


@pytest.fixture
async def session(server, connect) -> AsyncIterator[ChatSession]:
    async with running(server.host, server.port, connect) as live:
        yield live


def last(session: ChatSession) -> str:
    return session.state.pane.entries[-1].plain


def text_of(renderable) -> str:
    return "\n".join("".join(t for _, t in row) for row in rows(renderable, 100))


async def test_room_life_create_topic_leave_join_delete(session):
    """Create enters an owned room, /topic sets it, /leave and /join move, /delete removes."""
    state = session.state
    await session.execute("/create den a cosy place")
    assert (state.room, state.rooms["den"].owner) == ("den", state.me)
    await session.execute("/topic tea at five")
    assert state.rooms["den"].topic == "tea at five"
    await session.execute("/leave")
    assert "den" not in state.rooms and state.room == "general"
    await session.execute("/join #DEN")
    assert state.room == "den" and "tea at five" in last(session)
    await session.execute("/delete den")
    assert "den" not in state.rooms and last(session).endswith("you deleted #den")


async def test_saying_needs_a_room_and_double_slash_sends_a_slash(session, connect):
    """Out of every room, text is refused with a hint; `//x` is said as `/x`."""
    bob, _ = await connect()
    await session.execute("//shrug")
    await until(lambda: not session.outbox, what="sent")
    page = await bob.request("history", room="general")
    assert page["messages"][-1]["text"] == "/shrug"
    await session.execute("/leave general")
    await session.execute("hello?")
    assert last(session).endswith(" ! you are in no room: /join one first")


async def test_bio_whois_dms_help_and_clear(session, connect):
    """/bio then /whois shows it; /dms lists a conversation; /help lists the table; /clear."""
    state = session.state
    bob, reply = await connect()
    await bob.request("dm", to=state.me, text="old news")
    await session.execute("/bio [i]plain[/i] me")
    await session.execute(f"/whois {state.me}")
    assert "[i]plain[/i] me" in text_of(state.pane.entries[-1].renderable)
    await session.execute(f"/dms {reply['user']['username']}")
    assert last(session).endswith(f" {reply['user']['username']} old news")
    assert state.current is state.dms[reply["user"]["username"].casefold()]
    await session.execute("/help")
    listing = text_of(state.pane.entries[-2].renderable)
    assert all(cmd.synopsis in listing for cmd in COMMANDS.values())
    await session.execute("/help dm")
    assert last(session).endswith(
        "/dm <user> <text...>: send a direct message; it shows in that person's buffer"
    )
    await session.execute("/clear")
    assert not state.pane.entries


async def test_commands_while_offline_are_refused_and_text_is_queued(session):
    """With no connection, commands say they were not done and text waits in the outbox."""
    connection, session.conn = session.conn, None
    await session.execute("/rooms")
    assert last(session).endswith(" ! the connection is down, not confirmed: /rooms")
    await session.execute("later")
    assert session.outbox == [Outgoing("room", "general", "later")]
    session.conn = connection


async def test_a_refused_password_on_reconnect_stops_retrying(server, connect, proxy):
    """If the server no longer takes the password, the session says so and stops."""
    async with running(server.host, proxy.port, connect) as live:
        live._password, live._token = "changed elsewhere", "forgotten by the server"
        await proxy.cut()
        await proxy.mend()
        await until(lambda: live.state.connection.startswith("logged out"))
        assert "refused the login" in last(live)


async def reconnect(live: ChatSession, proxy) -> list[dict]:
    """Drops the link, lets the session come back, returns the login frames it sent."""
    await proxy.cut()
    await until(lambda: not live.state.connected, what="the drop noticed")
    await proxy.mend()
    await until(lambda: live.state.connected, what="reconnected")
    return proxy.frames("login")


async def test_a_reconnect_logs_in_with_the_token_not_the_password(server, connect, proxy):
    """After a drop the session logs in with the register reply's token and keeps it."""
    async with running(server.host, proxy.port, connect) as live:
        token = live._token
        assert token and proxy.frames("register")[0]["password"] == PASSWORD
        logins = await reconnect(live, proxy)
        assert [set(frame) - {"id"} for frame in logins] == [{"cmd", "username", "token"}]
        assert logins[0]["token"] == token == live._token  # a token login gets no new one
        shown = "\n".join(entry.plain for entry in live.state.pane.entries)
        assert token not in shown and token not in repr(live)


async def test_a_refused_token_falls_back_to_the_password(server, connect, proxy):
    """A token the server no longer knows: the same reconnect logs in with the password."""
    async with running(server.host, proxy.port, connect) as live:
        live._token = "forged"
        logins = await reconnect(live, proxy)
        assert [(f.get("token"), f.get("password")) for f in logins] == [
            ("forged", None),
            (None, PASSWORD),
        ]
        assert live._token not in (None, "forged")  # the password login brought a new one
        assert live.state.room == "general"


def test_mouse_wheel_scrolls_the_message_pane():
    """Wheel up scrolls towards older lines, wheel down back to the newest."""
    state = ChatState("ana", "x")
    for i in range(50):
        state.note(f"line {i}")
    pane = MessagePane(state)
    wheel = [
        MouseEvent(None, kind, MouseButton.NONE, frozenset())
        for kind in (MouseEventType.SCROLL_UP, MouseEventType.SCROLL_DOWN)
    ]
    pane.mouse_handler(wheel[0])
    assert state.pane.scroll == 3
    pane.mouse_handler(wheel[1])
    assert state.pane.scroll == 0


def test_header_shows_the_room_and_its_cleaned_topic():
    """Above the messages: the current room's name and topic, escapes removed."""
    state = ChatState("ana", "x")
    assert "no room" in "".join(t for _, t in header(state))
    state.add_room(room_info("tech", "\x1b[31mgadgets"))
    state.switch("tech")
    assert "".join(t for _, t in header(state)) == " #tech gadgets"
