"""Restarts: a server started on the same data path knows everything the last one acknowledged."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest

from nexus.server.records import from_json
from nexus.server.store import journal as store_module
from nexus.server.store.journal import JournalStore
from tests.conftest import PASSWORD, Running, data_file
from tests.wire import Peer


@pytest.fixture
def data(tmp_path: Path, engine: str) -> Path:
    return data_file(tmp_path, engine)


async def restart(running: Running, start_server, data: Path) -> Running:
    """Stops `running` cleanly and starts a new server on the same data path."""
    await running.close()
    return await start_server(data=data)


async def login(server: Running, name: str, password: str = PASSWORD) -> tuple[Peer, dict]:
    peer = await server.peer()
    reply = await peer.ok("login", username=name, password=password)
    peer.name = name
    return peer, reply


async def test_everything_survives_a_restart(start_server, data):
    """Users, passwords, rooms, topics, owners, members, history, DMs, bios all come back."""
    first = await start_server(data=data)
    alice = await first.user("Alice")
    bob = await first.user("bob")
    await alice.ok("create", room="games", topic="board games")
    await alice.ok("bio", text="likes chess")
    await bob.ok("join", room="games")
    await bob.ok("join", room="tech")
    await alice.ok("leave", room="general")
    for text in ("one", "two", "three"):
        await alice.ok("say", room="games", text=text)
    await bob.ok("dm", to="alice", text="hi alice")
    await alice.ok("dm", to="bob", text="hi bob")
    rooms_before = (await alice.ok("rooms"))["rooms"]
    history_before = (await bob.ok("history", room="games"))["messages"]
    dms_before = [await bob.event("dm", seq=seq) for seq in (1, 2)]  # not `dms`: it reads
    for message in dms_before:
        del message["event"]

    second = await restart(first, start_server, data)
    alice, reply = await login(second, "alice")
    assert reply["user"]["username"] == "Alice"
    assert reply["user"]["bio"] == "likes chess"
    assert reply["rooms"] == ["games"]
    assert reply["unread"]["dms"] == {"bob": 1}
    bob, reply = await login(second, "BOB")
    assert reply["rooms"] == ["games", "general", "tech"]
    assert reply["unread"]["dms"] == {"Alice": 1}
    rooms_after = {r["name"]: r for r in (await alice.ok("rooms"))["rooms"]}
    assert {r["name"] for r in rooms_before} == set(rooms_after)
    assert rooms_after["games"] == {
        "name": "games",
        "topic": "board games",
        "owner": "Alice",
        "default": False,
        "members": 2,
        "online": 2,
        "private": False,
        "moderators": [],
        "muted": [],
        "unread": 0,
    }
    assert (await bob.ok("history", room="games"))["messages"] == history_before
    assert (await bob.ok("dms", **{"with": "alice"}))["messages"] == dms_before
    await alice.ok("topic", room="games", topic="still the owner")
    await bob.fails("not_owner", "delete", room="games")


async def test_passwords_and_names_survive_a_restart(start_server, data):
    """After a restart the right password logs in, a wrong one fails, names stay taken."""
    first = await start_server(data=data)
    await first.user("Carol")
    second = await restart(first, start_server, data)
    peer = await second.peer()
    await peer.fails("auth_failed", "login", username="carol", password="not her password")
    await peer.fails("username_taken", "register", username="CAROL", password=PASSWORD)
    await peer.ok("login", username="carol", password=PASSWORD)


async def test_seqs_continue_after_a_restart(start_server, data):
    """Room and DM seqs go on from where they were, never reused."""
    first = await start_server(data=data)
    alice = await first.user("alice")
    await first.user("bob")
    for _ in range(3):
        await alice.ok("say", room="general", text="x")
        await alice.ok("dm", to="bob", text="x")
    second = await restart(first, start_server, data)
    alice, _ = await login(second, "alice")
    assert (await alice.ok("say", room="general", text="y"))["seq"] == 4
    assert (await alice.ok("dm", to="bob", text="y"))["seq"] == 4
    page = await alice.ok("history", room="general")
    assert [m["seq"] for m in page["messages"]] == [1, 2, 3, 4]


@pytest.mark.engines("json")  # the json engine keeps 500 a room; sqlite every one
async def test_trimmed_history_stays_trimmed_after_a_restart(start_server, data):
    """A room past its 500 cap restarts with seqs 6-505 and goes on at 506."""
    first = await start_server(data=data)
    alice = await first.user("alice")
    await alice.burst([{"cmd": "say", "room": "general", "text": f"{i}"} for i in range(505)])
    second = await restart(first, start_server, data)
    alice, _ = await login(second, "alice")
    page = await alice.ok("history", room="general", limit=500)
    assert [m["seq"] for m in page["messages"]] == list(range(6, 506))
    assert page["more"] is False
    assert (await alice.ok("say", room="general", text="next"))["seq"] == 506


async def test_read_markers_survive_a_restart(start_server, data):
    """A conversation read before the restart is still read; later DMs are unread."""
    first = await start_server(data=data)
    alice = await first.user("alice")
    bob = await first.user("bob")
    await bob.ok("dm", to="alice", text="one")
    await bob.ok("dm", to="alice", text="two")
    await alice.ok("dms", **{"with": "bob"})
    await bob.ok("dm", to="alice", text="three")
    second = await restart(first, start_server, data)
    _, reply = await login(second, "alice")
    assert reply["unread"]["dms"] == {"bob": 1}


async def test_last_seen_survives_a_restart(start_server, data):
    """last_seen of an offline user, and of one online at shutdown, is kept across restarts."""
    first = await start_server(data=data)
    alice = await first.user("alice")
    bob = await first.user("bob")
    await bob.ok("quit")
    await alice.event("presence", user="bob", online=False)
    bob_seen = (await alice.ok("whois", username="bob"))["user"]["last_seen"]
    assert isinstance(bob_seen, float)
    second = await restart(first, start_server, data)
    carol = await second.user("carol")
    assert (await carol.ok("whois", username="bob"))["user"]["last_seen"] == bob_seen
    alice_profile = (await carol.ok("whois", username="alice"))["user"]
    assert alice_profile["online"] is False
    assert alice_profile["last_seen"] >= bob_seen


async def test_deleted_room_stays_deleted_and_restarts_at_seq_1(start_server, data):
    """A deleted room is gone after a restart; created again it counts from seq 1."""
    first = await start_server(data=data)
    alice = await first.user("alice")
    await alice.ok("create", room="games")
    await alice.ok("say", room="games", text="old")
    await alice.ok("delete", room="games")
    await alice.ok("create", room="temp")
    await alice.ok("say", room="temp", text="old")
    await alice.ok("delete", room="temp")
    await alice.ok("create", room="temp", topic="again")
    await alice.ok("say", room="temp", text="new")
    second = await restart(first, start_server, data)
    alice, reply = await login(second, "alice")
    assert reply["rooms"] == ["general", "temp"]
    await alice.fails("no_such_room", "history", room="games")
    page = await alice.ok("history", room="temp")
    assert [(m["seq"], m["text"]) for m in page["messages"]] == [(1, "new")]
    assert (await alice.ok("create", room="games"))["room"]["members"] == 1
    assert (await alice.ok("say", room="games", text="fresh"))["seq"] == 1
    assert (await alice.ok("say", room="temp", text="newer"))["seq"] == 2


async def test_default_rooms_exist_and_stay_protected_after_a_restart(start_server, data):
    """general, random and tech have no owner and cannot be deleted, before and after restart."""
    first = await start_server(data=data)
    alice = await first.user("alice")
    for name in ("general", "random", "tech"):
        await alice.fails("protected_room", "delete", room=name)
    second = await restart(first, start_server, data)
    alice, _ = await login(second, "alice")
    rooms = {r["name"]: r for r in (await alice.ok("rooms"))["rooms"]}
    for name in ("general", "random", "tech"):
        assert rooms[name]["owner"] is None and rooms[name]["default"] is True
        await alice.fails("protected_room", "delete", room=name)


@pytest.mark.engines("json", "sqlite")  # PostgreSQL's files are the database server's
async def test_acknowledged_changes_are_on_disk_before_any_shutdown(start_server, data, tmp_path):
    """Files copied right after the replies (a crash there) hold every acknowledged change."""
    first = await start_server(data=data)
    alice = await first.user("alice")
    await first.user("bob")
    await alice.ok("create", room="games", topic="t")
    await alice.ok("say", room="games", text="kept")
    await alice.ok("dm", to="bob", text="kept too")
    await alice.ok("bio", text="durable")
    copy = tmp_path / "crash" / data.name
    copy.parent.mkdir()
    for path in data.parent.glob(data.name + "*"):
        shutil.copy(path, copy.parent / path.name)
    second = await start_server(data=copy)
    bob, reply = await login(second, "bob")
    assert reply["unread"]["dms"] == {"alice": 1}
    assert (await bob.ok("whois", username="alice"))["user"]["bio"] == "durable"
    page = await bob.ok("history", room="games")
    assert [m["text"] for m in page["messages"]] == ["kept"]
    rooms = {r["name"]: r for r in (await bob.ok("rooms"))["rooms"]}
    assert rooms["games"]["topic"] == "t" and rooms["games"]["owner"] == "alice"


@pytest.mark.engines("json")  # the json engine's own files
async def test_store_closes_with_records_applied_during_a_compaction(data, monkeypatch):
    """close() waits for a compaction under way and writes what arrived meanwhile."""
    monkeypatch.setattr(store_module, "COMPACT_MIN_BYTES", 0)
    store = await JournalStore.open(data, fsync=True)
    store.record(from_json({"op": "register", "username": "alice", "password": "x", "ts": 1.0}))
    await asyncio.sleep(0)  # written; the journal now outgrows the (absent) snapshot
    assert store._compaction is not None  # compacting in the background
    store.record(from_json({"op": "bio", "user": "alice", "text": "pending"}))
    await asyncio.wait_for(store.close(), 5)
    again = await JournalStore.open(data)
    assert again.model.users["alice"].bio == "pending"
    await again.close()


FIXTURE_V1 = Path(__file__).parent.parent / "fixtures" / "store_v1"


@pytest.mark.engines("json")  # the json engine's own files
async def test_a_store_written_by_the_protocol_1_server_loads_with_its_history(
    start_server, tmp_path
):
    """A snapshot (store version 2) and journal written by the protocol 1 server
    start as they were: users, rooms, history, DMs; markers start at the
    snapshot's newest messages; the next snapshot is the current version and loads again."""
    for name in ("nexus_data.json", "nexus_data.json.journal"):
        shutil.copy(FIXTURE_V1 / name, tmp_path / name)
    data = tmp_path / "nexus_data.json"
    first = await start_server(data=data)
    alice, reply = await login(first, "alice")
    assert reply["user"]["bio"] == "grows tomatoes"
    assert reply["user"]["away"] is None
    assert reply["rooms"] == ["garden", "general"]
    assert reply["unread"] == {"dms": {"Bob": 1}, "rooms": {}, "mentions": 0, "threads": 0}
    bob, reply = await login(first, "bob")
    # Bob's marker in garden starts at the snapshot's newest (3): the journal's
    # "second tomato" is unread; everything older counts as read.
    assert reply["unread"] == {
        "dms": {"alice": 1},
        "rooms": {"garden": 1},
        "mentions": 0,
        "threads": 0,
    }
    garden = (await bob.ok("history", room="garden"))["messages"]
    texts = ["first tomato", "hello @Bob", "watering at noon", "second tomato"]
    assert [m["text"] for m in garden] == texts
    assert all("mentions" not in m for m in garden)  # worked out only for new text
    assert (await bob.ok("dms", **{"with": "alice"}))["messages"][-1]["text"] == (
        "thanks for the seeds"
    )
    await alice.ok("edit", room="garden", seq=2, text="hello again @Bob")
    await bob.ok("react", room="garden", seq=1, emoji="🍅")
    second = await restart(first, start_server, data)
    snapshot = json.loads(data.read_text())
    assert snapshot["version"] == store_module.SNAPSHOT_VERSION == 5
    bob, reply = await login(second, "bob")
    assert reply["unread"]["rooms"] == {"garden": 1}  # the marker was kept at 3
    garden = (await bob.ok("history", room="garden"))["messages"]
    assert garden[0]["reactions"] == {"🍅": ["Bob"]}
    assert garden[1]["mentions"] == ["Bob"]


FIXTURE_V3 = Path(__file__).parent.parent / "fixtures" / "store_v3"


@pytest.mark.engines("json")  # the json engine's own files
async def test_a_store_written_by_the_conversation_server_loads_public_and_without_admins(
    start_server, tmp_path
):
    """A version 3 snapshot and journal (before moderation) load with their
    edits, reactions, away texts and erasures; every room is public, nobody is
    an admin (the store had accounts), and the next snapshot is the newest."""
    for name in ("nexus_data.json", "nexus_data.json.journal"):
        shutil.copy(FIXTURE_V3 / name, tmp_path / name)
    data = tmp_path / "nexus_data.json"
    first = await start_server(data=data)
    alice, reply = await login(first, "alice")
    assert reply["user"]["away"] == "in the garden" and reply["user"]["admin"] is False
    garden = (await alice.ok("history", room="garden"))["messages"]
    texts = ["first tomato, edited", "hello @Bob", "", "second tomato"]
    assert [m["text"] for m in garden] == texts
    assert garden[0]["reactions"] == {"🍅": ["Bob"]} and garden[2]["erased"] is True
    rooms = {r["name"]: r for r in (await alice.ok("rooms"))["rooms"]}
    assert rooms["garden"]["private"] is False and rooms["garden"]["moderators"] == []
    await alice.fails("not_allowed", "suspend", username="bob")
    await server_user_registers_as_plain(first)
    second = await restart(first, start_server, data)
    assert json.loads(data.read_text())["version"] == store_module.SNAPSHOT_VERSION == 5
    bob, _ = await login(second, "bob")
    await bob.fails("not_allowed", "bans", room="garden")


async def server_user_registers_as_plain(server: Running) -> None:
    """A new account on a store that has accounts is no admin."""
    newcomer = await server.user("newcomer")
    assert (await newcomer.ok("whois", username="newcomer"))["user"]["admin"] is False


async def test_a_new_account_keeps_its_default_room_after_a_restart(start_server, data):
    """With --default-rooms, a new account joins the first of them, and is
    still in it after a restart, on every engine."""
    first = await start_server(data=data, default_rooms=("lobby", "help"))
    await first.user("alice")
    second = await restart(first, start_server, data)
    _, reply = await login(second, "alice")
    assert reply["rooms"] == ["lobby"]
