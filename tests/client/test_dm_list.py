"""Every DM conversation, read or not, is a buffer after logging in again (the server's
`conversations`), through the Application against a real server; and a server without
`conversations` still logs in."""

from __future__ import annotations

import asyncio

from rich.table import Table

from nexus.client.servers import Server
from nexus.client.session import ChatSession
from nexus.client.state import ChatState
from tests.client.conftest import HELLO, profile, room_info, scripted_server, until
from tests.client.test_defects import _settled


def _table(driver, title: str, since: int) -> Table:
    return next(
        entry.renderable
        for entry in list(driver.state.pane.entries)[since:]
        if isinstance(entry.renderable, Table) and entry.renderable.title == title
    )


def _rows(table: Table) -> list[list[str]]:
    cells = [[str(cell) for cell in column._cells] for column in table.columns]
    return [list(row) for row in zip(*cells, strict=True)]


async def test_read_conversations_come_back_after_logging_in_again(chat, connect):
    """bob and carol exchange DMs and bob reads them; dave's waits unread. After bob logs
    out and in, /dms lists both conversations, the newest first, with their buffers."""
    bob = await chat()
    me = bob.state.me
    carol, carol_login = await connect()
    dave, dave_login = await connect()
    carol_name, dave_name = carol_login["user"]["username"], dave_login["user"]["username"]
    await dave.request("dm", to=me, text="from dave, unread")
    bob.type(f"/query {carol_name}\r")
    await until(lambda: bob.state.current is not None and bob.state.current.kind == "dm")
    bob.type("hi carol\r")
    await bob.shows("hi carol")
    await carol.request("dm", to=me, text="hi bob")
    await bob.shows("hi bob")
    await _settled(bob)
    bob.app.exit()
    await bob.task

    again = await chat(me, register=False)
    await until(lambda: carol_name.casefold() in again.state.dms, what="carol's buffer")
    count = len(again.state.pane.entries)
    again.type("/dms\r")
    await _settled(again)
    rows = _rows(_table(again, "Direct conversations", count))
    assert [row[1] for row in rows] == [carol_name, dave_name]  # the newest first
    numbers = {again.state.number(b): b.name for b in again.state.dms.values()}
    assert {numbers[int(row[0])] for row in rows} == {carol_name, dave_name}
    dave_row = next(row for row in rows if row[1] == dave_name)
    assert dave_row[3] == "1"  # still unread
    again.type(f"/buffer {carol_name}\r")  # its messages come when it is shown
    await again.shows("hi bob")


async def test_a_server_without_conversations_still_logs_in():
    """An older server answers `conversations` with unknown_command: the client logs in
    and goes on as before, with no error on the screen."""
    asked: list[str] = []

    def answer(request):
        asked.append(request["cmd"])
        replies = {
            "login": {
                "user": profile("ana", ["general"]),
                "rooms": ["general"],
                "unread": {"dms": {}},
            },
            "join": {"room": room_info("general"), "history": []},
            "online": {"users": [profile("ana", ["general"])]},
            "members": {"members": []},
        }
        if request["cmd"] not in replies:
            return {"ok": False, "error": {"code": "unknown_command", "message": "unknown"}}
        return {"ok": True, **replies[request["cmd"]]}

    async with scripted_server(HELLO, answer=answer) as port:
        state = ChatState("ana", f"127.0.0.1:{port}")
        session = ChatSession(state, [Server("127.0.0.1", port)], "password")
        task = asyncio.create_task(session.run())
        try:
            await until(lambda: state.connected, what="logged in")
            await until(lambda: "conversations" in asked, what="asked for the conversations")
        finally:
            await session.close()
            task.cancel()
    assert state.room == "general"
    assert not [e.plain for e in state.pane.entries if " ! " in e.plain]
