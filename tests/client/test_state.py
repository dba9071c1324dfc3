"""The client model: scrollback, unread counts, mentions, rooms, without any I/O."""

from __future__ import annotations

import time

from hypothesis import given
from hypothesis import strategies as st
from rich.cells import cell_len
from rich.text import Text

from nexus.client import render
from nexus.client import state as state_module
from nexus.client.state import Alert, ChatState, Scrollback
from tests.client.conftest import member, room_info

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
        state_module.render, "rows", lambda r, *size: calls.append(r) or real_rows(r, *size)
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
    assert [e.text for e in state.pane.entries if e.day is None] == ["hi"] * 4


def test_messages_in_other_rooms_count_as_unread_and_mentions_ring():
    """Other rooms collect unread counts and a mention mark; a mention anywhere alerts,
    saying where it was and whether it was on screen."""
    state = make_state("general", "tech")
    assert state.apply(msg(1, room="tech")) is None
    assert state.apply(msg(2, "ping @ana", room="tech")) == Alert(
        "#tech", "bob", "ping @ana", False
    )
    assert state.apply(msg(1, "ana: look")) == Alert("#general", "bob", "ana: look", True)
    tech = state.rooms["tech"]
    assert (tech.unread, tech.highlights) == (2, 1)
    assert state.rooms["general"].unread == 0
    state.cycle(1)
    assert (state.room, tech.unread, tech.highlights) == ("tech", 0, 0)


def test_my_own_messages_neither_ring_nor_count():
    """Saying my own name, or speaking in another room from another session, is quiet."""
    state = make_state("general", "tech")
    assert state.apply(msg(1, "i am ana", sender="ana", room="tech")) is None
    assert state.rooms["tech"].unread == 0


def test_repeated_messages_are_dropped_by_seq():
    """A message already shown (same or older seq) is not added twice."""
    state = make_state("general")
    state.apply(msg(1))
    state.apply(msg(2))
    state.apply(msg(2))
    assert state.rooms["general"].last_seq == 2
    assert sum(e.day is None for e in state.pane.entries) == 2


def test_direct_messages_go_to_their_own_buffer_never_to_the_room():
    """A DM opens the conversation's buffer; the room on screen gets nothing; incoming rings."""
    state = make_state("general")
    dm = {"event": "dm", "seq": 1, "from": "mike", "to": "ana", "text": "psst", "ts": 0}
    assert state.apply(dm) == Alert("mike", "mike", "psst", False)
    assert state.apply({**dm, "seq": 2, "from": "ana", "to": "mike"}) is None
    assert not [e for e in state.rooms["general"].lines.entries if e.sender]
    mike = state.dms["mike"]
    assert [(e.sender, e.text) for e in mike.lines.entries if e.sender] == [
        ("mike", "psst"),
        ("ana", "psst"),
    ]
    assert (mike.unread, mike.highlights) == (1, 1)  # a DM to me is a highlight; mine is not
    state.switch(mike)
    assert (mike.unread, mike.highlights, mike.read_seq, mike.synced_seq) == (0, 0, 2, 0)


def test_buffers_are_numbered_in_the_order_they_opened():
    """Alt-number follows the side panel: rooms and DMs as they came; Alt-A jumps."""
    state = make_state("tech", "general")
    for seq, peer in enumerate(["zed", "amy"], 1):
        state.apply({"event": "dm", "seq": seq, "from": peer, "to": "ana", "text": "x", "ts": 0})
    assert [b.label for b in state.buffers] == ["#tech", "#general", "zed", "amy"]
    state.switch_number(4)
    assert state.current is state.dms["amy"]
    state.switch_number(9)  # no such buffer: nothing moves
    assert state.current is state.dms["amy"]
    state.apply(msg(1, "hello @ana", room="general"))
    state.apply(msg(1, "chatter", room="tech"))
    state.next_active()  # highlights first, in list order: #general, then zed (a DM)
    assert state.room == "general"
    state.next_active()
    assert state.current is state.dms["zed"]
    state.next_active()  # then plain unread
    assert state.room == "tech"
    state.close(state.dms["zed"])
    assert [b.label for b in state.buffers] == ["#tech", "#general", "amy"]


def test_unread_counts_follow_a_read_position_that_can_be_moved():
    """Counts derive from read_seq: moving it (as a server read marker would) recounts them."""
    state = make_state("general", "tech")
    for seq in range(1, 6):
        state.apply(msg(seq, "ana?" if seq == 5 else "x", room="tech"))
    tech = state.rooms["tech"]
    assert (tech.unread, tech.highlights) == (5, 1)
    tech.set_read(3)
    assert (tech.unread, tech.highlights) == (2, 1)
    tech.set_read(5)
    assert (tech.unread, tech.highlights) == (0, 0)


def test_an_unread_rule_marks_where_unseen_messages_start():
    """The first message arriving in a buffer not on screen follows an `unread` rule (one only)."""
    state = make_state("general", "tech")
    state.apply(msg(1, "seen before", room="tech"))
    state.switch("tech")
    state.switch("general")
    state.apply(msg(2, "new one", room="tech"))
    state.apply(msg(3, "another", room="tech"))
    texts = [e.plain or "?" for e in state.rooms["tech"].lines.entries if e.day is None]
    rules = [t for t in texts if "unread" in t]
    assert len(rules) == 1
    assert texts.index(rules[0]) == [t.endswith("new one") for t in texts].index(True) - 1


def test_offline_dms_fetched_at_login_show_in_their_buffer_as_unread():
    """A page of a conversation with two unread: they follow the rule and count; older do not."""
    state = make_state("general")
    page = [{"seq": s, "from": "bob", "to": "ana", "text": f"m{s}", "ts": 0.0} for s in range(1, 5)]
    bob = state.dm_buffer("bob")
    state.add_dms(bob, page, unread=2)
    assert (bob.unread, bob.highlights, bob.synced_seq) == (2, 2, 4)
    texts = [e.text for e in bob.lines.entries if e.day is None]
    assert texts[2:] == ["── unread ──", "m3", "m4"]


def test_presence_lines_of_people_who_have_not_spoken_are_folded():
    """Joins, leaves and presence of silent people are folded; of recent speakers shown."""
    now = time.time()
    state = make_state("general")
    general = state.rooms["general"]
    state.set_members("general", [member("ana"), member("bob")])
    state.apply(msg(1, "hi", sender="bob", ts=now))
    state.apply({"event": "joined", "room": "general", "user": "carol"})
    state.apply({"event": "presence", "user": "bob", "online": False})
    state.apply({"event": "presence", "user": "carol", "online": False})
    shown = [e.text for e in general.lines.entries if not e.folded and e.day is None]
    folded = [e.text for e in general.lines.entries if e.folded]
    assert shown == ["hi", "bob is offline"]
    assert folded == ["carol joined #general", "carol is offline"]
    state.apply(msg(2, "hello all", sender="carol", ts=now))  # speaking unfolds the join
    assert [e.text for e in general.lines.entries if e.folded] == ["carol is offline"]
    assert len(plain(general.lines.view(80, 20))) < len(plain(general.lines.view(80, 20, True)))


def test_people_of_a_room_are_its_members_online_first():
    """Members come from `members` (all of them, online or not) and joins; a
    speaker who is not listed is not one; online ones sort first."""
    state = make_state("general")
    state.set_members("general", [member("ana"), member("bob"), member("Zoe", online=False)])
    state.apply(msg(1, sender="cid"))  # spoke, then left before the list was asked
    state.apply({"event": "joined", "room": "general", "user": "amy"})
    general = state.rooms["general"]
    assert state.people(general) == [("amy", True), ("ana", True), ("bob", True), ("Zoe", False)]
    state.apply({"event": "left", "room": "general", "user": "bob"})
    state.apply({"event": "presence", "user": "amy", "online": False})
    assert state.people(general) == [("ana", True), ("amy", False), ("Zoe", False)]


def test_a_members_list_replaces_the_room_s_people_and_badges():
    """`members` is the whole truth: who is gone drops out; moderators, muted and
    admins follow it; the list is no longer stale."""
    state = make_state("general", "tech")
    assert state.members_stale == {"general", "tech"}
    state.set_members("general", [member("ana"), member("bob"), member("cy")])
    listed = [
        member("ana"),
        member("Cy", online=False, role="moderator", muted=True),
        member("root", online=False, admin=True, away="gone fishing"),
    ]
    state.set_members("general", listed)
    general = state.rooms["general"]
    assert state.people(general) == [("ana", True), ("Cy", False), ("root", False)]
    assert general.moderators == {"cy"} and general.muted == {"cy"}
    assert [state.mark(general, n) for n in ("ana", "Cy", "root")] == ["", "@", "&"]
    assert state.is_away("root") and state.members_stale == {"tech"}


def test_someone_unknown_coming_online_makes_the_member_lists_stale():
    """A presence of someone in no list (a new account in the default rooms)
    asks for every room's members again; of a known member, it does not."""
    state = make_state("general")
    state.set_members("general", [member("ana"), member("bob", online=False)])
    state.apply({"event": "presence", "user": "bob", "online": True})
    assert state.members_stale == set()
    state.apply({"event": "presence", "user": "newbie", "online": True})
    assert state.members_stale == {"general"}


def test_lastlog_finds_loaded_lines_and_marks_the_words():
    """Lines of the current buffer with the words (any case) come back with matches styled;
    a second search does not find the first one's output."""
    state = make_state("general")
    state.apply(msg(1, "Deploy at five"))
    state.apply(msg(2, "lunch"))
    assert state.lastlog("deploy") == 1
    shown = state.pane.entries[-1].renderable
    assert shown.body.plain == "Deploy at five"
    assert [(s.start, s.end, s.style) for s in shown.body.spans] == [(0, 6, render.FOUND)]
    assert state.lastlog("deploy") == 1


def test_membership_events_about_me_add_and_remove_rooms():
    """My own joined/left events (from any of my sessions) change my room list."""
    state = make_state("general")
    state.apply({"event": "joined", "room": "tech", "user": "ANA"})
    assert "tech" in state.rooms
    state.apply({"event": "left", "room": "general", "user": "ana"})
    assert list(state.rooms) == ["tech"] and state.room == "tech"


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


def test_highlight_words_count_as_naming_me():
    """client.toml's highlight words mark and alert like my name, as whole words only."""
    state = ChatState("ana", "x", highlight=["deploy", "on-call"])
    state.add_room(room_info("general"))
    state.add_room(room_info("tech"))
    state.switch("general")
    assert state.apply(msg(1, "Deploy at 4", room="tech")) is not None
    assert state.apply(msg(2, "who is on-call?", room="tech")) is not None
    assert state.apply(msg(3, "redeployed, deployment done", room="tech")) is None
    assert state.rooms["tech"].highlights == 2


def test_the_time_column_follows_the_configured_format():
    """A format with seconds widens the time column; the names and text move along."""
    state = ChatState("ana", "x", clock_format="%H:%M:%S")
    state.add_room(room_info("general"))
    state.switch("general")
    when = time.mktime((2026, 12, 2, 9, 5, 7, 0, 0, -1))
    state.apply(msg(1, "hello", ts=when))
    default = plain(state.pane.view(60, 3))[-1]
    seconds = plain(state.pane.view(60, 3, fmt=state.clock_format))[-1]
    assert default.startswith("09:05 ") and "09:05:07" not in default
    assert seconds.startswith("09:05:07 ")
    assert seconds.index("│") == default.index("│") + 3
