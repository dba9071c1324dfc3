"""Buffers, switching, people, scrollback and input history, through the Application."""

from __future__ import annotations

import asyncio
import stat

from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document

from nexus.client import render
from nexus.client.app import ChatCompleter
from nexus.client.layout import side_panel, status_bar
from nexus.client.state import ChatState
from tests.client.conftest import CTRL_C, HOME, UP, until


def panel_text(state) -> str:
    return "".join(text for _, text, *_ in side_panel(state))


def click(x: int, y: int) -> str:
    """A left click at 0-based column x, row y, as an xterm SGR mouse report."""
    return f"\x1b[<0;{x + 1};{y + 1}M\x1b[<0;{x + 1};{y + 1}m"


async def test_query_and_msg_open_conversations_that_plain_text_goes_to(chat, connect):
    """/query opens and shows a conversation; typed text goes there; /msg sends without moving."""
    ana = await chat()
    bob, bob_login = await connect()
    _, carol_login = await connect()
    bob_name, carol_name = bob_login["user"]["username"], carol_login["user"]["username"]
    ana.type(f"/query {bob_name}\r")
    await until(lambda: ana.state.current is ana.state.dms.get(bob_name.casefold()))
    ana.type("just between us\r")
    page = await until_page(bob, ana.state.me, 1)
    assert [m["text"] for m in page] == ["just between us"]
    ana.type(f"/msg {carol_name} hello carol\r")
    await ana.shows(f"message to {carol_name} sent: buffer 3")
    assert ana.state.current is ana.state.dms[bob_name.casefold()]
    ana.type("/dms\r")
    await until(lambda: any("Direct conversations" in panel for panel in rendered(ana)))
    ana.type("/close\r")
    await until(lambda: bob_name.casefold() not in ana.state.dms)


def rendered(driver) -> list[str]:
    return [
        "\n".join("".join(t for _, t in row) for row in render.rows(e.renderable, 80))
        for e in driver.state.pane.entries
    ]


async def until_page(peer, other: str, count: int) -> list[dict]:
    for _ in range(100):
        page = (await peer.request("dms", with_=other))["messages"]
        if len(page) >= count:
            return page
        await asyncio.sleep(0.05)
    return page


async def test_text_typed_right_after_query_goes_to_the_conversation(chat, connect):
    """Lines run in the order typed: text after /query waits for it, never lands in the room."""
    ana = await chat()
    bob, reply = await connect()
    ana.type(f"/query {reply['user']['username']}\rright after\r")
    page = await until_page(bob, ana.state.me, 1)
    assert [m["text"] for m in page] == ["right after"]
    assert not [e for e in ana.state.rooms["general"].lines.entries if e.sender]


async def test_dms_that_came_while_away_are_in_their_buffer_at_login(chat, connect):
    """Offline DMs are fetched into the conversation's buffer and counted, not announced."""
    ana_conn, ana_login = await connect()
    name = ana_login["user"]["username"]
    await ana_conn.close()
    bob, bob_login = await connect()
    await bob.request("dm", to=name, text="while you were out")
    await bob.request("dm", to=name, text="call me")
    ana = await chat(name, register=False)
    buffer = ana.state.dms[bob_login["user"]["username"].casefold()]
    assert [e.text for e in buffer.lines.entries if e.sender] == ["while you were out", "call me"]
    assert (buffer.unread, buffer.highlights) == (2, 2)
    assert not any("unread direct messages" in line for line in ana.lines())


async def test_alt_number_and_a_click_on_the_side_panel_switch_buffers(chat):
    """Alt-2 shows the second buffer; a click on the first buffer's row shows it again."""
    ana = await chat()
    ana.type("/join tech\r")
    await until(lambda: ana.state.room == "tech")
    ana.type("\x1b1")
    await until(lambda: ana.state.room == "general")
    ana.type("\x1b2")
    await until(lambda: ana.state.room == "tech")
    width = ana.app.app.output.get_size().columns
    ana.type(click(width - 10, 1))  # row 0 is the title, row 1 the first buffer
    await until(lambda: ana.state.room == "general")


async def test_the_side_panel_lists_the_rooms_people_online_first(chat, connect):
    """People of the current room: online ones first; /names lists them too."""
    ana = await chat()
    bob, bob_login = await connect()
    await bob.request("join", room="general")
    bob_name = bob_login["user"]["username"]
    await until(lambda: bob_name in panel_text(ana.state))
    text = panel_text(ana.state)
    assert "People (2/2)" in text
    await bob.close()
    await until(lambda: "People (1/2)" in panel_text(ana.state))
    ana.type("/names\r")
    line = await ana.shows("#general (1 online, 2 members)")
    assert line.index(ana.state.me) < line.index(bob_name)


async def test_an_offline_member_who_never_spoke_is_in_the_panel_and_names(chat, connect):
    """Someone who joined, never wrote and went offline is listed (dimmed, counted)
    from `members`; /names of a room one is not in lists its members too."""
    carl, carl_login = await connect()
    carl_name = carl_login["user"]["username"]
    await carl.request("create", room="den")
    await carl.close()
    ana = await chat()
    await until(lambda: carl_name in panel_text(ana.state))
    assert "People (1/2)" in panel_text(ana.state)
    ana.type("/names\r")
    line = await ana.shows("#general (1 online, 2 members)")
    assert line.index(ana.state.me) < line.index(carl_name)
    ana.type("/names #den\r")
    await ana.shows(f"#den (you are not in it) (0 online, 1 member): ~{carl_name}")


async def test_home_fetches_older_history_until_the_start(chat, connect):
    """Home goes to the top; reaching it loads older pages until the first message."""
    bob, _ = await connect()
    for i in range(1, 131):
        await bob.request("say", room="general", text=f"old {i}")
    ana = await chat()
    general = ana.state.rooms["general"]
    assert general.first_seq > 1
    for _ in range(5):  # each time the top is reached, one more page comes
        seen = general.first_seq
        ana.type(HOME)
        await until(lambda: general.first_seq < seen, what="an older page")  # noqa: B023
        if general.first_seq == 1:
            break
    assert general.first_seq == 1 and not general.more
    said = [e.text for e in general.lines.entries if e.text.startswith("old ")]
    assert said == [f"old {i}" for i in range(1, 131)]


async def test_lastlog_shows_the_matching_lines(chat, connect):
    """/lastlog deploy lists the loaded lines that mention it, the word highlighted."""
    ana = await chat()
    bob, _ = await connect()
    for text in ("deploy at five", "lunch?", "Deploy moved"):
        await bob.request("say", room="general", text=text)
    await ana.shows("Deploy moved")
    ana.type("/lastlog deploy\r")
    await ana.shows("lastlog: 2 lines with deploy")
    found = list(ana.state.pane.entries)[-2:]
    assert [e.text for e in found] == ["deploy at five", "Deploy moved"]
    assert all([span.style for span in e.renderable.body.spans] == [render.FOUND] for e in found)


async def test_typed_lines_are_recalled_after_a_restart(chat, state_home):
    """Up brings back a line typed in an earlier run; the file is private (0600 in 0700)."""
    path = state_home / "nexus" / "input_history"
    ana = await chat(history=path)
    ana.type("remember me\r")
    await ana.shows("remember me")
    ana.type(CTRL_C)
    await ana.task
    again = await chat(ana.state.me, register=False, history=path)
    again.type(UP)  # the first Up offers to edit "remember me", said in #general
    await until(lambda: again.app.input.text.startswith("/edit "))
    again.type(UP)
    await until(lambda: again.app.input.text == "remember me")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


async def test_people_who_left_while_i_was_away_drop_out_of_the_list(chat, connect):
    """Someone known from history but no longer in the room is checked and removed."""
    bob, reply = await connect()
    await bob.request("say", room="general", text="bye all")
    await bob.request("leave", room="general")
    await bob.close()
    ana = await chat()
    general = ana.state.rooms["general"]
    assert any(e.sender == reply["user"]["username"] for e in general.lines.entries)
    await until(lambda: reply["user"]["username"].casefold() not in general.members)


def test_completion_adds_a_space_and_addresses_a_name_at_the_start():
    """`/jo` completes to `/join `; a name starting a line becomes `name: `."""
    state = ChatState("ana", "x")
    state.known_users.add("bob")
    completer = ChatCompleter(state)

    def complete(text: str) -> list[str]:
        return [c.text for c in completer.get_completions(Document(text), CompleteEvent())]

    assert complete("/jo") == ["/join "]
    assert complete("bo") == ["bob: "]
    assert complete("hi bo") == ["bob "]


async def test_alt_equals_shows_the_folded_presence_lines(chat, connect):
    """A silent person's join is folded; Alt-= shows it, and again folds it."""
    ana = await chat()
    ana.type("/join tech\r")
    await until(lambda: ana.state.room == "tech")
    bob, reply = await connect()
    await bob.request("join", room="tech")
    joined = f"{reply['user']['username']} joined #tech"
    entry = await until(lambda: next((e for e in ana.state.pane.entries if e.text == joined), None))
    assert entry.folded

    def on_screen() -> bool:
        rows = ana.state.pane.view(80, 20, ana.state.show_folded)
        return any(joined in "".join(t for _, t in row) for row in rows)

    assert not on_screen()
    ana.type("\x1b=")
    await until(on_screen)
    assert "[all lines]" in "".join(t for _, t in status_bar(ana.state))
    ana.type("\x1b=")
    await until(lambda: not on_screen())
