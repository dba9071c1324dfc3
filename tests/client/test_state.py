"""The client model: scrollback, unread counts, mentions, rooms, without any I/O."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from rich.cells import cell_len
from rich.text import Text

from nexus.client import render
from nexus.client import state as state_module
from nexus.client.state import ChatState, Scrollback
from tests.client.conftest import room_info

DAY = 86_400.0


def msg(seq: int, text: str = "hi", sender: str = "bob", room: str = "general", ts: float = 0.0):
    return {"event": "message", "room": room, "seq": seq, "from": sender, "text": text, "ts": ts}


def plain(rows) -> list[str]:
    return ["".join(text for _, text in row) for row in rows]


def make_state(*rooms: str) -> ChatState:
    state = ChatState("ana", "localhost:9999")
    for name in rooms:
        state.add_room(room_info(name))
    state.switch(rooms[0])
    return state


def test_scrollback_keeps_only_the_newest_entries_up_to_its_cap():
    """Appending past the cap drops the oldest entries."""
    lines = Scrollback(cap=3)
    for i in range(5):
        lines.add(Text(f"line {i}"))
    assert [e.plain for e in lines.entries] == ["line 2", "line 3", "line 4"]


def test_view_renders_only_what_is_visible(monkeypatch):
    """With 5,000 entries a view of 10 rows renders about 10 entries, not all of them."""
    lines = Scrollback(cap=10_000)
    for i in range(5_000):
        lines.add(Text(f"line {i}"))
    calls = []
    real_rows = state_module.render.rows
    monkeypatch.setattr(
        state_module.render, "rows", lambda r, w: calls.append(r) or real_rows(r, w)
    )
    assert plain(lines.view(40, 10))[-1] == "line 4999"
    assert len(calls) == 10


def test_scrolling_up_stays_put_as_new_lines_arrive_and_counts_them():
    """While scrolled up, new lines leave the view where it was and are counted as newer."""
    lines = Scrollback()
    for i in range(30):
        lines.add(Text(f"line {i}"))
    lines.view(40, 5)
    lines.scroll_by(10)
    before = plain(lines.view(40, 5))
    lines.add(Text("new"))
    assert plain(lines.view(40, 5)) == before
    assert lines.newer == 1
    lines.scroll_by(-100)
    assert (lines.scroll, lines.newer) == (0, 0)
    assert plain(lines.view(40, 5))[-1] == "new"


def test_scrolling_past_the_top_stops_at_the_oldest_line():
    """The offset is clamped so the first row shown is the oldest entry."""
    lines = Scrollback()
    for i in range(8):
        lines.add(Text(f"line {i}"))
    lines.scroll_by(1_000)
    assert plain(lines.view(40, 5))[0] == "line 0"
    assert lines.scroll == 3


def test_day_separators_go_between_days_and_survive_history_prepends():
    """A separator precedes each new day; older messages of the same day do not repeat it."""
    state = make_state("general")
    state.apply(msg(3, ts=10 * DAY + 100))
    state.apply(msg(4, ts=11 * DAY + 100))
    state.add_messages(state.rooms["general"], [msg(1, ts=9 * DAY + 50), msg(2, ts=10 * DAY + 50)])
    days = [e.day for e in state.pane.entries if e.day is not None]
    assert len(days) == 3 and days == sorted(days)
    assert [e.plain.split(": ")[-1] for e in state.pane.entries if e.day is None] == ["hi"] * 4


def test_messages_in_other_rooms_count_as_unread_and_mentions_ring():
    """Other rooms collect unread counts and a mention mark; a mention anywhere rings."""
    state = make_state("general", "tech")
    assert state.apply(msg(1, room="tech")) is False
    assert state.apply(msg(2, "ping @ana", room="tech")) is True
    assert state.apply(msg(1, "ana: look")) is True
    tech = state.rooms["tech"]
    assert (tech.unread, tech.mentioned) == (2, True)
    assert state.rooms["general"].unread == 0
    state.cycle(1)
    assert (state.current, tech.unread, tech.mentioned) == ("tech", 0, False)


def test_my_own_messages_neither_ring_nor_count():
    """Saying my own name, or speaking in another room from another session, is quiet."""
    state = make_state("general", "tech")
    assert state.apply(msg(1, "i am ana", sender="ana", room="tech")) is False
    assert state.rooms["tech"].unread == 0


def test_repeated_messages_are_dropped_by_seq():
    """A message already shown (same or older seq) is not added twice."""
    state = make_state("general")
    state.apply(msg(1))
    state.apply(msg(2))
    state.apply(msg(2))
    assert state.rooms["general"].last_seq == 2
    assert sum(e.day is None for e in state.pane.entries) == 2


def test_direct_messages_show_in_the_current_pane_and_ring_when_received():
    """DMs land where I am looking; only incoming ones ring."""
    state = make_state("general")
    dm = {"event": "dm", "seq": 1, "from": "mike", "to": "ana", "text": "psst", "ts": 0}
    assert state.apply(dm) is True
    assert state.apply({**dm, "from": "ana", "to": "mike"}) is False
    assert [e.plain[6:] for e in state.pane.entries if e.day is None] == [
        "DM <- mike: psst",
        "DM -> mike: psst",
    ]


def test_membership_events_about_me_add_and_remove_rooms():
    """My own joined/left events (from any of my sessions) change my room list."""
    state = make_state("general")
    state.apply({"event": "joined", "room": "tech", "user": "ANA"})
    assert "tech" in state.rooms
    state.apply({"event": "left", "room": "general", "user": "ana"})
    assert list(state.rooms) == ["tech"] and state.current == "tech"


def test_deleted_room_is_removed_and_presence_tracks_who_is_online():
    """room_deleted drops the room; presence events maintain the online set."""
    state = make_state("general", "den")
    state.apply({"event": "presence", "user": "bob", "online": True})
    state.apply({"event": "room_deleted", "room": "den", "by": "bob"})
    assert "den" not in state.rooms and state.online == {"bob"}
    state.apply({"event": "presence", "user": "bob", "online": False})
    assert state.online == set()


@given(
    texts=st.lists(st.text(max_size=300), max_size=40),
    width=st.integers(10, 120),
    height=st.integers(1, 30),
    scroll=st.integers(0, 500),
)
def test_a_view_always_fits_the_pane(texts, width, height, scroll):
    """Whatever the text and offset, a view has at most `height` rows of at most `width` cells."""
    lines = Scrollback()
    for text in texts:
        lines.add(render.message({"from": "bob", "text": text, "ts": 0}))
    lines.scroll_by(scroll)
    rows = lines.view(width, height)
    assert len(rows) <= height
    assert all(sum(cell_len(text) for _, text in row) <= width for row in rows)
    assert lines.scroll >= 0
