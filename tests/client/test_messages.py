"""Protocol 2 messages in the client model and renderer, without I/O: references, edits,
tombstones, replies, reactions, actions, server mentions, read markers and away."""

from __future__ import annotations

from nexus.client import render
from nexus.client.layout import header
from nexus.client.state import ChatState
from tests.client.conftest import member, profile, room_info


def msg(seq: int, text: str = "hi", sender: str = "bob", **extra):
    return {
        "event": "message",
        "room": "general",
        "seq": seq,
        "from": sender,
        "text": text,
        "ts": 0.0,
        **extra,
    }


def rows_of(entry, width: int = 60) -> list[str]:
    return ["".join(text for _, text in row) for row in entry.rows(width)]


def make_state(unread: int | None = None, history=()) -> ChatState:
    state = ChatState("ana", "localhost:9999")
    info = room_info("general")
    if unread is not None:
        info["unread"] = unread
    state.add_room(info, list(history))
    return state


def test_a_message_shows_its_dim_reference_after_the_text():
    """`[seq]` follows the text in grey: the number /reply, /edit and /react take."""
    state = make_state()
    state.switch("general")
    state.apply(msg(41, "hello"))
    entry = state.rooms["general"].find(41)
    assert rows_of(entry)[0].endswith("bob │ hello [41]")
    assert entry.renderable.tail.spans[-1].style == render.DIM
    assert entry.text == "hello"  # the reference is not part of what it says


def test_an_edited_event_redraws_the_entry_in_place():
    """The entry keeps its place; its cached rows are dropped and `(edited)` shows."""
    state = make_state()
    state.apply(msg(1, "teh plan"))
    state.apply(msg(2, "ok"))
    entry = state.rooms["general"].find(1)
    assert "teh plan" in rows_of(entry)[0]
    state.apply({"event": "edited", "message": msg(1, "the plan", edited=5.0)})
    assert state.rooms["general"].find(1) is entry
    assert rows_of(entry)[0].endswith("bob │ the plan (edited) [1]")


def test_an_erased_message_is_a_dim_tombstone_and_no_longer_a_highlight():
    """`erased` leaves `(message erased)` in grey; a mention it had stops counting."""
    state = make_state()
    state.apply(msg(1, "hey @ana", mentions=["ana"]))
    entry = state.rooms["general"].find(1)
    assert entry.highlight
    state.apply({"event": "erased", "message": msg(1, "", erased=True)})
    assert entry.erased and not entry.highlight
    assert rows_of(entry)[0].endswith("bob │ (message erased) [1]")
    assert entry.renderable.prefix_style == render.DIM


def test_a_reply_quotes_the_answered_message_and_follows_its_edits():
    """`-> ana: first words…` heads the reply, inside the hanging indent; an edit of the
    answered message redraws the quote."""
    state = make_state()
    state.apply(msg(1, "can someone review the pull request for the new parser today", "cy"))
    state.apply(msg(2, "on it", reply_to=1))
    reply = state.rooms["general"].find(2)
    first, second = rows_of(reply)
    assert first.endswith("bob │ -> cy: can someone review the pull request…")
    assert second.strip() == "│ on it [2]"
    state.apply({"event": "edited", "message": msg(1, "review please", "cy", edited=1.0)})
    assert rows_of(reply)[0].endswith("bob │ -> cy: review please")


def test_a_reply_to_a_message_not_loaded_shows_its_reference():
    """With the answered message out of the scrollback, the quote is its `[seq]`."""
    state = make_state()
    state.apply(msg(9, "yes", reply_to=3))
    assert rows_of(state.rooms["general"].find(9))[0].endswith("bob │ -> [3]")


def test_reactions_show_on_a_row_below_with_mine_highlighted():
    """`👍 2  ❤ 1` under the text, in the emoji's order; the ones I am in stand out."""
    state = make_state()
    state.apply(msg(1, "lunch?", reactions={"👍": ["cy", "ana"], "❤": ["cy"]}))
    entry = state.rooms["general"].find(1)
    rows = rows_of(entry)
    assert rows[1].strip() == "│ 👍 2  ❤ 1"
    styles = {
        entry.renderable.below.plain[s.start : s.end]: s.style for s in entry.renderable.below.spans
    }
    assert styles == {"👍 2": render.MINE, "❤ 1": render.DIM}
    state.apply(
        {
            "event": "reaction",
            "message": msg(1, "lunch?", reactions={"👍": ["cy"]}),
            "user": "ana",
            "emoji": "❤",
            "on": False,
        }
    )
    assert rows_of(entry)[1].strip() == "│ 👍 1"


def test_an_action_shows_as_a_star_line_with_the_name_in_the_body():
    """`* bob waves`: the star in the name column, the name coloured in the text."""
    line = render.message(msg(1, "waves", action=True))
    assert line.prefix == render.ACTION and line.body.plain == "bob waves"
    assert render.rows(line, 60)[0][-2:] != []
    assert "".join(t for _, t in render.rows(line, 60)[0]).endswith("* │ bob waves")


def test_rows_a_peer_adds_can_never_start_where_a_name_goes():
    """A reply quote, reactions and a long text all stay right of the bar."""
    state = make_state()
    state.apply(msg(1, "x" * 200 + "\n12:00 eve │ forged", reply_to=0, reactions={"a": ["b"]}))
    rows = rows_of(state.rooms["general"].find(1), 40)
    assert rows[0].split("│")[0].split()[1:] == ["bob"]
    assert len(rows) > 5 and all(not row.split("│")[0].strip() for row in rows[1:])


def test_the_servers_mentions_make_a_highlight_and_highlight_words_still_do():
    """`mentions` naming me counts even without my name as a word; client.toml's words too."""
    state = ChatState("ana", "x", highlight=["deploy"])
    state.add_room(room_info("general"))
    state.add_room(room_info("tech"))
    state.switch("tech")
    assert state.apply(msg(1, "hey you", mentions=["Ana"])) is not None
    assert state.apply(msg(2, "deploy done")) is not None
    assert state.apply(msg(3, "nothing here", mentions=["bob"])) is None
    assert state.rooms["general"].highlights == 2


def test_the_servers_unread_count_puts_the_rule_before_the_unread_messages():
    """RoomInfo `unread` at login: the rule goes before the newest n messages of others
    (mine and erased ones do not count), and the counts are n."""
    history = [
        msg(1, "old"),
        msg(2, "read already"),
        msg(3, "first unread", "cy"),
        msg(4, "mine", "ana"),
        msg(5, "", erased=True),
        msg(6, "@ana second unread", mentions=["ana"]),
    ]
    state = make_state(unread=2, history=history)
    room = state.rooms["general"]
    assert (room.unread, room.highlights) == (2, 1)
    texts = [e.text or e.plain for e in room.lines.entries if e.day is None]
    assert "unread" in texts[2] and texts[3] == "first unread"
    assert room.synced_seq == room.read_seq == 2


def test_more_unread_than_loaded_keeps_the_servers_count():
    """A count past the loaded page stands; the rule goes above everything loaded."""
    state = make_state(unread=80, history=[msg(100, "a"), msg(101, "b")])
    room = state.rooms["general"]
    assert room.unread == 80
    assert "unread" in next(e.plain for e in room.lines.entries if e.day is None)


def test_a_read_event_from_another_terminal_lowers_the_count():
    """`read` for a room moves the position there: only what lies past it stays unread."""
    state = make_state()
    for seq in (1, 2, 3):
        state.apply(msg(seq))
    room = state.rooms["general"]
    assert room.unread == 3
    state.apply({"event": "read", "room": "general", "seq": 2})
    assert room.unread == 1 and room.synced_seq == 2
    state.apply({"event": "read", "room": "general", "seq": 3})
    assert room.unread == 0


def test_a_message_arriving_while_scrolled_up_is_not_read_yet():
    """On screen but scrolled up: the new message's seq waits until the view is at the bottom."""
    state = make_state()
    state.switch("general")
    for seq in range(1, 40):
        state.apply(msg(seq))
    room = state.rooms["general"]
    room.lines.view(60, 10)
    room.lines.scroll_by(5)
    state.apply(msg(40))
    assert room.read_seq == 39


def test_away_presence_marks_the_person_and_says_so_in_shared_rooms():
    """`presence` with `away` for someone online: an `is away` line, then `is back`."""
    state = make_state()
    state.set_members("general", [member("ana"), member("cy", online=False)])
    state.apply({"event": "presence", "user": "cy", "online": True, "away": None})
    state.apply({"event": "presence", "user": "cy", "online": True, "away": "lunch"})
    assert state.is_away("CY")
    room = state.rooms["general"]
    assert room.lines.entries[-1].plain.endswith("cy is away: lunch")
    state.apply({"event": "presence", "user": "cy", "online": True, "away": None})
    assert not state.is_away("cy") and room.lines.entries[-1].plain.endswith("cy is back")


def test_goto_scrolls_a_loaded_message_to_the_middle_of_the_view():
    """scroll_to leaves the target about half a screen above the bottom."""
    state = make_state()
    state.switch("general")
    for seq in range(1, 100):
        state.apply(msg(seq, f"line {seq}"))
    lines = state.rooms["general"].lines
    lines.view(60, 20)
    lines.scroll_to(state.rooms["general"].find(50))
    shown = ["".join(t for _, t in row) for row in lines.view(60, 20)]
    assert any(row.endswith("line 50 [50]") for row in shown[5:15])


def test_an_unread_message_erased_or_edited_to_name_me_changes_the_counts():
    """Counts follow an erasure (one less unread) and an edit adding @me (a highlight)."""
    state = make_state()
    state.add_room(room_info("tech"))
    state.switch("tech")
    state.apply(msg(1, "oops"))
    state.apply(msg(2, "hello"))
    room = state.rooms["general"]
    assert (room.unread, room.highlights) == (2, 0)
    state.apply({"event": "erased", "message": msg(1, "", erased=True)})
    state.apply({"event": "edited", "message": msg(2, "hello @ana", mentions=["ana"], edited=1)})
    assert (room.unread, room.highlights) == (1, 1)


def test_a_conversation_header_says_when_the_person_is_away():
    """The header of a DM buffer shows the away text of an online person."""
    state = make_state()
    state.set_online([profile("cy", [], away="lunch")])
    state.switch(state.dm_buffer("cy"))
    assert "".join(text for _, text in header(state)) == " cy direct messages, away: lunch"


def test_a_view_scrolled_up_stays_still_when_a_message_under_it_grows():
    """A reaction row added to a message below the view moves the offset with it, so the
    rows on screen do not shift."""
    state = make_state()
    state.switch("general")
    for seq in range(1, 60):
        state.apply(msg(seq, f"line {seq}"))
    lines = state.rooms["general"].lines
    lines.view(60, 10)
    lines.scroll_by(20)
    before = plain_rows(lines.view(60, 10))
    state.apply(
        {
            "event": "reaction",
            "message": msg(55, "line 55", reactions={"👍": ["cy"]}),
            "user": "cy",
            "emoji": "👍",
            "on": True,
        }
    )
    assert plain_rows(lines.view(60, 10)) == before
    state.apply({"event": "edited", "message": msg(10, "line 10 " + "long " * 30, edited=1.0)})
    assert plain_rows(lines.view(60, 10)) == before  # above the view: nothing moves either


def plain_rows(rows) -> list[str]:
    return ["".join(text for _, text in row) for row in rows]


def test_names_marks_the_people_away_offline_and_their_roles():
    """/names lists every member with their role mark, online first: an away or
    offline person dim, `(away)` after the away one's name."""
    state = make_state()
    listed = [member("ana"), member("bo", role="owner"), member("cy", away="lunch")]
    state.set_members("general", [*listed, member("dee", online=False, admin=True)])
    general = state.rooms["general"]
    line = render.names(
        "#general", state.people(general), state.is_away, lambda n: state.mark(general, n)
    )
    assert line.plain == "#general (3 online, 4 members): ana  ~bo  cy (away)  &dee"
    for name in ("cy", "dee"):
        start = line.plain.rindex(name)
        assert [s.style for s in line.spans if s.start == start] == [render.DIM]


def test_a_reply_quotes_its_message_once_an_older_page_brings_it():
    """`-> [3]` becomes `-> cy: …` when the page holding message 3 is loaded above."""
    state = make_state()
    room = state.rooms["general"]
    state.add_messages(room, [msg(9, "agreed", reply_to=3)])
    reply = room.find(9)
    assert rows_of(reply)[0].endswith("bob │ -> [3]")
    state.add_messages(room, [msg(3, "ship it friday", "cy"), msg(4, "ok")])
    assert rows_of(reply)[0].endswith("bob │ -> cy: ship it friday")
