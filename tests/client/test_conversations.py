"""Protocol 2's conversation features through the Application (pipe input) against a real
server: edit, erase, reply, react, actions, mentions, read markers across terminals,
search and /goto, away, and /password."""

from __future__ import annotations

import asyncio

from rich.table import Table

from nexus.client import commands, render
from nexus.client.layout import side_panel
from tests.client.conftest import CTRL_C, END, UP, until
from tests.conftest import PASSWORD


async def _said(driver, text: str):
    """Types `text` in the current buffer and waits for the server's copy of it."""
    driver.type(text + "\r")
    return await until(
        lambda: next(
            (e for e in driver.state.current.messages() if e.mine and e.text == text), None
        ),
        what=repr(text),
    )


async def test_edit_without_a_number_changes_my_last_message_in_place(chat, connect):
    """/edit text edits my newest message here; it shows `(edited)` in my terminal and
    the others get the new text."""
    ana = await chat()
    bob, _ = await connect()
    await bob.request("join", room="general")
    entry = await _said(ana, "helo world")
    count = len(ana.state.current.lines.entries)
    ana.type("/edit hello world\r")
    await until(lambda: entry.text == "hello world")
    assert "(edited)" in entry.renderable.full and f"[{entry.seq}]" in entry.renderable.full
    assert len(ana.state.current.lines.entries) == count  # redrawn where it was, not added
    event = await until(lambda: _event(bob, "edited"))
    assert event["message"]["text"] == "hello world"


def _event(conn, kind: str):
    """The first queued event of `kind` on a raw connection (others are dropped)."""
    queue = conn._events
    while not queue.empty():
        event = queue.get_nowait()
        if event is not None and event["event"] == kind:
            return event
    return None


async def test_up_on_an_empty_line_offers_my_last_message_for_editing(chat):
    """Up puts `/edit N text` on the line; adding to it and Enter edits that message."""
    ana = await chat()
    entry = await _said(ana, "typo hre")
    ana.type(UP)
    await until(lambda: ana.app.input.text == f"/edit {entry.seq} typo hre")
    ana.type("\x08\x08e!\r")  # two backspaces, then the fix
    await until(lambda: entry.text == "typo he!")


async def test_a_message_edited_elsewhere_is_redrawn_and_may_start_naming_me(chat, connect):
    """Bob's `edited` event replaces his line; an edit that adds @me makes it a highlight."""
    ana = await chat()
    bob, _ = await connect()
    said = await bob.request("say", room="general", text="hello all")
    entry = await until(lambda: ana.state.current.find(said["seq"]))
    assert not entry.highlight
    await bob.request("edit", room="general", seq=said["seq"], text=f"hello @{ana.state.me}")
    await until(lambda: entry.highlight)
    assert entry.text == f"hello @{ana.state.me}" and "(edited)" in entry.renderable.full


async def test_erase_leaves_a_dim_tombstone_everywhere(chat, connect):
    """/erase N erases for everyone: the line says `(message erased)` in grey."""
    ana = await chat()
    bob, _ = await connect()
    await bob.request("join", room="general")
    entry = await _said(ana, "oops, wrong room")
    ana.type(f"/erase {entry.seq}\r")
    await until(lambda: entry.erased)
    assert entry.renderable.body.plain == render.ERASED
    assert entry.renderable.body.style == render.DIM
    event = await until(lambda: _event(bob, "erased"))
    assert event["message"]["seq"] == entry.seq and event["message"]["text"] == ""


async def test_reply_quotes_the_message_it_answers(chat, connect):
    """/reply N text sends `reply_to`; the line starts with `-> bob: first words`."""
    ana = await chat()
    bob, reply = await connect()
    bob_name = reply["user"]["username"]
    said = await bob.request("say", room="general", text="shall we ship the release tonight?")
    await until(lambda: ana.state.current.find(said["seq"]))
    entry = await _said(ana, "yes")
    assert entry.message.get("reply_to") is None
    ana.type(f"/reply {said['seq']} yes, after the tests\r")
    answer = await until(lambda: _mine_or_none(ana, "yes, after the tests"))
    assert answer.message["reply_to"] == said["seq"]
    assert answer.renderable.above.plain == f"-> {bob_name}: shall we ship the release tonight?"


def _mine_or_none(driver, text: str):
    return next((e for e in driver.state.current.messages() if e.mine and e.text == text), None)


async def test_a_refused_reply_comes_back_whole_to_the_input_line(chat):
    """A reply to a message that does not exist is refused; `/reply N text` is given back."""
    ana = await chat()
    ana.type("/reply 9999 to nothing\r")
    await ana.shows("no_such_message")
    await until(lambda: ana.app.input.text == "/reply 9999 to nothing")


async def test_reactions_show_under_the_message_with_mine_highlighted(chat, connect):
    """/react without a number reacts to the newest message; counts show below it, mine
    stand out; /unreact takes mine back."""
    ana = await chat()
    bob, _ = await connect()
    said = await bob.request("say", room="general", text="lunch?")
    entry = await until(lambda: ana.state.current.find(said["seq"]))
    ana.type("/react 👍\r")
    await until(lambda: entry.renderable.below is not None)
    await bob.request("react", room="general", seq=said["seq"], emoji="👍")
    await bob.request("react", room="general", seq=said["seq"], emoji="❤")
    await until(lambda: entry.renderable.below.plain == "👍 2  ❤ 1")
    spans = {
        entry.renderable.below.plain[s.start : s.end]: s.style for s in entry.renderable.below.spans
    }
    assert spans == {"👍 2": render.MINE, "❤ 1": render.DIM}
    rows = ["".join(t for _, t in row) for row in entry.rows(60)]
    assert rows[1].strip().startswith("│ 👍 2")  # under the text, in the hanging indent
    ana.type(f"/unreact {said['seq']} 👍\r")
    await until(lambda: entry.renderable.below.plain == "👍 1  ❤ 1")


async def test_me_sends_an_action_shown_as_a_star_line(chat, connect):
    """/me waves is sent with `action: true` and shows as `* ana waves`."""
    ana = await chat()
    bob, _ = await connect()
    await bob.request("join", room="general")
    ana.type("/me waves\r")
    entry = await until(lambda: _mine_or_none(ana, "waves"))
    assert entry.message["action"] is True
    assert entry.renderable.prefix == "*"
    assert entry.renderable.body.plain == f"{ana.state.me} waves"
    event = await until(lambda: _event(bob, "message"))
    assert event["action"] is True


async def test_mentions_ring_the_bell_and_mentions_lists_them(chat, connect):
    """A message naming me (server's `mentions`) rings the bell; /mentions lists it."""
    ana = await chat()
    bob, _ = await connect()
    await bob.request("say", room="general", text=f"can you look, @{ana.state.me}?")
    await until(lambda: ana.output.bells == 1)
    ana.type("/mentions\r")
    await ana.shows("1 found, newest first")
    table = next(
        e.renderable for e in reversed(ana.state.pane.entries) if isinstance(e.renderable, Table)
    )
    assert table.title == "mentions of you"
    assert table.row_count == 1


async def test_unread_counts_come_from_the_server_at_login(chat, connect):
    """Messages said in a room while I was away count at login, after an `unread` rule."""
    ana_conn, login = await connect()
    name = login["user"]["username"]
    await ana_conn.request("join", room="tech")
    await ana_conn.request("say", room="tech", text="anyone here?")
    await ana_conn.close()
    bob, _ = await connect()
    await bob.request("join", room="tech")
    for text in ("yes", "me too", "hello"):
        await bob.request("say", room="tech", text=text)
    ana = await chat(name, register=False)
    tech = ana.state.rooms["tech"]
    assert ana.state.current is ana.state.rooms["general"]
    assert tech.unread == 3
    texts = [e.text or e.plain for e in tech.lines.entries if e.day is None]
    rule = next(i for i, t in enumerate(texts) if "unread" in t)
    assert texts[rule - 1 : rule + 2] == ["anyone here?", texts[rule], "yes"]


async def test_reading_in_one_terminal_clears_the_count_in_the_other(chat, connect):
    """Two terminals of one user: showing #tech in one sends `read`; the other's count
    drops to zero."""
    one = await chat()
    two = await chat(one.state.me, register=False)
    for driver in (one, two):
        driver.type("/join tech\r")
        await until(lambda d=driver: "tech" in d.state.rooms)
        driver.type("/buffer general\r")
        await until(lambda d=driver: d.state.room == "general")
    bob, _ = await connect()
    await bob.request("join", room="tech")
    await bob.request("say", room="tech", text="news")
    await bob.request("say", room="tech", text=f"@{one.state.me} look")
    await until(lambda: one.state.rooms["tech"].unread == 2 and two.state.rooms["tech"].unread == 2)
    assert two.state.rooms["tech"].highlights == 1
    one.type("/buffer tech\r")
    await until(lambda: two.state.rooms["tech"].unread == 0)
    assert two.state.rooms["tech"].highlights == 0


async def test_search_lists_results_and_goto_loads_the_page_around_one(chat, connect):
    """/search shows matches in a table; /goto #room N pages back until it is loaded and
    scrolls to it."""
    bob, reply = await connect()
    for i in range(1, 131):
        text = "the deploy key is under the mat" if i == 7 else f"filler {i}"
        await bob.request("say", room="general", text=text)
    ana = await chat()
    general = ana.state.rooms["general"]
    assert general.first_seq > 7
    ana.type(f"/search deploy from:{reply['user']['username']} #general\r")
    await ana.shows("1 found, newest first")
    table = next(
        e.renderable for e in reversed(ana.state.pane.entries) if isinstance(e.renderable, Table)
    )
    assert table.row_count == 1
    ana.type("/goto #general 7\r")
    await until(lambda: general.find(7) is not None and general.lines.scroll > 0)
    assert general.find(7).text == "the deploy key is under the mat"
    assert general.first_seq <= 7


async def test_away_people_are_dimmed_and_whois_says_why(chat, connect):
    """`presence` with `away` dims bob in the people list with a mark; /away sets mine."""
    ana = await chat()
    bob, reply = await connect()
    name = reply["user"]["username"]
    await bob.request("join", room="general")
    await until(lambda: name.casefold() in ana.state.rooms["general"].members)
    await until(lambda: name in ana.state.online)
    await bob.request("away", text="at lunch")
    await until(lambda: ana.state.is_away(name))
    panel = "".join(text for _, text, *_ in side_panel(ana.state))
    assert f"{name} (away)" in panel
    await ana.shows(f"{name} is away: at lunch")
    ana.type(f"/whois {name}\r")
    await until(lambda: "at lunch" in ana.screen().rsplit("status", 1)[-1], what="whois")
    ana.type("/away in a meeting\r")
    await ana.shows("you are away: in a meeting")
    ana.type("/away\r")
    await ana.shows("you are back")


async def test_password_is_asked_without_echo_and_ends_my_other_sessions(chat, state_home):
    """/password reads old and new masked, keeps them out of history and the pane; the
    other terminal is told "password changed" and stops instead of retrying."""
    path = state_home / "nexus" / "input_history"
    ana = await chat(history=path)
    other = await chat(ana.state.me, register=False)
    ana.type("/password\r")
    await until(lambda: ana.app._secret is not None)
    ana.type(PASSWORD + "\r")
    await until(lambda: ana.app._secret_prompt == "new password" and not ana.app.input.text)
    ana.type("a brand new secret\r")
    await until(lambda: ana.app._secret_prompt == "new password again")
    ana.type("a brand new secret\r")
    await ana.shows("password changed")
    await other.shows("your password was changed elsewhere")
    assert other.state.connection == "logged out: password changed"
    await asyncio.sleep(1.5)  # longer than the first retry delay: no reconnect attempt
    assert other.state.connection == "logged out: password changed"
    typed = ana.app.input.history.get_strings()
    assert typed == ["/password"]
    shown = "\n".join(e.plain for e in ana.state.pane.entries)
    assert PASSWORD not in shown and "brand new" not in shown
    assert "brand new" not in path.read_text()


async def test_password_prompt_is_cancelled_by_ctrl_c_without_quitting(chat):
    """Ctrl-C in the masked prompt cancels /password; the screen stays up."""
    ana = await chat()
    ana.type("/password\r")
    await until(lambda: ana.app._secret is not None)
    ana.type("half typed" + CTRL_C)
    await ana.shows("cancelled: the password is unchanged")
    assert not ana.task.done()
    assert ana.app.input.text == ""


async def test_erase_typed_right_after_a_message_finds_it(chat):
    """`/erase` typed before the server echoed my message waits for it to be sent and
    erases it, instead of saying there is nothing of mine."""
    ana = await chat()
    ana.type("oops, wrong room\r/erase\r")
    await until(lambda: any(e.mine and e.erased for e in ana.state.current.messages()))
    assert not [line for line in ana.lines() if "no message of yours" in line]


async def test_goto_into_a_room_i_am_not_in_shows_the_page_around_the_message(chat, connect):
    """/goto #den 5 without being in #den shows messages 1..15 or more here (the page
    around it), 5 marked; a number the room never had is an error line."""
    bob, _ = await connect()
    await bob.request("create", room="den")
    for i in range(1, 31):
        await bob.request("say", room="den", text=f"den line {i}")
    ana = await chat()
    ana.type("/goto #den 5\r")
    await ana.shows("message 5 of #den (you are not in it) among its neighbours")
    shown = [e for e in ana.state.pane.entries if e.quoted]
    texts = [e.renderable.body.plain for e in shown]  # as full as the server makes the page
    assert texts == [f"den line {i}" for i in range(1, len(texts) + 1)] and 15 <= len(texts) <= 21
    marked = [e for e in shown if any(s.style == render.FOUND for s in e.renderable.body.spans)]
    assert [e.renderable.body.plain for e in marked] == ["den line 5"]
    ana.type("/goto #den 999\r")
    await ana.shows("no message 999 in #den (you are not in it): not stored, or never sent")


async def test_reading_a_conversation_in_one_terminal_clears_it_in_the_other(chat, connect):
    """A DM counted in both of ana's terminals: opening it in one sends `read` with `with`;
    the other's count drops to zero."""
    one = await chat()
    two = await chat(one.state.me, register=False)
    bob, reply = await connect()
    name = reply["user"]["username"]
    await bob.request("dm", to=one.state.me, text="got a minute?")
    for driver in (one, two):
        await until(
            lambda d=driver: (
                name.casefold() in d.state.dms and d.state.dms[name.casefold()].unread == 1
            )
        )
    one.type(f"/query {name}\r")
    await until(lambda: two.state.dms[name.casefold()].unread == 0)
    assert two.state.dms[name.casefold()].highlights == 0


async def test_a_terminal_reconnecting_takes_the_counts_read_elsewhere_meanwhile(
    chat, connect, proxy
):
    """While one terminal is cut off, the other reads #tech; after the reconnect the first
    counts nothing unread there, as the server says, though it fetched what it missed."""
    one = await chat(port=proxy.port, backoff=(0.05, 0.2))
    two = await chat(one.state.me, register=False)
    one.type("/join tech\r")
    await until(lambda: "tech" in one.state.rooms and "tech" in two.state.rooms)
    one.type("/buffer general\r")
    await until(lambda: one.state.room == "general")
    await proxy.cut()
    await until(lambda: "offline" in one.state.connection)
    bob, _ = await connect()
    await bob.request("join", room="tech")
    for i in range(3):
        await bob.request("say", room="tech", text=f"while cut {i}")
    two.type("/buffer tech\r")
    await two.shows("while cut 2")
    tech = two.state.rooms["tech"]
    await until(lambda: tech.synced_seq == tech.last_seq, what="read sent")
    two.type("/ping\r")  # answered after the `read` sent before it
    await two.shows("pong in")
    await proxy.mend()
    await until(lambda: one.state.connected, what="reconnected")
    mine = one.state.rooms["tech"]
    await until(lambda: any(e.text == "while cut 2" for e in mine.messages()))
    assert mine.unread == 0


async def test_edit_react_and_reply_work_in_a_conversation(chat, connect):
    """In a DM buffer the commands address the message with `with`: bob sees the reply,
    the edit and the reaction on his side."""
    ana = await chat()
    bob, reply = await connect()
    name = reply["user"]["username"]
    sent = await bob.request("dm", to=ana.state.me, text="are you free at noon?")
    ana.type(f"/query {name}\r")
    await until(lambda: ana.state.current.find(sent["seq"]))
    ana.type(f"/reply {sent['seq']} yes, wher?\r")
    answer = await until(lambda: _mine_or_none(ana, "yes, wher?"))
    assert answer.renderable.above.plain == f"-> {name}: are you free at noon?"
    ana.type("/edit yes, where?\r")
    await until(lambda: answer.text == "yes, where?")
    ana.type(f"/react {sent['seq']} 👍\r")
    theirs = ana.state.current.find(sent["seq"])
    await until(lambda: theirs.renderable.below is not None)
    seen = []  # bob's own DM comes back to him too; ana's typing is not counted
    while (event := await asyncio.wait_for(bob._events.get(), 5))["event"] != "reaction":
        if event["event"] != "typing":
            seen.append(
                (event["event"], event.get("reply_to") or event.get("message", {}).get("text"))
            )
    assert seen == [("dm", None), ("dm", sent["seq"]), ("edited", "yes, where?")]
    assert event["message"]["reactions"] == {"👍": [ana.state.me]}


async def test_goto_far_back_opens_the_message_among_its_neighbours(chat, connect, monkeypatch):
    """A message further back than /goto pages in is shown with its neighbours (the page
    `around` it) instead of what the buffer held, marked, and the view scrolls to it;
    messages after it, live ones too, load as the view reaches the end."""
    monkeypatch.setattr(commands, "GOTO_PAGES", 0)  # "far" is anything not loaded
    bob, _ = await connect()
    for i in range(1, 81):
        await bob.request("say", room="general", text=f"line {i}")
    ana = await chat()
    general = ana.state.rooms["general"]
    ana.type("/goto #general/3\r")
    await until(lambda: general.first_seq == 1, what="the page around message 3")
    texts = [e.text for e in general.messages()]  # a page after may follow: the view is tall
    assert texts[:13] == [f"line {i}" for i in range(1, 14)] and general.more_after
    assert not general.more
    marked = general.find(3).renderable.body
    assert marked.plain == "line 3" and marked.spans, "message 3 is marked"
    rows = general.lines.view(80, ana.app.pane.height)  # the view as the screen has it
    assert any("".join(t for _, t in row).endswith("line 3 [3]") for row in rows)

    await bob.request("say", room="general", text="live 81")  # waits for the pages after
    while general.more_after:  # End, again and again: each page after loads below
        seen = general.last_seq
        ana.type(END)
        await until(lambda seen=seen: general.last_seq > seen, what="a page after")
    assert [e.seq for e in general.messages()] == list(range(1, 82))  # in order, no gap
    assert [e.text for e in general.messages()][-2:] == ["line 80", "live 81"]
    await bob.request("say", room="general", text="live 82")
    await ana.shows("live 82")


async def test_search_says_how_to_see_older_results_and_before_pages_to_them(chat, connect):
    """Past a page of results the note gives a `before:` that lists the older ones; a date
    that is not one is a usage error."""
    bob, _ = await connect()
    for i in range(105):
        await bob.request("say", room="general", text=f"deploy step {i}")
    ana = await chat()
    ana.type("/search deploy\r")
    note = await ana.shows("100 found, newest first; older ones: add before:")
    before = note.split("add ")[1].split(";")[0]
    ana.type(f"/search deploy {before}\r")
    await ana.shows("5 found, newest first; /goto")
    table = next(
        e.renderable for e in reversed(ana.state.pane.entries) if isinstance(e.renderable, Table)
    )
    assert table.row_count == 5
    ana.type("/search deploy before:yesterday\r")
    await ana.shows("before: takes a date or date and time")
