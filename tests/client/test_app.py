"""The full-screen Application, driven through a pipe against a real server on port 0."""

from __future__ import annotations

import asyncio
import logging

from rich.table import Table

from nexus.client.layout import status_bar
from tests.client.conftest import (
    ALT_LEFT,
    CTRL_C,
    CTRL_N,
    CTRL_P,
    DOWN,
    PAGE_DOWN,
    PAGE_UP,
    UP,
    until,
)


async def test_typed_text_is_said_in_the_current_room(chat, connect):
    """Enter sends the line to #general; it comes back as a message everyone sees."""
    ana = await chat()
    bob, _ = await connect()
    await bob.request("join", room="general")
    ana.type("hello world\r")
    line = await ana.shows("hello world")
    assert line.endswith(f" {ana.state.me} hello world")
    assert ana.app.input.text == ""


async def test_messages_from_others_appear_and_mentions_ring_the_bell(chat, connect):
    """Another user's message is shown; one naming me rings the terminal bell once."""
    ana = await chat()
    bob, _ = await connect()
    await bob.request("say", room="general", text="just chatting")
    await ana.shows("just chatting")
    assert ana.output.bells == 0
    await bob.request("say", room="general", text=f"hey @{ana.state.me}!")
    await ana.shows("hey @")
    assert ana.output.bells == 1


async def test_join_switches_rooms_and_keys_cycle_between_them(chat):
    """/join enters a room and keeps the old one; Ctrl-N, Ctrl-P and Alt-Left move between them."""
    ana = await chat()
    ana.type("/join tech\r")
    await until(lambda: ana.state.room == "tech")
    assert set(ana.state.rooms) == {"general", "tech"}
    ana.type(CTRL_N)
    await until(lambda: ana.state.room == "general")
    ana.type(CTRL_P)
    await until(lambda: ana.state.room == "tech")
    ana.type(ALT_LEFT)
    await until(lambda: ana.state.room == "general")


async def test_messages_in_other_rooms_show_unread_counts_in_the_side_panel(chat, connect):
    """A message in a room I am not looking at counts as unread there until I switch."""
    ana = await chat()
    ana.type("/join tech\r")
    await until(lambda: ana.state.room == "tech")
    bob, _ = await connect()
    await bob.request("say", room="general", text="over here")
    await until(lambda: ana.state.rooms["general"].unread == 1)
    ana.type(CTRL_N)
    await ana.shows("over here")
    assert ana.state.rooms["general"].unread == 0


async def test_direct_messages_open_their_own_buffer_and_never_spill_into_the_room(chat, connect):
    """/dm goes to bob's buffer (the room says only where it went); his answer counts there."""
    ana = await chat()
    bob, reply = await connect()
    name = reply["user"]["username"]
    ana.type(f"/dm {name} psst\r")
    await ana.shows(f"message to {name} sent")
    await bob.request("dm", to=ana.state.me, text="yes?")
    buffer = await until(lambda: ana.state.dms.get(name.casefold()))
    await until(lambda: buffer.unread == 1 and buffer.highlights == 1)
    assert not [e for e in ana.state.rooms["general"].lines.entries if "psst" in e.plain]
    ana.type("\x1b2")  # Alt-2: the conversation, after #general
    await until(lambda: ana.state.current is buffer)
    assert [(e.sender, e.text) for e in buffer.lines.entries if e.sender] == [
        (ana.state.me, "psst"),
        (name, "yes?"),
    ]
    assert (buffer.unread, buffer.highlights) == (0, 0)


async def test_bad_commands_and_server_refusals_show_one_line(chat):
    """Unknown commands and server errors become a single `!` line in the pane."""
    ana = await chat()
    ana.type("/frobnicate\r")
    await ana.shows("! unknown command /frobnicate")
    ana.type("/delete general\r")
    line = await ana.shows("protected_room")
    assert line[6:].startswith("! ")


async def test_listings_render_as_tables_and_panels(chat):
    """/rooms, /online and /whois put Rich tables or panels in the pane."""
    ana = await chat()
    for line in ("/rooms", "/online", f"/whois {ana.state.me}"):
        ana.type(line + "\r")
    await until(lambda: len([e for e in ana.state.pane.entries if not e.plain]) == 3)
    renderables = [e.renderable for e in ana.state.pane.entries if not e.plain]
    assert isinstance(renderables[0], Table) and isinstance(renderables[1], Table)


async def test_page_up_scrolls_back_and_a_marker_counts_newer_messages(chat, connect):
    """PageUp leaves the newest lines; new messages then show a marker until PageDown."""
    ana = await chat()
    bob, _ = await connect()
    for i in range(60):
        await bob.request("say", room="general", text=f"line {i}")
    await ana.shows("line 59")
    ana.type(PAGE_UP)
    await until(lambda: ana.state.pane.scroll > 0)
    await bob.request("say", room="general", text="fresh")
    await until(lambda: ana.state.pane.newer == 1)
    rows = ana.app.pane.create_content(60, 10)
    assert "1 newer message below" in "".join(t for _, t in rows.get_line(9))
    assert "[scrolled]" in "".join(t for _, t in status_bar(ana.state))
    ana.type(PAGE_DOWN * 5)
    await until(lambda: ana.state.pane.scroll == 0)


async def test_history_loads_older_messages_above(chat, connect):
    """/history 30 fetches the 30 messages before the oldest one shown."""
    bob, _ = await connect()
    for i in range(1, 81):
        await bob.request("say", room="general", text=f"old {i}")
    ana = await chat()
    general = ana.state.rooms["general"]
    assert general.first_seq == 31
    ana.type("/history 30\r")
    await until(lambda: general.first_seq == 1)
    said = [e.text for e in general.lines.entries if e.text.startswith("old ")]
    assert said == [f"old {i}" for i in range(1, 81)]


async def test_tab_completes_and_up_recalls_the_previous_line(chat):
    """Tab completes a command name; Up brings back what was typed before (after the
    offer to edit my last message, which the first Up on an empty line makes)."""
    ana = await chat()
    ana.type("/jo\t")
    await until(lambda: ana.app.input.text == "/join ")  # a space: the room name follows
    ana.type("\x15first line\r")  # Ctrl-U clears the line first
    await ana.shows("first line")
    seq = ana.state.current.newest(mine=True).seq
    ana.type(UP)
    await until(lambda: ana.app.input.text == f"/edit {seq} first line")
    ana.type(UP)
    await until(lambda: ana.app.input.text == "first line")
    ana.type(DOWN)
    await until(lambda: ana.app.input.text == f"/edit {seq} first line")


async def test_up_on_an_empty_line_is_the_history_where_i_said_nothing(chat):
    """With no message of mine in the buffer, Up recalls the input history at once."""
    ana = await chat()
    ana.type("/ping\r")
    await ana.shows("pong in")
    ana.type(UP)
    await until(lambda: ana.app.input.text == "/ping")


async def test_up_straight_after_enter_recalls_that_line(chat):
    """Enter and Up in one read (a paste, a fast typist): the line just sent comes back,
    though the input history is only reloaded at the next redraw."""
    ana = await chat()
    ana.type("/ping\r" + UP)
    await until(lambda: ana.app.input.text == "/ping")


async def test_ctrl_c_and_quit_leave_the_application(chat):
    """Ctrl-C ends the screen; /quit does too."""
    ana, bob = await chat(), await chat()
    ana.type(CTRL_C)
    bob.type("/quit\r")
    await asyncio.wait_for(asyncio.gather(ana.task, bob.task), 5)


async def test_a_malformed_event_is_one_line_in_the_pane_and_the_session_goes_on(
    chat, connect, proxy
):
    """The dropped event's warning shows in the pane (stderr belongs to the screen)."""
    ana = await chat(port=proxy.port)
    proxy.inject(b'{"event": "joined", "room": 5, "user": "eve"}\n')
    await ana.shows("! dropped a malformed 'joined' event from the server")
    bob, _ = await connect()
    await bob.request("say", room="general", text="still here")
    await ana.shows("still here")
    ana.type(CTRL_C)
    await asyncio.wait_for(ana.task, 5)
    assert not logging.getLogger("nexus.client").handlers


async def test_reconnects_rejoins_fills_the_gap_and_sends_what_was_queued(chat, connect, proxy):
    """After the link drops: offline status, typed text queued, then login, rejoin and gap fill."""
    ana = await chat(port=proxy.port, backoff=(0.05, 0.2))
    ana.type("/join tech\r")
    await until(lambda: ana.state.room == "tech")
    await proxy.cut()
    await until(lambda: "offline" in ana.state.connection)
    ana.type("typed while away\r")
    await ana.shows("queued for #tech")
    bob, _ = await connect()
    await bob.request("join", room="tech")
    for i in range(70):
        await bob.request("say", room="tech", text=f"missed {i}")
    await proxy.mend()
    await until(lambda: ana.state.connected, what="reconnected")
    await ana.shows("typed while away")
    tech = ana.state.rooms["tech"]
    said = [e.text for e in tech.lines.entries if e.text.startswith("missed ")]
    assert said == [f"missed {i}" for i in range(70)]
    assert set(ana.state.rooms) == {"general", "tech"}
    await ana.shows("70 missed messages filled in")
