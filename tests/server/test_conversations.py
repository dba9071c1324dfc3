"""Protocol 2's conversation features over real sockets: message fields, edit,
erase, react, read markers and unread counts, mentions, away, password."""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD
from tests.wire import Peer

MESSAGE_KEYS = {"room", "seq", "from", "text", "ts"}


async def pair(server, room: str = "tech") -> tuple[Peer, Peer]:
    """alice and bob, both members of `room`."""
    alice = await server.user("alice")
    bob = await server.user("bob")
    for peer in (alice, bob):
        await peer.ok("join", room=room)
    return alice, bob


# -- message fields: action, reply_to, mentions -----------------------------------


async def test_plain_message_carries_no_protocol_2_fields(server):
    """A message without action, reply or mention has exactly the version 1 keys."""
    alice, bob = await pair(server)
    await alice.ok("say", room="tech", text="plain")
    event = await bob.event("message", text="plain")
    assert set(event) == MESSAGE_KEYS | {"event"}


async def test_action_and_reply_to_reach_events_and_history(server):
    """say with action and reply_to: the event and the history carry both."""
    alice, bob = await pair(server)
    first = await alice.ok("say", room="tech", text="question?")
    await bob.ok("say", room="tech", text="waves", action=True, reply_to=first["seq"])
    event = await alice.event("message", text="waves")
    assert (event["action"], event["reply_to"]) == (True, first["seq"])
    await alice.ok("say", room="tech", text="not an action", action=False)
    history = (await alice.ok("history", room="tech"))["messages"]
    assert history[-2]["action"] is True and history[-2]["reply_to"] == first["seq"]
    assert "action" not in history[-1] and "reply_to" not in history[-1]


async def test_reply_to_must_be_stored_and_not_erased(server):
    """reply_to a seq never sent, or an erased one, is no_such_message; a bool action is checked."""
    alice, _ = await pair(server)
    await alice.fails("no_such_message", "say", room="tech", text="x", reply_to=1)
    sent = await alice.ok("say", room="tech", text="gone soon")
    await alice.ok("erase", room="tech", seq=sent["seq"])
    await alice.fails("no_such_message", "say", room="tech", text="x", reply_to=sent["seq"])
    await alice.fails("bad_args", "say", room="tech", text="x", action="yes")
    await alice.fails("bad_args", "say", room="tech", text="x", reply_to="1")


async def test_dm_reply_to_names_a_message_of_the_same_pair(server):
    """A DM's reply_to is a seq of that pair's conversation, not of another."""
    alice, bob = await pair(server)
    await server.user("carol")
    await alice.ok("dm", to="carol", text="one")
    await alice.ok("dm", to="carol", text="two")
    await bob.ok("dm", to="alice", text="hi")
    await alice.fails("no_such_message", "dm", to="bob", text="re", reply_to=2)
    await alice.ok("dm", to="bob", text="re", reply_to=1, action=True)
    event = await bob.event("dm", text="re")
    assert (event["reply_to"], event["action"]) == (1, True)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("@bob hi", ["Bob"]),
        ("hi @BOB", ["Bob"]),
        ("a@bob", []),
        ("_@bob", []),
        ("-@bob", []),
        ("@bobby", []),
        ("@bob_", []),
        ("@bob-x", []),
        ("@bob.", ["Bob"]),
        ("(@bob)", ["Bob"]),
        ("é@bob", ["Bob"]),
        ("@bobé", ["Bob"]),
        ("@@bob", ["Bob"]),
        ("@nobody", []),
        ("@ bob", []),
        ("@carol, @bob and @Carol again @bob", ["carol", "Bob"]),
        ("mail bob@bob.org", []),
    ],
)
async def test_mentions_follow_the_rule_of_section_1(server, text, expected):
    """`mentions` lists registered users named @name by the rule, each once, in order."""
    alice = await server.user("alice")
    await server.user("Bob")
    await server.user("carol")
    await alice.ok("say", room="general", text=text)
    event = await alice.event("message", text=text)
    assert event.get("mentions", []) == expected
    assert ("mentions" in event) == bool(expected)


async def test_dm_mentions_are_worked_out_too(server):
    """A DM naming @users carries `mentions` as a room message does."""
    alice = await server.user("alice")
    await server.user("bob")
    await alice.ok("dm", to="bob", text="@bob look")
    assert (await alice.event("dm"))["mentions"] == ["bob"]


# -- addressing one message --------------------------------------------------------


@pytest.mark.parametrize("cmd", ["edit", "erase", "react", "read"])
async def test_message_address_needs_room_or_with_not_both(server, cmd):
    """Neither or both of room and with is bad_args, and so is a missing seq."""
    alice, _ = await pair(server)
    await alice.ok("say", room="tech", text="x")
    extra = {"edit": {"text": "y"}, "react": {"emoji": "👍"}}.get(cmd, {})
    await alice.fails("bad_args", cmd, seq=1, **extra)
    await alice.fails("bad_args", cmd, room="tech", seq=1, **{"with": "bob"}, **extra)
    await alice.fails("bad_args", cmd, room="tech", **extra)
    await alice.fails("bad_args", cmd, room="tech", seq="1", **extra)


@pytest.mark.parametrize("cmd", ["edit", "erase", "react"])
async def test_unstored_seq_is_no_such_message(server, cmd, engine):
    """A seq never sent, or trimmed by the json engine's cap, is
    no_such_message (sqlite keeps every message); an unknown room or user
    keeps its own code."""
    alice, _ = await pair(server)
    await alice.burst([{"cmd": "say", "room": "tech", "text": f"m{i}"} for i in range(501)])
    extra = {"edit": {"text": "y"}, "react": {"emoji": "👍"}}.get(cmd, {})
    await alice.fails("no_such_message", cmd, room="tech", seq=502, **extra)
    if engine == "json":
        await alice.fails("no_such_message", cmd, room="tech", seq=1, **extra)  # trimmed
    else:
        await alice.ok(cmd, room="tech", seq=1, **extra)  # on disk
    await alice.fails("no_such_message", cmd, room="tech", seq=0, **extra)
    await alice.ok(cmd, room="tech", seq=2, **extra)
    await alice.fails("no_such_message", cmd, seq=1, **{"with": "bob"}, **extra)
    await alice.fails("no_such_room", cmd, room="nowhere", seq=1, **extra)
    await alice.fails("no_such_user", cmd, seq=1, **{"with": "nobody"}, **extra)


# -- edit --------------------------------------------------------------------------


async def test_edit_tells_every_member_session_and_changes_history(server):
    """edit answers `edited`; every session of every member gets the whole message."""
    alice, bob = await pair(server)
    bob2 = await server.user("bob", register=False)
    outsider = await server.user("carol")
    sent = await alice.ok("say", room="tech", text="teh typo @bob")
    reply = await alice.ok("edit", room="tech", seq=sent["seq"], text="the fix @alice")
    for peer in (alice, bob, bob2):
        event = await peer.event("edited")
        message = event["message"]
        assert message["text"] == "the fix @alice"
        assert message["edited"] == reply["edited"]
        assert message["mentions"] == ["alice"]  # worked out again
        assert (message["room"], message["seq"], message["ts"]) == ("tech", 1, sent["ts"])
    stored = (await bob.ok("history", room="tech"))["messages"][-1]
    assert stored["text"] == "the fix @alice" and stored["edited"] == reply["edited"]
    await alice.ok("edit", room="tech", seq=1, text="no mention now")
    assert "mentions" not in (await bob.event("edited"))["message"]
    await outsider.no_event("edited")


async def test_edit_is_for_the_author_with_say_rules(server):
    """Another user's edit is not_allowed; the text follows say's rules."""
    alice, bob = await pair(server)
    await alice.ok("say", room="tech", text="mine")
    await bob.fails("not_allowed", "edit", room="tech", seq=1, text="theirs")
    await alice.fails("empty", "edit", room="tech", seq=1, text="  ")
    await alice.fails("too_long", "edit", room="tech", seq=1, text="x" * 4001)
    await alice.fails("bad_args", "edit", room="tech", seq=1, text="a\x00b")
    await alice.ok("erase", room="tech", seq=1)
    await alice.fails("no_such_message", "edit", room="tech", seq=1, text="back")


async def test_dm_edit_reaches_both_users_only(server):
    """An edited DM goes to every session of both users and nobody else."""
    alice, bob = await pair(server)
    carol = await server.user("carol")
    await carol.ok("join", room="tech")
    await alice.ok("dm", to="bob", text="hi bbo")
    await alice.ok("edit", seq=1, text="hi bob", **{"with": "Bob"})
    for peer in (alice, bob):
        message = (await peer.event("edited"))["message"]
        assert (message["to"], message["text"]) == ("bob", "hi bob")
        assert "room" not in message
    await bob.fails("not_allowed", "edit", seq=1, text="mine now", **{"with": "alice"})
    await carol.no_event("edited")


# -- erase -------------------------------------------------------------------------


async def test_erase_leaves_a_tombstone(server):
    """erase: text "", erased true, and action, reply_to, mentions, edited, reactions gone."""
    alice, bob = await pair(server)
    await alice.ok("say", room="tech", text="first")
    await alice.ok("say", room="tech", text="@bob waves", action=True, reply_to=1)
    await alice.ok("edit", room="tech", seq=2, text="@bob waves again")
    await bob.ok("react", room="tech", seq=2, emoji="👋")
    assert set(await alice.ok("erase", room="tech", seq=2)) == {"id", "ok"}
    for peer in (alice, bob):
        message = (await peer.event("erased"))["message"]
        assert message == {
            "room": "tech",
            "seq": 2,
            "from": "alice",
            "text": "",
            "ts": message["ts"],
            "erased": True,
        }
    assert (await bob.ok("history", room="tech"))["messages"][-1]["erased"] is True
    await alice.fails("no_such_message", "erase", room="tech", seq=2)
    await bob.fails("no_such_message", "react", room="tech", seq=2, emoji="👍")


async def test_room_owner_may_erase_others_messages_members_may_not(server):
    """The room's owner erases anyone's message there; another member is not_allowed."""
    owner = await server.user("owner")
    alice = await server.user("alice")
    bob = await server.user("bob")
    await owner.ok("create", room="club")
    for peer in (alice, bob):
        await peer.ok("join", room="club")
    await alice.ok("say", room="club", text="hm")
    await bob.fails("not_allowed", "erase", room="club", seq=1)
    await owner.ok("erase", room="club", seq=1)
    assert (await alice.event("erased"))["message"]["erased"] is True
    await alice.ok("say", room="general", text="default rooms have no owner")
    await bob.fails("not_allowed", "erase", room="general", seq=1)


async def test_dm_erase_is_for_its_author(server):
    """In a DM only the author erases; both users get `erased`."""
    alice = await server.user("alice")
    bob = await server.user("bob")
    await alice.ok("dm", to="bob", text="oops")
    await bob.fails("not_allowed", "erase", seq=1, **{"with": "alice"})
    await alice.ok("erase", seq=1, **{"with": "bob"})
    for peer in (alice, bob):
        assert (await peer.event("erased"))["message"]["to"] == "bob"
    page = await bob.ok("dms", **{"with": "alice"})
    assert page["messages"][0]["text"] == "" and page["messages"][0]["erased"] is True


# -- react ---------------------------------------------------------------------------


async def test_reactions_are_kept_in_order_and_told(server):
    """react on/off: `reaction` events, users in the order they reacted, a key per emoji."""
    alice, bob = await pair(server)
    await alice.ok("say", room="tech", text="ship it")
    await bob.ok("react", room="tech", seq=1, emoji="👍")
    await alice.ok("react", room="tech", seq=1, emoji="👍")
    await alice.ok("react", room="tech", seq=1, emoji="❤")
    event = await bob.event("reaction", emoji="❤")
    assert (event["user"], event["on"]) == ("alice", True)
    assert event["message"]["reactions"] == {"👍": ["bob", "alice"], "❤": ["alice"]}
    await bob.ok("react", room="tech", seq=1, emoji="👍", on=False)
    event = await alice.event("reaction", on=False)
    assert (event["user"], event["message"]["reactions"]) == (
        "bob",
        {"👍": ["alice"], "❤": ["alice"]},
    )
    await alice.ok("react", room="tech", seq=1, emoji="👍", on=False)
    await alice.ok("react", room="tech", seq=1, emoji="❤", on=False)
    last = await bob.event("reaction", emoji="❤", on=False)
    assert "reactions" not in last["message"]
    assert "reactions" not in (await bob.ok("history", room="tech"))["messages"][0]


async def test_reacting_without_change_is_ok_and_silent(server):
    """The same reaction again, or removing one not there, is ok with no event."""
    alice, bob = await pair(server)
    await alice.ok("say", room="tech", text="x")
    await bob.ok("react", room="tech", seq=1, emoji="🎉")
    await alice.event("reaction")
    await bob.ok("react", room="tech", seq=1, emoji="🎉")
    await bob.ok("react", room="tech", seq=1, emoji="🙃", on=False)
    await alice.no_event("reaction")


async def test_at_most_twenty_different_emoji_on_a_message(server):
    """A 21st different emoji is limit_reached; joining an existing one is still fine."""
    alice, bob = await pair(server)
    await alice.ok("say", room="tech", text="x")
    await alice.burst(
        [{"cmd": "react", "room": "tech", "seq": 1, "emoji": chr(0x1F600 + i)} for i in range(20)]
    )
    await alice.fails("limit_reached", "react", room="tech", seq=1, emoji="🚀")
    await bob.ok("react", room="tech", seq=1, emoji=chr(0x1F600))


@pytest.mark.parametrize(
    ("emoji", "code"),
    [
        ("", "bad_args"),
        ("a b", "bad_args"),
        ("👍\u00a0", "bad_args"),
        ("\u3000", "bad_args"),
        ("x\x07", "bad_args"),
        ("x\u0085", "bad_args"),
        ("x" * 17, "too_long"),
        (3, "bad_args"),
    ],
)
async def test_emoji_rules(server, emoji, code):
    """An emoji is 1-16 code points with no white space or control characters."""
    alice, _ = await pair(server)
    await alice.ok("say", room="tech", text="x")
    await alice.fails(code, "react", room="tech", seq=1, emoji=emoji)


async def test_emoji_of_sixteen_code_points_and_joiners_is_fine(server):
    """Sixteen code points, zero-width joiners included, make one emoji."""
    alice, _ = await pair(server)
    await alice.ok("say", room="tech", text="x")
    await alice.ok("react", room="tech", seq=1, emoji="👨\u200d👩\u200d👧" + "y" * 11)
    await alice.ok("react", room="tech", seq=1, emoji=":+1:")


async def test_react_needs_membership_in_the_room_and_a_party_in_dms(server):
    """A non-member's reaction is not_member; a DM partner may react, both get the event."""
    alice, bob = await pair(server)
    carol = await server.user("carol")
    await alice.ok("say", room="tech", text="x")
    await carol.fails("not_member", "react", room="tech", seq=1, emoji="👍")
    await alice.ok("dm", to="bob", text="hey")
    await bob.ok("react", seq=1, emoji="👋", **{"with": "alice"})
    for peer in (alice, bob):
        event = await peer.event("reaction")
        assert event["message"]["reactions"] == {"👋": ["bob"]}
    await carol.fails("no_such_message", "react", seq=1, emoji="👋", **{"with": "alice"})


# -- read markers and unread ----------------------------------------------------------


async def test_login_counts_unread_rooms_and_mentions(server):
    """unread.rooms counts others' stored, not erased messages after the marker;
    unread.mentions those that mention the user."""
    alice, bob = await pair(server)
    await bob.ok("quit")
    await alice.ok("say", room="tech", text="one")
    await alice.ok("say", room="tech", text="hey @bob")
    await alice.ok("say", room="tech", text="erased @bob")
    await alice.ok("erase", room="tech", seq=3)
    await alice.ok("say", room="general", text="@Bob in general")
    bob = await server.user("bob", register=False)
    await bob.ok("say", room="tech", text="my own")
    again = await server.peer()
    reply = await again.ok("login", username="bob", password=PASSWORD)
    assert reply["unread"] == {
        "dms": {},
        "rooms": {"tech": 2, "general": 1},
        "mentions": 2,
        "threads": 0,
    }
    rooms = {r["name"]: r["unread"] for r in (await again.ok("rooms"))["rooms"] if "unread" in r}
    assert rooms == {"general": 1, "tech": 2}


async def test_a_new_member_starts_with_everything_read(server):
    """Joining sets the marker at the room's newest seq: nothing unread."""
    alice = await server.user("alice")
    await alice.ok("join", room="tech")
    await alice.ok("say", room="tech", text="before bob")
    bob = await server.user("bob")
    reply = await bob.ok("join", room="tech")
    assert reply["room"]["unread"] == 0
    await alice.ok("say", room="tech", text="after bob")
    rooms = {r["name"]: r for r in (await bob.ok("rooms"))["rooms"]}
    assert rooms["tech"]["unread"] == 1
    assert rooms["general"]["unread"] == 0  # present for every member room, 0 included
    assert "unread" not in rooms["random"]


async def test_read_moves_the_marker_forward_only_and_tells_other_sessions(server):
    """read moves to max(marker, min(seq, newest)); `read` goes to the user's
    other sessions only, and only when the marker moved."""
    alice, bob = await pair(server)
    bob2 = await server.user("bob", register=False)
    await alice.burst([{"cmd": "say", "room": "tech", "text": f"m{i}"} for i in range(5)])
    assert (await bob.ok("read", room="tech", seq=3))["seq"] == 3
    assert await bob2.event("read") == {"event": "read", "room": "tech", "seq": 3}
    assert (await bob.ok("read", room="tech", seq=2))["seq"] == 3  # never back
    assert (await bob.ok("read", room="tech", seq=3))["seq"] == 3
    await bob2.no_event("read")
    assert (await bob.ok("read", room="#TECH", seq=99))["seq"] == 5  # at most the newest
    assert (await bob2.event("read"))["seq"] == 5
    await bob.no_event("read")
    rooms = {r["name"]: r for r in (await bob2.ok("rooms"))["rooms"]}
    assert rooms["tech"]["unread"] == 0
    await bob.fails("not_member", "read", room="random", seq=1)
    await bob.fails("no_such_room", "read", room="nowhere", seq=1)


async def test_read_with_a_dm_partner_and_dms_mark_the_conversation(server):
    """read with `with` marks DMs read up to seq; dms marks the whole conversation
    and tells the user's other sessions too."""
    alice = await server.user("alice")
    bob = await server.user("bob")
    bob2 = await server.user("bob", register=False)
    await alice.burst([{"cmd": "dm", "to": "bob", "text": f"d{i}"} for i in range(4)])
    assert (await bob.ok("read", seq=2, **{"with": "ALICE"}))["seq"] == 2
    assert await bob2.event("read") == {"event": "read", "with": "alice", "seq": 2}
    relog = await server.peer()
    assert (await relog.ok("login", username="bob", password=PASSWORD))["unread"]["dms"] == {
        "alice": 2
    }
    await bob.ok("dms", **{"with": "alice"})
    assert (await bob2.event("read", seq=4))["with"] == "alice"
    assert (await bob.ok("read", seq=1, **{"with": "alice"}))["seq"] == 4
    await bob.fails("no_such_user", "read", seq=1, **{"with": "nobody"})


# -- mentions -------------------------------------------------------------------------


async def test_mentions_lists_stored_mentions_in_member_rooms_newest_first(server):
    """mentions: not erased room messages naming the caller, in member rooms, newest first."""
    alice, bob = await pair(server)
    await alice.ok("say", room="tech", text="@bob one")
    await alice.ok("say", room="general", text="@bob two")
    await alice.ok("say", room="tech", text="@bob erased")
    await alice.ok("erase", room="tech", seq=2)
    await alice.ok("say", room="tech", text="no mention")
    await alice.ok("edit", room="tech", seq=3, text="now @bob three")
    await alice.ok("dm", to="bob", text="@bob a dm")
    reply = await bob.ok("mentions")
    assert [m["text"] for m in reply["messages"]] == ["now @bob three", "@bob two", "@bob one"]
    assert [m["text"] for m in (await bob.ok("mentions", limit=1))["messages"]] == [
        "now @bob three"
    ]
    await bob.ok("leave", room="tech")
    assert [m["text"] for m in (await bob.ok("mentions"))["messages"]] == ["@bob two"]
    await bob.fails("bad_args", "mentions", limit=0)
    await bob.fails("bad_args", "mentions", limit=101)


# -- away -----------------------------------------------------------------------------


async def test_away_shows_on_profile_and_presence(server):
    """away sets the Profile's text; `presence` with it reaches users sharing a
    room and the user's other sessions; empty text is back."""
    alice, bob = await pair(server)
    alice2 = await server.user("alice", register=False)
    loner = await server.user("loner")
    await loner.ok("leave", room="general")
    for peer in (alice, loner):
        await peer.ok("ping")  # every earlier event is in
        peer.events.clear()
    reply = await alice.ok("away", text="lunch")
    assert reply["user"]["away"] == "lunch"
    for peer in (bob, alice2):
        event = await peer.event("presence", user="alice")
        assert event == {"event": "presence", "user": "alice", "online": True, "away": "lunch"}
    await alice.no_event("presence")
    await loner.no_event("presence")
    assert (await bob.ok("whois", username="alice"))["user"]["away"] == "lunch"
    assert (await alice.ok("away"))["user"]["away"] is None
    assert (await bob.event("presence", user="alice"))["away"] is None
    await alice.fails("too_long", "away", text="x" * 201)
    await alice.fails("bad_args", "away", text="a\nb")


async def test_away_text_rides_on_login_and_logout_presence(server):
    """An away user's coming and going carry the away text."""
    alice, bob = await pair(server)
    await alice.ok("away", text="brb")
    await bob.event("presence")
    await alice.ok("quit")
    assert await bob.event("presence", online=False) == {
        "event": "presence",
        "user": "alice",
        "online": False,
        "away": "brb",
    }


# -- password ---------------------------------------------------------------------------


async def test_password_change_revokes_tokens_and_closes_other_sessions(server):
    """password: a new token; other sessions get auth_required and are closed;
    old tokens and the old password stop working."""
    peer = await server.peer()
    first = await peer.ok("register", username="alice", password=PASSWORD)
    other = await server.user("alice", register=False)
    reply = await peer.ok("password", old=PASSWORD, new="new password 1")
    assert isinstance(reply["token"], str)
    assert await other.closed()
    refusal = [f for f in other.events if "ok" in f][-1]
    assert refusal == {
        "ok": False,
        "error": {"code": "auth_required", "message": "password changed"},
    }
    await peer.ok("ping")  # the session that changed it stays
    fresh = await server.peer()
    await fresh.fails("auth_failed", "login", username="alice", token=first["token"])
    await fresh.fails("auth_failed", "login", username="alice", password=PASSWORD)
    await fresh.ok("login", username="alice", token=reply["token"])
    again = await server.peer()
    await again.ok("login", username="alice", password="new password 1")


async def test_wrong_old_password_fails_and_counts_as_failed_login(server):
    """A wrong `old` is auth_failed and spends the login budget; a weak new one is refused."""
    alice = await server.user("alice")
    await alice.fails("weak_password", "password", old=PASSWORD, new="short")
    await alice.fails("too_long", "password", old=PASSWORD, new="x" * 1025)
    for _ in range(5):
        await alice.fails("auth_failed", "password", old="wrong password", new="new password 1")
    error = await alice.fails("rate_limited", "password", old=PASSWORD, new="new password 1")
    assert error["retry_after"] > 0
    peer = await server.peer()
    await peer.fails("rate_limited", "login", username="alice", password=PASSWORD)


# -- flood control ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "frame",
    [
        {"cmd": "edit", "room": "general", "seq": 1, "text": "again"},
        {"cmd": "erase", "room": "general", "seq": 999},
        {"cmd": "react", "room": "general", "seq": 1, "emoji": "👍", "on": False},
        {"cmd": "away", "text": "same"},
    ],
)
async def test_edit_erase_react_away_count_against_flood_control(start_server, frame):
    """edit, erase, react and away spend the say budget: past the burst they are rate_limited."""
    running = await start_server(rate_limit=True, message_burst=3, message_rate=0.01)
    alice = await running.user("alice")
    await alice.ok("say", room="general", text="x")
    replies = await alice.pipeline([dict(frame) for _ in range(3)])
    assert [r["ok"] or r["error"]["code"] for r in replies][-1] == "rate_limited"
    assert all(r["ok"] or r["error"]["code"] != "rate_limited" for r in replies[:2])


# -- the list of conversations --------------------------------------------------------


async def test_conversations_lists_read_ones_too_newest_first(server):
    """After logging in again every conversation is listed, read or not,
    the most recently active first, with its newest seq and unread count."""
    bob = await server.user("bob")
    carol = await server.user("carol")
    dave = await server.user("dave")
    await bob.ok("dm", to="carol", text="hi carol")
    await carol.ok("dms", **{"with": "bob"})  # read
    await dave.ok("dm", to="bob", text="one")
    await dave.ok("dm", to="bob", text="two")
    await bob.ok("dm", to="bob", text="note to self")
    again = await server.user("bob", register=False)
    listed = (await again.ok("conversations"))["conversations"]
    assert [(c["with"], c["seq"], c["unread"]) for c in listed] == [
        ("bob", 1, 0),
        ("dave", 2, 2),
        ("carol", 1, 0),
    ]
    assert listed[0]["ts"] >= listed[1]["ts"] >= listed[2]["ts"]
    for_carol = (await carol.ok("conversations"))["conversations"]
    assert [(c["with"], c["unread"]) for c in for_carol] == [("bob", 0)]
    assert [c["with"] for c in (await again.ok("conversations", limit=1))["conversations"]] == [
        "bob"
    ]
    await again.fails("bad_args", "conversations", limit=0)
    loner = await server.user("loner")
    assert (await loner.ok("conversations"))["conversations"] == []
