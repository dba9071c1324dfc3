"""`members` over real sockets: every member of a room with presence and role,
readable as `history` is, answered fast for a big room."""

from __future__ import annotations

import statistics
import time

import pytest
from argon2 import PasswordHasher

from nexus.server.auth import FAST
from nexus.server.records import from_json
from tests.conftest import PASSWORD, data_file, open_engine


def by_name(reply: dict) -> dict[str, dict]:
    return {m["username"]: m for m in reply["members"]}


async def test_members_lists_everyone_with_presence_role_and_badges(server):
    """Owner, moderator and members, online or not, away text, admin and muted,
    bio; sorted ignoring case; a member who never spoke and is offline included."""
    root = await server.user("root")  # the first account: an admin
    olga = await server.user("olga")
    await olga.ok("create", room="den")
    mia, bob = await server.user("Mia"), await server.user("bob")
    zed = await server.user("Zed")
    for peer in (mia, bob, zed, root):
        await peer.ok("join", room="den")
    await olga.ok("op", room="den", username="mia")
    await olga.ok("mute", room="den", username="bob")
    await bob.ok("bio", text="likes tea")
    await zed.ok("away", text="lunch")
    await bob.ok("quit")
    reply = await olga.ok("members", room="den")
    assert [m["username"] for m in reply["members"]] == ["bob", "Mia", "olga", "root", "Zed"]
    members = by_name(reply)
    assert members["bob"] == {
        "username": "bob",
        "online": False,
        "away": None,
        "role": "member",
        "admin": False,
        "muted": True,
        "bio": "likes tea",
        "guest": False,
    }
    assert members["olga"]["role"] == "owner" and members["olga"]["online"] is True
    assert members["Mia"]["role"] == "moderator"
    assert members["root"]["admin"] is True and members["root"]["role"] == "member"
    assert members["Zed"]["away"] == "lunch" and members["Zed"]["online"] is True


async def test_members_follows_leaving_and_an_owner_who_left(server):
    """Who left is gone from the list; an owner who left is not listed."""
    olga = await server.user("olga")
    bob = await server.user("bob")
    await olga.ok("create", room="den")
    await bob.ok("join", room="den")
    await olga.ok("leave", room="den")
    assert [m["username"] for m in (await bob.ok("members", room="den"))["members"]] == ["bob"]


async def test_members_of_a_private_room_only_to_its_members_and_admins(server):
    """A private room's members: its members and admins may list them, anyone
    else is `not_member`, as for `history`."""
    root = await server.user("root")
    olga = await server.user("olga")
    outsider = await server.user("outsider")
    await olga.ok("create", room="vault", private=True)
    await outsider.fails("not_member", "members", room="vault")
    await outsider.fails("not_member", "history", room="vault")
    assert [m["username"] for m in (await root.ok("members", room="vault"))["members"]] == ["olga"]
    assert (await olga.ok("members", room="vault"))["members"][0]["role"] == "owner"


async def test_members_of_a_public_room_to_a_non_member_and_of_no_room(server):
    """A public room's members are readable by anyone, as its history is; an
    unknown room is `no_such_room`; a bad name `invalid_room`, none `bad_args`."""
    olga = await server.user("olga")
    outsider = await server.user("outsider")
    await olga.ok("create", room="den")
    await outsider.ok("history", room="den")
    assert [m["username"] for m in (await outsider.ok("members", room="den"))["members"]] == [
        "olga"
    ]
    await outsider.fails("no_such_room", "members", room="nowhere")
    await outsider.fails("invalid_room", "members", room="Not A Room!")
    await outsider.fails("bad_args", "members")


async def test_members_is_a_read_not_counted_against_flood_control(start_server):
    """With flood control on, 60 `members` in a row all answer ok."""
    running = await start_server(rate_limit=True)
    ana = await running.user("ana")
    replies = await ana.pipeline(
        [{"cmd": "members", "id": i, "room": "general"} for i in range(60)]
    )
    assert all(r["ok"] for r in replies), [r for r in replies if not r["ok"]][:1]


@pytest.mark.alone  # milliseconds of wall clock: a neighbour on the other core would count
async def test_a_thousand_member_room_is_answered_in_a_few_milliseconds(
    start_server, tmp_path, engine
):
    """#general with 1,000 members: all listed, sorted, and a round trip over
    loopback (the handler, encoding, both socket hops) takes a few ms."""
    path = data_file(tmp_path, engine)
    hashed = PasswordHasher(**FAST).hash(PASSWORD)
    store = await open_engine(engine, path)
    names = [f"user{i:04d}" for i in range(1000)]
    await store.turn()
    for name in names:
        store.apply(
            from_json({"op": "register", "username": name, "password": hashed, "ts": time.time()})
        )
    await store.close()
    running = await start_server(data=path)
    ana = await running.user("user0007", register=False)
    reply = await ana.ok("members", room="general")
    assert [m["username"] for m in reply["members"]] == names
    assert sum(m["online"] for m in reply["members"]) == 1
    took = []
    for _ in range(15):
        start = time.perf_counter()
        await ana.ok("members", room="general")
        took.append(time.perf_counter() - start)
    assert statistics.median(took) < 0.010, took
