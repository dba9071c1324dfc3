"""Who receives each event, and who does not, over real sockets."""

from __future__ import annotations

import asyncio

import orjson

from tests.wire import Peer


async def quiet(peer: Peer, name: str) -> None:
    """Asserts `peer` got no `name` event so far.

    Handlers queue their events before replying, and a session's frames go out
    in order, so once the actor has its reply, a ping round trip on `peer`
    flushes anything addressed to it: no sleeping needed.
    """
    await peer.ok("ping")
    assert not [e for e in peer.events if e.get("event") == name], peer.events


async def test_joined_reaches_members_and_all_of_the_joiners_sessions(server):
    """joined goes to the room's members and every session of the joiner, not to others."""
    alice = await server.user("alice")
    bob = await server.user("bob")
    bob2 = await server.user("bob", register=False)
    carol = await server.user("carol")
    await alice.ok("join", room="tech")
    await carol.ok("leave", room="general")
    await bob.ok("join", room="#tech")
    expected = {"event": "joined", "room": "tech", "user": "bob"}
    for peer in (alice, bob, bob2):
        assert await peer.event("joined", user="bob") == expected
    await quiet(carol, "joined")


async def test_joined_not_sent_when_already_member(server):
    """Joining a room one is already in sends no joined event."""
    alice = await server.user("alice")
    bob = await server.user("bob")
    await bob.ok("join", room="general")
    await quiet(alice, "joined")
    await quiet(bob, "joined")


async def test_left_reaches_remaining_members_and_leavers_other_sessions(server):
    """left goes to remaining members and the leaver's other sessions, not the acting one."""
    alice = await server.user("alice")
    alice2 = await server.user("alice", register=False)
    bob = await server.user("bob")
    carol = await server.user("carol")
    for peer in (alice, bob):
        await peer.ok("join", room="tech")
    await alice.ok("leave", room="tech")
    expected = {"event": "left", "room": "tech", "user": "alice"}
    assert await bob.event("left") == expected
    assert await alice2.event("left") == expected
    await quiet(alice, "left")
    await quiet(carol, "left")


async def test_room_created_reaches_everyone_online(server):
    """room_created goes to every online session, the creator's included, not to anonymous peers."""
    alice = await server.user("Alice")
    alice2 = await server.user("alice", register=False)
    bob = await server.user("bob")
    await bob.ok("leave", room="general")  # shares no room with alice
    anonymous = await server.peer()
    reply = await alice.ok("create", room="games", topic="fun")
    for peer in (alice, alice2, bob):
        event = await peer.event("room_created")
        assert event == {"event": "room_created", "room": reply["room"]}
    assert reply["room"]["owner"] == "Alice"
    await quiet(anonymous, "room_created")


async def test_room_deleted_reaches_everyone_online(server):
    """room_deleted, with the room's name and who deleted it, goes to every online session."""
    alice = await server.user("Alice")
    bob = await server.user("bob")
    anonymous = await server.peer()
    await alice.ok("create", room="games")
    await alice.ok("delete", room="games")
    expected = {"event": "room_deleted", "room": "games", "by": "Alice"}
    assert await alice.event("room_deleted") == expected
    assert await bob.event("room_deleted") == expected
    await quiet(anonymous, "room_deleted")


async def test_topic_reaches_members_only(server):
    """topic goes to every session of the room's members, not to non-members."""
    alice = await server.user("Alice")
    bob = await server.user("bob")
    bob2 = await server.user("bob", register=False)
    carol = await server.user("carol")
    await alice.ok("create", room="games")
    await bob.ok("join", room="games")
    await alice.ok("topic", room="games", topic="new topic")
    expected = {"event": "topic", "room": "games", "topic": "new topic", "by": "Alice"}
    for peer in (alice, bob, bob2):
        assert await peer.event("topic") == expected
    await quiet(carol, "topic")


async def test_presence_online_reaches_users_sharing_a_room(server):
    """presence online goes to other users who share a room, not to strangers or the user."""
    alice = await server.user("alice")
    stranger = await server.user("stranger")
    await stranger.ok("leave", room="general")
    bob = await server.user("Bob")
    assert await alice.event("presence", user="Bob") == {
        "event": "presence",
        "user": "Bob",
        "online": True,
        "away": None,
    }
    await quiet(stranger, "presence")
    await quiet(bob, "presence")


async def test_presence_only_on_first_session_and_last_session(server):
    """A second session sends no presence; closing one of two neither; the last one does."""
    alice = await server.user("alice")
    bob = await server.user("bob")
    await alice.event("presence", user="bob", online=True)
    bob2 = await server.user("bob", register=False)
    await quiet(alice, "presence")
    await bob2.ok("quit")
    assert await bob2.closed()
    carol = await server.user("carol")  # her presence arrives after any from bob2's quit
    await alice.event("presence", user="carol", online=True)
    assert not [e for e in alice.events if e.get("event") == "presence"], alice.events
    await bob.ok("quit")
    assert await alice.event("presence", user="bob") == {
        "event": "presence",
        "user": "bob",
        "online": False,
        "away": None,
    }
    await carol.event("presence", user="bob", online=False)


async def test_presence_offline_when_socket_closes_without_quit(server):
    """A dropped connection counts as quit: the others see the user go offline."""
    alice = await server.user("alice")
    bob = await server.user("bob")
    await bob.close()
    assert (await alice.event("presence", user="bob", online=False))["online"] is False


async def test_presence_goes_to_every_session_of_a_user_sharing_a_room(server):
    """Every session of a user sharing a room sees another user come online."""
    alice = await server.user("alice")
    alice2 = await server.user("alice", register=False)
    await alice.ok("join", room="tech")
    await alice.ok("leave", room="general")
    stranger = await server.user("bob")  # bob is in general only: shares nothing
    await quiet(alice, "presence")
    await quiet(alice2, "presence")
    await stranger.ok("join", room="tech")
    await stranger.ok("quit")
    await alice.event("presence", user="bob", online=False)
    await alice2.event("presence", user="bob", online=False)


async def test_message_reaches_every_session_of_every_member(server):
    """message goes to every session of every member, the sender's included, not to others."""
    alice = await server.user("alice")
    alice2 = await server.user("alice", register=False)
    bob = await server.user("bob")
    carol = await server.user("carol")
    await carol.ok("leave", room="general")
    reply = await alice.ok("say", room="general", text="hello all")
    expected = {
        "event": "message",
        "room": "general",
        "seq": 1,
        "from": "alice",
        "text": "hello all",
        "ts": reply["ts"],
    }
    for peer in (alice, alice2, bob):
        assert await peer.event("message") == expected
    await quiet(carol, "message")


async def test_dm_reaches_every_session_of_both_users_only(server):
    """dm goes to every session of sender and recipient, never to a third user."""
    alice = await server.user("alice")
    alice2 = await server.user("alice", register=False)
    bob = await server.user("Bob")
    bob2 = await server.user("bob", register=False)
    carol = await server.user("carol")
    reply = await alice.ok("dm", to="bob", text="psst")
    expected = {
        "event": "dm",
        "seq": 1,
        "from": "alice",
        "to": "Bob",
        "text": "psst",
        "ts": reply["ts"],
    }
    for peer in (alice, alice2, bob, bob2):
        assert await peer.event("dm") == expected
    await quiet(carol, "dm")


async def test_dm_to_self_arrives_once_per_session(server):
    """A DM to oneself reaches each of one's sessions exactly once."""
    alice = await server.user("alice")
    alice2 = await server.user("alice", register=False)
    await alice.ok("dm", to="alice", text="memo")
    for peer in (alice, alice2):
        await peer.event("dm", text="memo")
        await quiet(peer, "dm")


async def test_no_events_for_anonymous_peers(server):
    """A peer that has not logged in receives no events at all."""
    anonymous = await server.peer()
    alice = await server.user("alice")
    await alice.ok("create", room="games")
    await alice.ok("say", room="general", text="hi")
    await alice.ok("quit")
    await anonymous.ok("ping")
    assert anonymous.events == []


async def test_messages_arrive_in_seq_order_with_concurrent_senders(server):
    """With several senders writing at once, every member sees 1, 2, 3... in order."""
    senders = [await server.user(f"sender{i}") for i in range(4)]
    watchers = [await server.user(f"watcher{i}") for i in range(2)]
    per_sender = 40

    async def send(peer: Peer) -> None:
        frames = [
            {"cmd": "say", "room": "general", "text": f"{peer.name} {n}"} for n in range(per_sender)
        ]
        await peer.send_raw(b"".join(orjson.dumps(f) + b"\n" for f in frames))
        for _ in frames:
            assert (await peer.reply())["ok"]

    await asyncio.gather(*(send(peer) for peer in senders))
    total = per_sender * len(senders)
    for peer in [*watchers, *senders]:
        seqs = []
        while len(seqs) < total:
            seqs.append((await peer.event("message"))["seq"])
        assert seqs == list(range(1, total + 1))
    # each sender's own messages keep their order too
    history = await watchers[0].ok("history", room="general", limit=500)
    for peer in senders:
        mine = [m["text"] for m in history["messages"] if m["from"] == peer.name]
        assert mine == [f"{peer.name} {n}" for n in range(per_sender)]


async def test_events_and_replies_both_reach_a_pipelining_client(server):
    """Replies come in request order while events interleave freely."""
    alice = await server.user("alice")
    bob = await server.user("bob")
    frames = [{"id": f"r{i}", "cmd": "say", "room": "general", "text": str(i)} for i in range(20)]
    await alice.send_raw(b"".join(orjson.dumps(f) + b"\n" for f in frames))
    ids = [(await alice.reply())["id"] for _ in frames]
    assert ids == [f"r{i}" for i in range(20)]
    texts = [(await bob.event("message"))["text"] for _ in frames]
    assert texts == [str(i) for i in range(20)]


async def test_room_messages_and_dms_arrive_in_the_order_they_were_made(server):
    """Batching shares a room's frames but never reorders what one session receives."""
    alice = await server.user("alice")
    bob = await server.user("bob")
    frames = []
    for i in range(10):
        frames.append({"cmd": "say", "room": "general", "text": f"room {i}"})
        if i % 3 == 0:
            frames.append({"cmd": "dm", "to": "bob", "text": f"dm {i}"})
    await alice.burst(frames)
    seen = []
    while len(seen) < len(frames):
        frame = await bob.frame()
        if frame.get("event") in ("message", "dm"):
            seen.append(frame["text"])
    assert seen == [f["text"] for f in frames]
