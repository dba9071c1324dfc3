"""Every command over real sockets: its reply, field by field, and each error it can give."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import pytest

from nexus.server import commands
from tests.conftest import PASSWORD
from tests.wire import Peer

PROFILE_KEYS = {"username", "bio", "online", "rooms", "created", "last_seen", "away", "admin"}
ROOM_KEYS = {
    *("name", "topic", "owner", "default", "members", "online"),
    *("private", "moderators", "muted"),
}
MESSAGE_KEYS = {"room", "seq", "from", "text", "ts"}
DM_KEYS = {"seq", "from", "to", "text", "ts"}


async def say_many(peer: Peer, room: str, n: int, prefix: str = "m") -> None:
    await peer.burst(
        [{"cmd": "say", "room": room, "text": f"{prefix}{i}"} for i in range(1, n + 1)]
    )


async def dm_many(peer: Peer, to: str, n: int, prefix: str = "d") -> None:
    await peer.burst([{"cmd": "dm", "to": to, "text": f"{prefix}{i}"} for i in range(1, n + 1)])


def only(reply: dict[str, Any], *keys: str) -> None:
    """The reply carries exactly `id`, `ok` and `keys`."""
    assert set(reply) == {"id", "ok", *keys}, reply


# -- register and login ------------------------------------------------------


async def test_register_replies_profile_rooms_and_no_unread(server):
    """register answers a full online Profile, the rooms (general) and empty unread counts."""
    peer = await server.peer()
    before = time.time()
    reply = await peer.ok("register", username="Alice_1-x", password=PASSWORD)
    only(reply, "user", "rooms", "unread", "token")
    user = reply["user"]
    assert set(user) == PROFILE_KEYS
    assert user["username"] == "Alice_1-x"
    assert user["bio"] == ""
    assert user["online"] is True
    assert user["rooms"] == ["general"]
    assert before - 1 <= user["created"] <= time.time() + 1
    assert user["last_seen"] is None
    assert reply["rooms"] == ["general"]
    assert reply["unread"]["dms"] == {}


async def test_register_makes_member_of_general_only(server):
    """A new account can speak in general but not in the other default rooms."""
    alice = await server.user("alice")
    await alice.ok("say", room="general", text="hi")
    await alice.fails("not_member", "say", room="tech", text="hi")
    await alice.fails("not_member", "say", room="random", text="hi")


async def test_register_username_taken_ignoring_case(server):
    """A username that differs only in case from an existing one is username_taken."""
    await server.user("Alice")
    peer = await server.peer()
    await peer.fails("username_taken", "register", username="aLICE", password=PASSWORD)
    await peer.fails("username_taken", "register", username="Alice", password=PASSWORD)


@pytest.mark.parametrize(
    "name", ["ab", "a" * 25, "al ice", "al.ice", "alice!", "ålice", "", "al\nice", "#alice"]
)
async def test_register_refuses_malformed_username(server, name):
    """A username outside 3-24 of A-Z a-z 0-9 _ - is invalid_username."""
    peer = await server.peer()
    await peer.fails("invalid_username", "register", username=name, password=PASSWORD)


@pytest.mark.parametrize("name", ["abc", "a" * 24, "A-b_9", "---", "___", "123"])
async def test_register_accepts_username_at_limits(server, name):
    """Usernames of 3 and 24 allowed characters register, shown exactly as given."""
    peer = await server.peer()
    reply = await peer.ok("register", username=name, password=PASSWORD)
    assert reply["user"]["username"] == name


async def test_register_password_limits(server):
    """Passwords of 8 and 1024 characters register; 7 is weak_password, 1025 too_long."""
    peer = await server.peer()
    await peer.fails("weak_password", "register", username="short", password="1234567")
    await peer.fails("weak_password", "register", username="short", password="")
    await peer.fails("too_long", "register", username="long1", password="p" * 1025)
    await peer.ok("register", username="eight", password="12345678")
    other = await server.peer()
    await other.ok("register", username="long2", password="é" * 1024)
    again = await server.peer()
    await again.ok("login", username="long2", password="é" * 1024)


async def test_register_missing_or_mistyped_args_are_bad_args(server):
    """register without a username or password, or with non-strings, is bad_args."""
    peer = await server.peer()
    await peer.fails("bad_args", "register", username="alice")
    await peer.fails("bad_args", "register", password=PASSWORD)
    await peer.fails("bad_args", "register", username=5, password=PASSWORD)
    await peer.fails("bad_args", "register", username="alice", password=12345678)
    await peer.fails("bad_args", "register", username=None, password=PASSWORD)


async def test_register_and_login_when_logged_in_are_already_authenticated(server):
    """A logged-in session may not register or log in again."""
    alice = await server.user("alice")
    await alice.fails("already_authenticated", "register", username="other", password=PASSWORD)
    await alice.fails("already_authenticated", "login", username="alice", password=PASSWORD)


async def test_login_replies_profile_rooms_and_unread(server):
    """login answers the Profile as registered, sorted rooms and unread DM counts."""
    alice = await server.user("Alice")
    await alice.ok("join", room="tech")
    await alice.ok("create", room="Zoo")
    await alice.ok("create", room="abc")
    await alice.ok("quit")
    peer = await server.peer()
    reply = await peer.ok("login", username="alice", password=PASSWORD)
    only(reply, "user", "rooms", "unread", "token")
    assert reply["user"]["username"] == "Alice"
    assert reply["user"]["online"] is True
    assert reply["user"]["last_seen"] is None
    assert reply["user"]["rooms"] == ["abc", "general", "tech", "zoo"]
    assert reply["rooms"] == ["abc", "general", "tech", "zoo"]
    assert reply["unread"]["dms"] == {}


async def test_login_wrong_password_or_unknown_user_is_auth_failed(server):
    """A wrong password, an unknown user or a malformed name all give auth_failed."""
    await server.user("alice")
    peer = await server.peer()
    await peer.fails("auth_failed", "login", username="alice", password="wrong password")
    await peer.fails("auth_failed", "login", username="nobody", password=PASSWORD)
    await peer.fails("auth_failed", "login", username="no such!", password="x")
    await peer.fails("bad_args", "login", username="alice")
    await peer.fails("bad_args", "login", username="alice", password=None)
    await peer.fails("bad_args", "login", username=["alice"], password=PASSWORD)


async def test_login_attempts_are_rate_limited(start_server):
    """Password attempts beyond the per-minute budget are rate_limited with retry_after."""
    server = await start_server(login_attempts_per_minute=2)
    await server.user("alice")
    peer = await server.peer()
    await peer.fails("auth_failed", "login", username="alice", password="wrong password")
    await peer.fails("auth_failed", "login", username="alice", password="wrong password")
    error = await peer.fails("rate_limited", "login", username="alice", password=PASSWORD)
    assert error["retry_after"] > 0


async def test_registrations_are_limited_per_address_not_per_connection(start_server):
    """Each registration makes an account for good and may cost a hash: an
    address gets a budget of them, and a new connection does not renew it
    (20 accounts were registered from one address in 0.3 s before)."""
    server = await start_server(registrations_per_hour=2)
    await server.user("alice")
    peer = await server.peer()
    await peer.fails("username_taken", "register", username="alice", password=PASSWORD)
    error = await peer.fails("rate_limited", "register", username="bob", password=PASSWORD)
    assert error["retry_after"] > 0
    other = await server.peer()
    await other.fails("rate_limited", "register", username="bob", password=PASSWORD)
    await other.ok("login", username="alice", password=PASSWORD)  # logins are not registrations
    elsewhere = await Peer.connect(server.host, server.port, local_addr=("127.0.0.2", 0))
    await elsewhere.frame()  # hello
    await elsewhere.ok("register", username="bob", password=PASSWORD)  # another address
    await elsewhere.close()


async def test_a_name_is_looked_up_before_any_password(server):
    """available: what register would say of a name, without a password or a
    hash; before login only, counted per address."""
    await server.user("alice")
    peer = await server.peer()
    assert (await peer.ok("available", username="ALICE"))["available"] is False
    assert (await peer.ok("available", username="bob"))["available"] is True
    await peer.fails("invalid_username", "available", username="no spaces")
    await peer.fails("invalid_username", "available", username="NickServ")
    await peer.ok("register", username="bob", password=PASSWORD)
    await peer.fails("already_authenticated", "available", username="carol")


async def test_name_look_ups_are_counted_per_address(server):
    """A script listing accounts by name meets the look-up budget."""
    peers = [await server.peer() for _ in range(2)]
    replies = []
    for i in range(40):
        replies.append(await peers[i % 2].request("available", username=f"name{i:02d}"))
    codes = [r["ok"] or r["error"]["code"] for r in replies]
    assert codes[:30] == [True] * 30 and "rate_limited" in codes[30:]


async def test_rooms_a_user_owns_are_capped_and_admins_are_exempt(start_server):
    """One user created 60 rooms in 3 s before; now at most rooms_per_user at once."""
    server = await start_server(rooms_per_user=3)
    admin = await server.user("root")  # the store's first account
    user = await server.user("maker")
    for name in ("one", "two", "three"):
        await user.ok("create", room=name)
    error = await user.fails("limit_reached", "create", room="four")
    assert "3 rooms" in error["message"]
    await user.fails("limit_reached", "create", room="four", private=True)
    await user.ok("delete", room="two")
    await user.ok("create", room="four")
    for n in range(5):
        await admin.ok("create", room=f"admin{n}")


@pytest.mark.parametrize(
    ("cmd", "args"),
    [
        ("join", {"room": "tech"}),
        ("leave", {"room": "general"}),
        ("create", {"room": "new"}),
        ("delete", {"room": "new"}),
        ("topic", {"room": "tech", "topic": "x"}),
        ("rooms", {}),
        ("online", {}),
        ("say", {"room": "general", "text": "hi"}),
        ("dm", {"to": "alice", "text": "hi"}),
        ("dms", {"with": "alice"}),
        ("history", {"room": "general"}),
        ("whois", {"username": "alice"}),
        ("bio", {"text": "hi"}),
    ],
)
async def test_commands_before_login_are_auth_required(server, cmd, args):
    """Before authentication every command but register, login, ping and quit is auth_required."""
    peer = await server.peer()
    await peer.fails("auth_required", cmd, **args)
    await peer.fails("auth_required", cmd)  # even with arguments missing


# -- rooms ---------------------------------------------------------------------


async def test_join_replies_room_info_and_last_50_messages_oldest_first(server):
    """join answers the RoomInfo and the room's last 50 messages, oldest first."""
    alice = await server.user("alice")
    await alice.ok("join", room="tech")
    await say_many(alice, "tech", 60)
    bob = await server.user("bob")
    reply = await bob.ok("join", room="#TECH")
    only(reply, "room", "history")
    assert reply["room"] == {
        "name": "tech",
        "topic": "",
        "owner": None,
        "default": True,
        "members": 2,
        "online": 2,
        "private": False,
        "moderators": [],
        "muted": [],
        "unread": 0,
    }
    history = reply["history"]
    assert [m["seq"] for m in history] == list(range(11, 61))
    assert all(set(m) == MESSAGE_KEYS for m in history)
    assert history[0] == {
        "room": "tech",
        "seq": 11,
        "from": "alice",
        "text": "m11",
        "ts": history[0]["ts"],
    }
    assert isinstance(history[0]["ts"], float)


async def test_join_when_already_member_still_replies(server):
    """Joining a room one is in already answers its RoomInfo and history again."""
    alice = await server.user("alice")
    await alice.ok("say", room="general", text="hello")
    reply = await alice.ok("join", room="general")
    assert reply["room"]["members"] == 1
    assert [m["text"] for m in reply["history"]] == ["hello"]


async def test_join_counts_members_and_online_members(server):
    """RoomInfo counts every membership in `members`, only connected ones in `online`."""
    alice = await server.user("alice")
    bob = await server.user("bob")
    await bob.ok("quit")
    await server.user("carol")
    reply = await alice.ok("join", room="general")
    assert reply["room"]["members"] == 3
    assert reply["room"]["online"] == 2


async def test_join_errors(server):
    """join of a missing room is no_such_room, a malformed name invalid_room, no room bad_args."""
    alice = await server.user("alice")
    await alice.fails("no_such_room", "join", room="nowhere")
    await alice.fails("invalid_room", "join", room="bad room")
    await alice.fails("invalid_room", "join", room="")
    await alice.fails("invalid_room", "join", room="#")
    await alice.fails("invalid_room", "join", room="a" * 33)
    await alice.fails("bad_args", "join")
    await alice.fails("bad_args", "join", room=7)


async def test_leave_replies_ok_and_drops_membership(server):
    """leave answers a bare ok and the room is gone from the user's rooms; general too."""
    alice = await server.user("alice")
    await alice.ok("join", room="tech")
    reply = await alice.ok("leave", room="#Tech")
    only(reply)
    await alice.ok("leave", room="general")
    whois = await alice.ok("whois", username="alice")
    assert whois["user"]["rooms"] == []
    await alice.fails("not_member", "say", room="general", text="hi")


async def test_leave_errors(server):
    """leave of a room one is not in is not_member; missing room, bad name and no arg too."""
    alice = await server.user("alice")
    await alice.fails("not_member", "leave", room="tech")
    await alice.fails("no_such_room", "leave", room="nowhere")
    await alice.fails("invalid_room", "leave", room="no way")
    await alice.fails("bad_args", "leave")


async def test_create_replies_room_info_with_owner_and_member(server):
    """create answers the new RoomInfo: owner as registered, one member online, no topic."""
    alice = await server.user("Alice")
    reply = await alice.ok("create", room="#Games")
    only(reply, "room")
    assert reply["room"] == {
        "name": "games",
        "topic": "",
        "owner": "Alice",
        "default": False,
        "members": 1,
        "online": 1,
        "private": False,
        "moderators": [],
        "muted": [],
    }
    await alice.ok("say", room="games", text="first")  # the creator is a member
    whois = await alice.ok("whois", username="alice")
    assert "games" in whois["user"]["rooms"]


async def test_create_with_topic(server):
    """create with a topic stores it; 200 characters are allowed, 201 are too_long."""
    alice = await server.user("alice")
    reply = await alice.ok("create", room="music", topic="all things loud")
    assert reply["room"]["topic"] == "all things loud"
    reply = await alice.ok("create", room="long", topic="t" * 200)
    assert reply["room"]["topic"] == "t" * 200
    await alice.fails("too_long", "create", room="longer", topic="t" * 201)
    await alice.fails("bad_args", "create", room="typed", topic=5)


async def test_create_room_name_limits(server):
    """Room names of 1 and 32 of a-z 0-9 _ - are created; others are invalid_room."""
    alice = await server.user("alice")
    assert (await alice.ok("create", room="x"))["room"]["name"] == "x"
    assert (await alice.ok("create", room="a" * 32))["room"]["name"] == "a" * 32
    assert (await alice.ok("create", room="#A_b-9"))["room"]["name"] == "a_b-9"
    for bad in ["a" * 33, "", "#", "##x", "a b", "a.b", "ä", "room\n", "x#"]:
        await alice.fails("invalid_room", "create", room=bad)
    await alice.fails("bad_args", "create")


async def test_create_existing_room_is_room_exists(server):
    """Creating a room that exists (any case, with #, a default one) is room_exists."""
    alice = await server.user("alice")
    await alice.ok("create", room="games")
    await alice.fails("room_exists", "create", room="#GAMES")
    await alice.fails("room_exists", "create", room="general")
    await alice.fails("room_exists", "create", room="#Tech")


async def test_delete_removes_room_and_history(server):
    """delete answers ok; the room leaves `rooms`, its history and memberships go too."""
    alice = await server.user("alice")
    bob = await server.user("bob")
    await alice.ok("create", room="games")
    await bob.ok("join", room="games")
    await alice.ok("say", room="games", text="one")
    reply = await alice.ok("delete", room="#Games")
    only(reply)
    names = [r["name"] for r in (await alice.ok("rooms"))["rooms"]]
    assert "games" not in names
    await alice.fails("no_such_room", "history", room="games")
    await bob.fails("no_such_room", "say", room="games", text="hi")
    assert (await bob.ok("whois", username="bob"))["user"]["rooms"] == ["general"]
    again = await alice.ok("create", room="games")
    assert again["room"]["members"] == 1
    assert (await alice.ok("history", room="games"))["messages"] == []


async def test_delete_errors(server):
    """delete: non-owner not_owner, default room protected_room, missing room no_such_room."""
    alice = await server.user("alice")
    bob = await server.user("bob")
    await alice.ok("create", room="games")
    await bob.ok("join", room="games")
    await bob.fails("not_owner", "delete", room="games")
    for name in ("general", "random", "#Tech"):
        await alice.fails("protected_room", "delete", room=name)
    await alice.fails("no_such_room", "delete", room="nowhere")
    await alice.fails("invalid_room", "delete", room="no way")
    await alice.fails("bad_args", "delete")


async def test_owner_who_left_stays_owner(server):
    """An owner who leaves keeps ownership: RoomInfo still names them and they may delete."""
    alice = await server.user("alice")
    await alice.ok("create", room="games")
    await alice.ok("leave", room="games")
    rooms = {r["name"]: r for r in (await alice.ok("rooms"))["rooms"]}
    assert rooms["games"]["owner"] == "alice"
    assert rooms["games"]["members"] == 0
    reply = await alice.ok("topic", room="games", topic="still mine")
    assert reply["room"]["topic"] == "still mine"
    await alice.ok("delete", room="games")


async def test_topic_replies_room_info_with_new_topic(server):
    """topic by the owner answers the RoomInfo with the new topic; it may be emptied again."""
    alice = await server.user("alice")
    await alice.ok("create", room="games")
    reply = await alice.ok("topic", room="#games", topic="board games ✨")
    only(reply, "room")
    assert reply["room"]["topic"] == "board games ✨"
    assert reply["room"]["name"] == "games"
    assert reply["room"]["owner"] == "alice"
    reply = await alice.ok("topic", room="games", topic="")
    assert reply["room"]["topic"] == ""
    reply = await alice.ok("topic", room="games", topic="😀" * 200)
    assert reply["room"]["topic"] == "😀" * 200


async def test_topic_errors(server):
    """topic by a non-owner or on a default room is not_owner; bad topics are refused."""
    await server.user("first_admin")  # the first account is an admin: not alice
    alice = await server.user("alice")
    bob = await server.user("bob")
    await alice.ok("create", room="games")
    await bob.ok("join", room="games")
    await bob.fails("not_owner", "topic", room="games", topic="mine")
    await alice.fails("not_owner", "topic", room="general", topic="mine")
    await alice.fails("too_long", "topic", room="games", topic="t" * 201)
    await alice.fails("no_such_room", "topic", room="nowhere", topic="x")
    await alice.fails("invalid_room", "topic", room="no way", topic="x")
    await alice.fails("bad_args", "topic", room="games")
    await alice.fails("bad_args", "topic", room="games", topic=None)
    await alice.fails("bad_args", "topic", room="games", topic=["x"])


async def test_rooms_lists_room_infos_sorted_by_name(server):
    """rooms answers every RoomInfo, sorted by name, with member and online counts."""
    alice = await server.user("Alice")
    bob = await server.user("bob")
    for name in ("zeta", "Alpha", "m-1", "_x", "0day"):
        await alice.ok("create", room=name)
    await bob.ok("join", room="zeta")
    reply = await alice.ok("rooms")
    only(reply, "rooms")
    names = [r["name"] for r in reply["rooms"]]
    assert names == sorted(names, key=str.casefold)
    assert set(names) == {"general", "random", "tech", "zeta", "alpha", "m-1", "_x", "0day"}
    rooms = {r["name"]: r for r in reply["rooms"]}
    # `unread` comes with the rooms the caller is a member of, and only those.
    members = {r["name"]: set(r) == ROOM_KEYS | {"unread"} for r in reply["rooms"]}
    assert members == {name: name not in ("random", "tech") for name in names}
    assert rooms["general"] == {
        "name": "general",
        "topic": "",
        "owner": None,
        "default": True,
        "members": 2,
        "online": 2,
        "private": False,
        "moderators": [],
        "muted": [],
        "unread": 0,
    }
    assert rooms["zeta"]["owner"] == "Alice"
    assert rooms["zeta"]["default"] is False
    assert (rooms["zeta"]["members"], rooms["zeta"]["online"]) == (2, 2)
    await bob.ok("quit")
    rooms = {r["name"]: r for r in (await alice.ok("rooms"))["rooms"]}
    assert (rooms["zeta"]["members"], rooms["zeta"]["online"]) == (2, 1)
    assert (rooms["random"]["members"], rooms["random"]["online"]) == (0, 0)


async def test_online_lists_connected_profiles_sorted_ignoring_case(server):
    """online answers the Profiles of connected users only, sorted by name ignoring case."""
    carol = await server.user("carol")
    await server.user("Bob")
    await server.user("alice")
    gone = await server.user("Dave")
    await gone.ok("quit")
    await server.user("bob2", register=True)
    second = await server.user("carol", register=False)  # a second session: listed once
    reply = await carol.ok("online")
    only(reply, "users")
    assert [u["username"] for u in reply["users"]] == ["alice", "Bob", "bob2", "carol"]
    for user in reply["users"]:
        assert set(user) == PROFILE_KEYS
        assert user["online"] is True and user["last_seen"] is None
    await second.ok("quit")
    assert len((await carol.ok("online"))["users"]) == 4


async def test_history_for_any_room_pages_backwards(server):
    """history works without membership; limit, before and more page back to seq 1."""
    alice = await server.user("alice")
    await say_many(alice, "general", 120)
    bob = await server.user("bob")
    await bob.ok("leave", room="general")
    reply = await bob.ok("history", room="#General")
    only(reply, "messages", "more", "more_after")
    assert [m["seq"] for m in reply["messages"]] == list(range(71, 121))
    assert reply["more"] is True and reply["more_after"] is False
    assert all(set(m) == MESSAGE_KEYS for m in reply["messages"])
    page = await bob.ok("history", room="general", limit=30, before=71)
    assert [m["seq"] for m in page["messages"]] == list(range(41, 71))
    assert page["more"] is True and page["more_after"] is True
    page = await bob.ok("history", room="general", limit=40, before=41)
    assert [m["seq"] for m in page["messages"]] == list(range(1, 41))
    assert page["more"] is False
    page = await bob.ok("history", room="general", limit=500)
    assert [m["seq"] for m in page["messages"]] == list(range(1, 121))
    assert page["more"] is False
    page = await bob.ok("history", room="general", limit=1, before=1000)
    assert [m["text"] for m in page["messages"]] == ["m120"]
    assert page["more"] is True


async def test_history_edges(server):
    """Empty rooms give an empty page; before <= 1 is an empty page without more."""
    alice = await server.user("alice")
    page = await alice.ok("history", room="tech")
    assert page["messages"] == [] and page["more"] is False
    await say_many(alice, "general", 3)
    for before in (1, 0, -5):
        page = await alice.ok("history", room="general", before=before)
        assert page["messages"] == [] and page["more"] is False
    page = await alice.ok("history", room="general", before=2)
    assert [m["seq"] for m in page["messages"]] == [1]
    assert page["more"] is False
    page = await alice.ok("history", room="general", limit=None, before=None)
    assert [m["seq"] for m in page["messages"]] == [1, 2, 3]


async def test_history_errors(server):
    """history of a missing room, a malformed name, or a bad limit/before is refused."""
    alice = await server.user("alice")
    await alice.fails("no_such_room", "history", room="nowhere")
    await alice.fails("invalid_room", "history", room="no way")
    await alice.fails("bad_args", "history")
    for limit in (0, 501, -1, "5", 1.5, True):
        await alice.fails("bad_args", "history", room="general", limit=limit)
    for before in ("5", 1.5, False, [1]):
        await alice.fails("bad_args", "history", room="general", before=before)
    assert (await alice.ok("history", room="general", limit=1))["messages"] == []
    assert (await alice.ok("history", room="general", limit=500))["messages"] == []


# -- messages ------------------------------------------------------------------


async def test_say_replies_seq_and_ts(server):
    """say answers the message's seq (counting from 1 per room) and its server time."""
    alice = await server.user("alice")
    await alice.ok("join", room="tech")
    before = time.time()
    first = await alice.ok("say", room="general", text="one")
    only(first, "seq", "ts")
    assert first["seq"] == 1
    assert isinstance(first["ts"], float)
    assert before - 1 <= first["ts"] <= time.time() + 1
    assert (await alice.ok("say", room="#GENERAL", text="two"))["seq"] == 2
    assert (await alice.ok("say", room="tech", text="three"))["seq"] == 1
    event = await alice.event("message", text="one")
    assert event["ts"] == first["ts"] and event["seq"] == 1


async def test_say_text_rules(server):
    """Text is 1-4000 code points, not only white space; tabs and newlines allowed."""
    alice = await server.user("alice")
    await alice.ok("say", room="general", text="x" * 4000)
    await alice.ok("say", room="general", text="😀" * 4000)
    await alice.ok("say", room="general", text="line one\n\tline two")
    await alice.ok("say", room="general", text="\u200b")  # zero width space is not white space
    await alice.fails("too_long", "say", room="general", text="x" * 4001)
    await alice.fails("too_long", "say", room="general", text="😀" * 4001)
    for blank in ("", " ", "\n\t \r\n", "\u3000\u00a0\u2028\u2003"):
        await alice.fails("empty", "say", room="general", text=blank)
    for control in ("a\x00b", "a\x07", "a\x1b[31m", "a\rb", "a\x7f", "a\x80", "a\x9f"):
        await alice.fails("bad_args", "say", room="general", text=control)
    await alice.fails("bad_args", "say", room="general", text=5)
    await alice.fails("bad_args", "say", room="general")
    page = await alice.ok("history", room="general")
    assert page["messages"][2]["text"] == "line one\n\tline two"


async def test_say_errors(server):
    """say outside one's rooms is not_member, in a missing room no_such_room."""
    alice = await server.user("alice")
    await alice.fails("not_member", "say", room="tech", text="hi")
    await alice.fails("no_such_room", "say", room="nowhere", text="hi")
    await alice.fails("invalid_room", "say", room="no way", text="hi")
    await alice.fails("bad_args", "say", text="hi")


async def test_say_is_rate_limited_when_flood_control_is_on(start_server):
    """Beyond the burst, say and dm are rate_limited with a retry_after in seconds."""
    server = await start_server(rate_limit=True, message_burst=3, message_rate=0.5)
    alice = await server.user("alice")
    for i in range(3):
        await alice.ok("say", room="general", text=f"{i}")
    error = await alice.fails("rate_limited", "say", room="general", text="more")
    assert 0 < error["retry_after"] <= 2
    error = await alice.fails("rate_limited", "dm", to="alice", text="more")
    assert error["retry_after"] > 0


async def test_dm_replies_seq_and_ts_per_pair(server):
    """dm answers seq (counting per pair of users) and ts; the name is matched ignoring case."""
    alice = await server.user("alice")
    bob = await server.user("Bob")
    await server.user("carol")
    first = await alice.ok("dm", to="BOB", text="hi bob")
    only(first, "seq", "ts")
    assert first["seq"] == 1 and isinstance(first["ts"], float)
    assert (await bob.ok("dm", to="alice", text="hi alice"))["seq"] == 2
    assert (await alice.ok("dm", to="carol", text="hi carol"))["seq"] == 1
    event = await bob.event("dm", seq=1)
    assert event == {
        "event": "dm",
        "seq": 1,
        "from": "alice",
        "to": "Bob",
        "text": "hi bob",
        "ts": first["ts"],
    }


async def test_dm_to_self_is_allowed(server):
    """A DM to oneself is stored once and never counts as unread."""
    alice = await server.user("alice")
    reply = await alice.ok("dm", to="alice", text="note to self")
    assert reply["seq"] == 1
    page = await alice.ok("dms", **{"with": "ALICE"})
    assert [(m["from"], m["to"], m["text"]) for m in page["messages"]] == [
        ("alice", "alice", "note to self")
    ]
    await alice.ok("quit")
    again = await server.peer()
    assert (await again.ok("login", username="alice", password=PASSWORD))["unread"]["dms"] == {}


async def test_dm_errors(server):
    """dm to an unknown user is no_such_user; text rules are those of say."""
    alice = await server.user("alice")
    await alice.fails("no_such_user", "dm", to="nobody", text="hi")
    await alice.fails("no_such_user", "dm", to="", text="hi")
    await alice.fails("empty", "dm", to="alice", text="  ")
    await alice.fails("too_long", "dm", to="alice", text="x" * 4001)
    await alice.fails("bad_args", "dm", to="alice", text="\x1b")
    await alice.fails("bad_args", "dm", to="alice")
    await alice.fails("bad_args", "dm", text="hi")
    await alice.fails("bad_args", "dm", to=1, text="hi")


async def test_dms_to_offline_user_are_kept_and_counted_unread(server):
    """DMs to an offline user wait for them; login counts the other user's unread messages."""
    bob = await server.user("Bob")
    await bob.ok("quit")
    alice = await server.user("Alice")
    carol = await server.user("carol")
    await dm_many(alice, "bob", 3)
    await carol.ok("dm", to="bob", text="from carol")
    peer = await server.peer()
    reply = await peer.ok("login", username="bob", password=PASSWORD)
    assert reply["unread"]["dms"] == {"Alice": 3, "carol": 1}
    page = await peer.ok("dms", **{"with": "alice"})
    assert [m["text"] for m in page["messages"]] == ["d1", "d2", "d3"]
    assert all(set(m) == DM_KEYS for m in page["messages"])
    assert page["messages"][0]["to"] == "Bob"


async def test_unread_counts_only_the_other_users_messages(server):
    """Sending a DM does not mark the conversation read, and one's own DMs are never unread."""
    alice = await server.user("alice")
    bob = await server.user("bob")
    await dm_many(bob, "alice", 2)
    await alice.ok("dm", to="bob", text="reply without reading")
    await alice.ok("quit")
    await bob.ok("quit")
    relog = await server.peer()
    assert (await relog.ok("login", username="alice", password=PASSWORD))["unread"]["dms"] == {
        "bob": 2
    }
    relog_bob = await server.peer()
    assert (await relog_bob.ok("login", username="bob", password=PASSWORD))["unread"]["dms"] == {
        "alice": 1
    }


async def test_dms_pages_and_marks_whole_conversation_read(server):
    """dms pages with limit/before/more, oldest first; any page marks everything read."""
    alice = await server.user("alice")
    bob = await server.user("bob")
    await dm_many(bob, "alice", 80)
    reply = await alice.ok("dms", **{"with": "bob", "limit": 10})
    only(reply, "messages", "more", "more_after")
    assert [m["seq"] for m in reply["messages"]] == list(range(71, 81))
    assert reply["more"] is True
    page = await alice.ok("dms", **{"with": "bob", "limit": 20, "before": 21})
    assert [m["seq"] for m in page["messages"]] == list(range(1, 21))
    assert page["more"] is False
    page = await alice.ok("dms", **{"with": "bob"})
    assert [m["seq"] for m in page["messages"]] == list(range(31, 81))
    assert page["more"] is True
    page = await alice.ok("dms", **{"with": "bob", "before": 1})
    assert page == {
        "id": page["id"],
        "ok": True,
        "messages": [],
        "more": False,
        "more_after": True,
    }
    await bob.ok("dm", to="alice", text="one more")
    relog = await server.peer()
    unread = (await relog.ok("login", username="alice", password=PASSWORD))["unread"]
    assert unread["dms"] == {"bob": 1}
    await relog.ok("dms", **{"with": "bob", "limit": 1, "before": 2})  # an old page reads all
    await relog.ok("quit")
    again = await server.peer()
    assert (await again.ok("login", username="alice", password=PASSWORD))["unread"]["dms"] == {}


async def test_dms_without_conversation_and_errors(server):
    """dms with a user never written to is an empty page; unknown users and bad args refused."""
    alice = await server.user("alice")
    await server.user("bob")
    assert (await alice.ok("dms", **{"with": "bob"}))["messages"] == []
    await alice.fails("no_such_user", "dms", **{"with": "nobody"})
    await alice.fails("bad_args", "dms")
    await alice.fails("bad_args", "dms", **{"with": "bob", "limit": 0})
    await alice.fails("bad_args", "dms", **{"with": "bob", "limit": 501})
    await alice.fails("bad_args", "dms", **{"with": "bob", "before": "3"})
    await alice.fails("bad_args", "dms", with_="bob")


# -- profiles and the rest ---------------------------------------------------


async def test_whois_replies_profile(server):
    """whois answers the Profile as registered; last_seen is set once the user is offline."""
    alice = await server.user("alice")
    bob = await server.user("Bob")
    await bob.ok("bio", text="hi there")
    await bob.ok("join", room="tech")
    reply = await alice.ok("whois", username="bob")
    only(reply, "user")
    user = reply["user"]
    assert user["username"] == "Bob" and user["bio"] == "hi there"
    assert user["online"] is True and user["last_seen"] is None
    assert user["rooms"] == ["general", "tech"]
    await bob.ok("quit")
    await alice.event("presence", user="Bob", online=False)
    user = (await alice.ok("whois", username="BOB"))["user"]
    assert user["online"] is False
    assert isinstance(user["last_seen"], float)
    assert user["created"] <= user["last_seen"] <= time.time() + 1


async def test_whois_errors(server):
    """whois of an unknown user is no_such_user; without a name bad_args."""
    alice = await server.user("alice")
    await alice.fails("no_such_user", "whois", username="nobody")
    await alice.fails("bad_args", "whois")
    await alice.fails("bad_args", "whois", username=3)


async def test_bio_replies_profile_and_is_shown_by_whois(server):
    """bio answers the updated Profile; 0-200 code points allowed."""
    alice = await server.user("alice")
    reply = await alice.ok("bio", text="I like 🐍")
    only(reply, "user")
    assert reply["user"]["bio"] == "I like 🐍"
    assert reply["user"]["username"] == "alice"
    assert (await alice.ok("whois", username="alice"))["user"]["bio"] == "I like 🐍"
    assert (await alice.ok("bio", text="é" * 200))["user"]["bio"] == "é" * 200
    assert (await alice.ok("bio", text=""))["user"]["bio"] == ""


async def test_bio_errors(server):
    """A bio over 200 code points is too_long; a missing or non-string one bad_args."""
    alice = await server.user("alice")
    await alice.fails("too_long", "bio", text="😀" * 201)
    await alice.fails("bad_args", "bio")
    await alice.fails("bad_args", "bio", text=7)
    await alice.fails("bad_args", "bio", text="a\x00b")


async def test_ping_replies_server_time_before_and_after_login(server):
    """ping answers ts, the server's time as a float, logged in or not."""
    peer = await server.peer()
    before = time.time()
    reply = await peer.ok("ping")
    only(reply, "ts")
    assert isinstance(reply["ts"], float)
    assert before - 1 <= reply["ts"] <= time.time() + 1
    alice = await server.user("alice")
    assert isinstance((await alice.ok("ping"))["ts"], float)


async def test_quit_replies_ok_then_closes(server):
    """quit is answered ok, then the connection closes, before or after login."""
    anonymous = await server.peer()
    only(await anonymous.ok("quit"))
    assert await anonymous.closed()
    alice = await server.user("alice")
    only(await alice.ok("quit"))
    assert await alice.closed()


async def test_quit_stops_later_requests_in_the_same_write(server):
    """A request sent after quit in the same write is not executed."""
    alice = await server.user("alice")
    await alice.send_raw(
        b'{"id":1,"cmd":"quit"}\n{"id":2,"cmd":"say","room":"general","text":"late"}\n'
    )
    assert (await alice.reply())["id"] == 1
    assert await alice.closed()
    assert not [f for f in alice.events if "ok" in f]
    bob = await server.user("bob")
    assert (await bob.ok("history", room="general"))["messages"] == []


async def test_unexpected_failure_is_internal_and_connection_survives(server, monkeypatch):
    """A handler that crashes gives `internal`; the connection goes on working."""

    def broken(ctx, req):
        raise RuntimeError("boom")

    original = commands.COMMANDS["whois"]
    monkeypatch.setitem(commands.COMMANDS, "whois", replace(original, handler=broken))
    alice = await server.user("alice")
    error = await alice.fails("internal", "whois", username="alice")
    assert "boom" not in error["message"]
    await alice.ok("ping")


async def test_concurrent_registrations_of_one_name_admit_exactly_one(server):
    """Two peers registering the same name at once: one succeeds, the other is username_taken."""
    peers = [await server.peer() for _ in range(4)]
    names = ["race", "RACE", "Race", "rAcE"]
    for peer, name in zip(peers, names, strict=True):
        await peer.send({"id": 1, "cmd": "register", "username": name, "password": PASSWORD})
    replies = [await peer.reply() for peer in peers]
    assert sum(r["ok"] for r in replies) == 1, replies
    assert sorted(r["error"]["code"] for r in replies if not r["ok"]) == ["username_taken"] * 3


async def test_room_online_counts_users_not_sessions(server):
    """A user with several sessions counts once among a room's online members."""
    alice = await server.user("alice")
    await server.user("alice", register=False)
    await server.user("alice", register=False)
    rooms = {r["name"]: r for r in (await alice.ok("rooms"))["rooms"]}
    assert (rooms["general"]["members"], rooms["general"]["online"]) == (1, 1)


async def test_errors_leave_nothing_behind(server):
    """A refused request changes nothing: no message, no room, no membership."""
    alice = await server.user("alice")
    await alice.fails("too_long", "say", room="general", text="x" * 4001)
    await alice.fails("invalid_room", "create", room="no way")
    await alice.fails("not_member", "say", room="tech", text="x")
    assert (await alice.ok("history", room="general"))["messages"] == []
    assert len((await alice.ok("rooms"))["rooms"]) == 3
    assert (await alice.ok("whois", username="alice"))["user"]["rooms"] == ["general"]
