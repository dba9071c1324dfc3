"""Threads: a root's summary, replies kept out of the room's timeline and in the thread's
own buffer, its read marker; then through the Application against a real server."""

from __future__ import annotations

import time

import pytest

from nexus.client import render
from nexus.client.layout import header, status_bar
from nexus.client.state import ChatState
from tests.client.conftest import HOME, room_info, until

NOW = time.time()


def _said(seq: int, sender: str, text: str, **fields) -> dict:
    """A message of #den as history has it."""
    return {"room": "den", "seq": seq, "from": sender, "text": text, "ts": NOW, **fields}


def _message(seq: int, sender: str, text: str, **fields) -> dict:
    """The same as a live event."""
    return {"event": "message", **_said(seq, sender, text, **fields)}


def _den() -> ChatState:
    """me in #den, where ana's message 1 has a thread bob and ana replied in."""
    state = ChatState("me", "here")
    summary = {"replies": 2, "last": NOW, "participants": ["bob", "ana"]}
    root = _said(1, "ana", "lunch **plans**?", thread_summary=summary)
    state.add_room(room_info("den"), [root, _said(2, "cy", "hi")])
    state.switch("den")
    return state


def _texts(buffer) -> list[str]:
    return [e.text for e in buffer.messages()]


def test_a_root_shows_its_replies_count_last_time_and_who():
    state = _den()
    root = state.rooms["den"].find(1)
    rows = [row.plain for row in root.renderable.parts()]
    assert rows[1] == f"↳ 2 replies, last {render.clock(NOW)} (bob, ana)  /thread 1"


def test_a_reply_counts_on_its_root_and_goes_to_the_threads_buffer_not_the_timeline():
    state = _den()
    den = state.rooms["den"]
    thread = state.thread_buffer("room", "den", 1)
    state.add_thread(thread, _said(1, "ana", "lunch **plans**?"), [], False)
    state.apply(_message(3, "cy", "pizza", thread=1))
    assert _texts(den) == ["lunch **plans**?", "hi"]  # not in the timeline
    assert "↳ 3 replies" in den.find(1).renderable.parts()[1].plain
    assert "(cy, bob, ana)" in den.find(1).renderable.parts()[1].plain
    assert _texts(thread) == ["lunch **plans**?", "pizza"]
    assert thread.unread == 1 and den.unread == 0  # counted where it shows
    assert thread.label == "#den/1" and state.buffers[-1] is thread
    assert "thread of ana: lunch plans?" in "".join(t for _, t in header_of(state, thread))


def test_older_replies_go_under_the_root_with_their_days():
    """A page of replies older than those shown goes right under the root's
    rule, a day separator where its day changes and none twice."""
    state = _den()
    thread = state.thread_buffer("room", "den", 1)
    day = 24 * 3600
    root = _said(1, "ana", "lunch **plans**?", ts=NOW - 3 * day)
    newest = [_said(seq, "bob", f"reply {seq}") for seq in (7, 8)]
    state.add_thread(thread, root, newest, True)
    assert thread.more and thread.oldest_reply == 7
    older = [_said(3, "cy", "reply 3", ts=NOW - 2 * day)]
    older += [_said(seq, "cy", f"reply {seq}") for seq in (4, 6)]
    state.add_older_replies(thread, older, False)
    assert _texts(thread) == ["lunch **plans**?", *(f"reply {n}" for n in (3, 4, 6, 7, 8))]
    assert not thread.more and thread.oldest_reply == 3
    days = [e.day for e in thread.lines.entries if e.day is not None]
    assert days == sorted(set(days)) and len(days) == 3  # the root's, reply 3's, today
    state.add_older_replies(thread, [_said(2, "cy", "reply 2")], False)  # none past the root
    assert _texts(thread)[1] == "reply 2"


def header_of(state: ChatState, buffer) -> list[tuple[str, str]]:
    state.switch(buffer)
    return header(state)


def test_a_broadcast_reply_shows_in_the_timeline_too_with_its_thread():
    state = _den()
    state.apply(_message(3, "cy", "pizza!", thread=1, broadcast=True))
    den = state.rooms["den"]
    assert _texts(den)[-1] == "pizza!"
    above = den.find(3).renderable.above.plain
    assert above == "↳ in the thread of ana: lunch plans?"  # as drawn


def test_the_threads_read_marker_moves_the_thread_and_not_the_room():
    state = _den()
    den = state.rooms["den"]
    thread = state.thread_buffer("room", "den", 1)
    state.apply(_message(3, "cy", "pizza", thread=1))
    state.apply({"event": "read", "room": "den", "seq": 3, "thread": 1})
    assert thread.read_seq == 3 and thread.unread == 0
    assert den.read_seq == 2


def test_the_status_bar_counts_unread_threads():
    state = _den()
    state.threads_unread = 2
    assert "[2 unread threads: /threads]" in "".join(t for _, t in status_bar(state))


async def test_a_thread_in_its_own_buffer_with_replies_and_the_inbox(chat, server):
    """bob's root in #general gets a reply from a raw peer: ana's screen counts it on the
    root; /thread opens the thread's buffer (root on top), what ana types there is a
    reply, /broadcast reaches the timeline too, and /threads lists it."""
    bob = await server.user("threadbob")
    ana = await chat()
    root = await bob.ok("say", room="general", text="retro notes in here")
    seq = root["seq"]
    general = ana.state.rooms["general"]
    await until(lambda: general.find(seq), what="the root")
    await bob.ok("say", room="general", text="first point", thread=seq)
    await until(lambda: general.find(seq).renderable.summary is not None, what="a summary")
    assert "1 reply" in general.find(seq).renderable.summary.plain
    assert "first point" not in [e.text for e in general.messages()]

    ana.type(f"/thread {seq}\r")
    thread = await until(lambda: ana.state.current.kind == "thread" and ana.state.current)
    assert [e.text for e in thread.messages()] == ["retro notes in here", "first point"]
    assert ana.state.number(thread) == len(ana.state.buffers)
    ana.type("agreed\r")
    event = await bob.event("message", text="agreed")
    assert (event["text"], event["thread"], event.get("broadcast")) == ("agreed", seq, None)
    ana.type("/broadcast shipping it\r")
    event = await bob.event("message", text="shipping it")
    assert (event["text"], event["thread"], event["broadcast"]) == ("shipping it", seq, True)
    await until(lambda: "shipping it" in [e.text for e in general.messages()])
    assert "agreed" not in [e.text for e in general.messages()]

    ana.type("\x1b1")  # Alt-1: away from the thread, whose next reply counts unread
    await until(lambda: ana.state.current is general)
    await bob.ok("say", room="general", text="one more thing", thread=seq)
    await until(lambda: ana.state.threads_unread == 1, what="an unread thread")
    ana.type("/threads\r")
    await ana.shows("/thread #room/n opens one")
    assert f"#general/{seq}" in ana.screen()
    ana.type(f"/thread #general/{seq}\r")
    await until(lambda: ana.state.current is thread)
    await until(lambda: ana.state.threads_unread == 0, what="the thread read")
    ana.type("/clear\r")
    await until(lambda: not list(thread.messages()))
    ana.type(f"/thread {seq}\r")  # brings the cleared thread back whole
    await until(lambda: len(list(thread.messages())) == 5, what="the thread again")
    assert next(e.text for e in thread.messages()) == "retro notes in here"
    ana.type("/unfollow\r")
    await ana.shows(f"no longer following the thread of #general/{seq}")
    ana.type("/threads\r")
    await ana.shows("you follow no thread")
    ana.type(f"/follow {seq}\r")  # a root's number works here too
    await ana.shows(f"following the thread of #general/{seq}")


async def test_a_thread_of_a_conversation(chat, server):
    """A DM can have a thread too: its buffer is `bob/N`, and a reply goes as a DM."""
    bob = await server.user("dmbob")
    ana = await chat()
    sent = await bob.ok("dm", to=ana.state.me, text="about friday")
    ana.type(f"/thread dmbob/{sent['seq']}\r")
    thread = await until(lambda: ana.state.current.kind == "thread" and ana.state.current)
    assert thread.label == f"dmbob/{sent['seq']}"
    ana.type("count me in\r")
    event = await bob.event("dm", text="count me in")
    assert event["thread"] == sent["seq"]
    await bob.ok("dm", to=ana.state.me, text="great", thread=sent["seq"])
    await until(lambda: [e.text for e in thread.messages()][-1] == "great")
    dms = ana.state.dms["dmbob"]
    assert [e.text for e in dms.messages()] == ["about friday"]
    assert "2 replies" in dms.find(sent["seq"]).renderable.summary.plain


async def test_reading_a_thread_in_one_terminal_clears_its_count_in_the_other(chat, server):
    """The thread's read marker goes to the server as its buffer shows the newest reply:
    ana's other terminal drops the thread from its unread count."""
    bob = await server.user("markbob")
    one = await chat()
    two = await chat(one.state.me, register=False)
    seq = (await bob.ok("say", room="general", text="who takes the notes?"))["seq"]
    await until(lambda: one.state.rooms["general"].find(seq))
    # Named in a reply: ana follows the thread from there.
    await bob.ok("say", room="general", text=f"@{one.state.me} you?", thread=seq)
    await until(lambda: one.state.threads_unread == 1 and two.state.threads_unread == 1)
    one.type(f"/thread {seq}\r")
    await until(lambda: two.state.threads_unread == 0, what="the count gone in the other")
    # This terminal asks for its count half a second after its read marker, as
    # the other does after hearing of it: either answer may come first.
    await until(lambda: one.state.threads_unread == 0, what="the count gone in this one")


@pytest.mark.engines("sqlite")  # the json engine keeps 500 a room: no root would stay
async def test_a_long_thread_loads_its_older_replies_as_the_view_reaches_the_root(chat, server):
    """A thread of more replies than a page shows its newest; Home reaches the
    root and the older ones load under it, a page at a time, until all show."""
    bob = await server.user("longbob")
    root = await bob.ok("say", room="general", text="the long one")
    for n in range(1, 561):
        await bob.ok("say", room="general", text=f"reply {n}", thread=root["seq"])
    ana = await chat()
    ana.type(f"/thread #general/{root['seq']}\r")
    thread = await until(lambda: ana.state.current.kind == "thread" and ana.state.current)
    assert len(list(thread.messages())) == 1 + 500 and thread.more
    for _ in range(5):  # each time the view reaches the root, one more page comes
        shown = len(list(thread.messages()))
        ana.type(HOME)
        await until(lambda: len(list(thread.messages())) > shown, what="older replies")  # noqa: B023
        if not thread.more:
            break
    texts = [e.text for e in thread.messages()]
    assert texts == ["the long one", *(f"reply {n}" for n in range(1, 561))]
    assert not thread.more


async def test_a_link_to_a_reply_opens_its_thread_with_the_reply_marked(chat, server):
    """`/goto #general/N` where N is a reply (not on the timeline) opens the
    thread it is in, the reply marked; `/thread N` of a reply, that thread."""
    bob = await server.user("linkbob")
    ana = await chat()
    root = await bob.ok("say", room="general", text="the plan")
    reply = await bob.ok("say", room="general", text="step one", thread=root["seq"])
    general = ana.state.rooms["general"]
    await until(lambda: general.find(root["seq"]), what="the root")
    ana.type(f"/goto #general/{reply['seq']}\r")
    thread = await until(lambda: ana.state.current.kind == "thread" and ana.state.current)
    assert thread.root == root["seq"]
    assert [e.text for e in thread.messages()] == ["the plan", "step one"]
    spans = thread.find(reply["seq"]).renderable.body.spans
    assert any(span.style == render.FOUND for span in spans)  # spotlighted
    ana.type("\x1b1")
    await until(lambda: ana.state.current is general)
    ana.type(f"/thread {reply['seq']}\r")
    await until(lambda: ana.state.current is thread)
    ana.type(f"/goto #general/{reply['seq'] + 50}\r")
    await ana.shows(f"no message {reply['seq'] + 50} in #general")
