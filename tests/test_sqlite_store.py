"""The sqlite engine: the whole history on disk, found again after restarts,
searched in full, and refused when the file cannot be trusted."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from nexus.server.store import DamagedStore, tabled
from nexus.server.store import sqlite as sqlite_store
from nexus.server.store.sqlite import SqliteStore
from nexus.server.store.tables import SCHEMA_VERSION
from tests.conftest import PASSWORD, Running
from tests.procs import ServerProcess, server_command
from tests.server.test_threads import BEFORE_THREADS
from tests.wire import Peer

MESSAGES = 20_000


async def restart(running: Running, start_server, data: Path) -> Running:
    await running.close()
    return await start_server(data=data, store="sqlite")


async def all_pages(peer: Peer, room: str) -> list[dict]:
    """Every stored message of `room`, paging back from the newest."""
    found: list[dict] = []
    before = None
    while True:
        page = await peer.ok(
            "history", room=room, limit=500, **({"before": before} if before else {})
        )
        found[:0] = page["messages"]
        if not page["more"]:
            return found
        before = page["messages"][0]["seq"]


@pytest.mark.engines("sqlite")
async def test_twenty_thousand_messages_survive_a_restart_and_page_back_to_the_first(
    start_server, tmp_path, monkeypatch
):
    """Every message is kept, far past the window in memory: after a restart
    the room pages back to seq 1 in order, a word only in the first message is
    found, and an edit, an erasure and a reaction on old messages persist."""
    data = tmp_path / "history.db"
    running = await start_server(data=data, store="sqlite")
    alice = await running.user("alice")
    bob = await running.user("bob")
    await alice.ok("create", room="archive")
    await bob.ok("join", room="archive")
    texts = ["the quokka started it all"] + [f"message number {i}" for i in range(2, MESSAGES + 1)]
    for start in range(0, MESSAGES, 1000):
        await alice.burst(
            [{"cmd": "say", "room": "archive", "text": t} for t in texts[start : start + 1000]]
        )
    running = await restart(running, start_server, data)
    alice = await running.user("alice", register=False)
    bob = await running.user("bob", register=False)
    stored = await all_pages(alice, "archive")
    assert [m["seq"] for m in stored] == list(range(1, MESSAGES + 1))
    assert [m["text"] for m in stored] == texts
    await running.server.store.index_all()  # type: ignore[attr-defined]
    monkeypatch.setattr(sqlite_store, "SCAN_MAX", 0)  # the index, as for a big store
    found = await alice.ok("search", query="QUOKKA")
    assert [(m["room"], m["seq"]) for m in found["results"]] == [("archive", 1)]
    # Old messages, read from disk to be changed.
    await alice.ok("edit", room="archive", seq=1, text="the wombat started it all")
    await alice.ok("erase", room="archive", seq=2)
    await bob.ok("react", room="archive", seq=3, emoji="👍", on=True)
    await alice.ok("react", room="archive", seq=3, emoji="👍", on=True)
    running = await restart(running, start_server, data)
    alice = await running.user("alice", register=False)
    first = (await alice.ok("history", room="archive", limit=3, before=4))["messages"]
    assert first[0]["text"] == "the wombat started it all" and "edited" in first[0]
    assert first[1]["erased"] is True and first[1]["text"] == ""
    assert first[2]["reactions"] == {"👍": ["bob", "alice"]}
    await running.server.store.index_all()  # type: ignore[attr-defined]
    assert (await alice.ok("search", query="quokka"))["results"] == []
    found = await alice.ok("search", query="wombat")
    assert [m["seq"] for m in found["results"]] == [1]


def as_schema_one(data: Path) -> None:
    """Rewrites a closed database as the first schema had it: a trigram
    index of each message's text instead of words and a vocabulary, and an
    index of times, and no files, no pins, no threads."""
    with sqlite3.connect(data, isolation_level=None) as db:
        for statement in BEFORE_THREADS:
            db.execute(statement)
        for table in ("words", "vocab", "grams", "files"):
            db.execute(f"DROP TABLE {table}")
        db.execute("ALTER TABLE rooms DROP COLUMN pins")
        db.execute("CREATE VIRTUAL TABLE words USING fts5(text, content='', tokenize='trigram')")
        db.execute("CREATE INDEX messages_ts ON messages (ts)")
        rows = db.execute("SELECT id, text FROM messages").fetchall()
        db.executemany(
            "INSERT INTO words (rowid, text) VALUES (?, ?)",
            [(id_, text.casefold()) for id_, text in rows],
        )
        db.execute("UPDATE meta SET value = ? WHERE key = 'indexed'", (rows[-1][0],))
        db.execute("PRAGMA user_version = 1")


@pytest.mark.engines("sqlite")
async def test_a_database_of_the_first_schema_is_brought_up_to_date(
    start_server, tmp_path, monkeypatch
):
    """Schema 1's database starts, becomes the newest and finds what it held."""
    data = tmp_path / "old.db"
    running = await start_server(data=data, store="sqlite")
    alice = await running.user("alice")
    await alice.burst(
        [{"cmd": "say", "room": "general", "text": f"Zebra{i}, x"} for i in range(50)]
    )
    await running.close()
    as_schema_one(data)
    running = await start_server(data=data, store="sqlite")
    with sqlite3.connect(data) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert db.execute("SELECT COUNT(*) FROM files").fetchone()[0] == 0
    await running.server.store.index_all()  # type: ignore[attr-defined]
    monkeypatch.setattr(sqlite_store, "SCAN_MAX", 0)  # the index, as for a big store
    alice = await running.user("alice", register=False)
    found = await alice.ok("search", query="zebra4,")
    assert [m["text"] for m in found["results"]] == ["Zebra4, x"]
    found = await alice.ok("search", query="EBRA1")
    assert [m["seq"] for m in found["results"]] == [*range(20, 10, -1), 2]


@pytest.mark.engines("sqlite")
async def test_changes_racing_on_an_old_message_all_persist(start_server, tmp_path):
    """Reactions from many users to one message read from disk at the same
    moment: each is kept (one object a message, however many ask for it)."""
    data = tmp_path / "race.db"
    running = await start_server(data=data, store="sqlite", history_limit=1)
    users = [await running.user(f"user{i}") for i in range(8)]
    await users[0].burst([{"cmd": "say", "room": "general", "text": f"m{i}"} for i in range(600)])
    await asyncio.gather(
        *(peer.ok("react", room="general", seq=1, emoji="🎉", on=True) for peer in users)
    )
    running = await restart(running, start_server, data)
    peer = await running.user("user0", register=False)
    (first,) = (await peer.ok("history", room="general", limit=1, before=2))["messages"]
    assert sorted(first["reactions"]["🎉"]) == [f"user{i}" for i in range(8)]


@pytest.mark.engines("sqlite")
async def test_unread_counts_reach_past_the_window(start_server, tmp_path):
    """A member away while 700 messages came: unread counts them all and the
    mentions among them, read from disk past the window in memory."""
    running = await start_server(data=tmp_path / "unread.db", store="sqlite")
    away = await running.user("away")
    await away.ok("quit")
    talker = await running.user("talker")
    frames = [
        {"cmd": "say", "room": "general", "text": "ping @away" if i % 100 == 0 else f"m{i}"}
        for i in range(700)
    ]
    await talker.burst(frames)
    peer = await running.peer()
    login = await peer.ok("login", username="away", password=PASSWORD)
    assert login["unread"]["rooms"] == {"general": 700}
    assert login["unread"]["mentions"] == 7
    rooms = {room["name"]: room for room in (await peer.ok("rooms"))["rooms"]}
    assert rooms["general"]["unread"] == 700


@pytest.mark.engines("sqlite")
async def test_ids_the_index_has_passed_never_come_back(start_server, tmp_path, monkeypatch):
    """The newest messages, indexed, go with their room: the next message
    said after a restart still gets an id of its own and is found."""
    data = tmp_path / "ids.db"
    running = await start_server(data=data, store="sqlite")
    alice = await running.user("alice")
    await alice.ok("say", room="general", text="before")
    await alice.ok("create", room="doomed")
    await alice.burst([{"cmd": "say", "room": "doomed", "text": f"gone {i}"} for i in range(5)])
    await running.server.store.index_all()  # type: ignore[attr-defined]
    await alice.ok("delete", room="doomed")
    running = await restart(running, start_server, data)
    alice = await running.user("alice", register=False)
    await alice.ok("say", room="general", text="phoenix rising")
    await running.server.store.index_all()  # type: ignore[attr-defined]
    monkeypatch.setattr(sqlite_store, "SCAN_MAX", 0)  # the index, as for a big store
    found = await alice.ok("search", query="phoenix")
    assert [m["text"] for m in found["results"]] == ["phoenix rising"]


def index_position(data: Path) -> tuple[int, int]:
    """(the index's position, the newest message's id), as committed."""
    with sqlite3.connect(data) as db:
        indexed = db.execute("SELECT value FROM meta WHERE key = 'indexed'").fetchone()[0]
        newest = db.execute("SELECT max(id) FROM messages").fetchone()[0]
    return indexed, newest


@pytest.mark.engines("sqlite")
async def test_a_message_is_in_the_index_once_acknowledged(start_server, tmp_path, monkeypatch):
    """Indexed in the transaction that stores it, not by a later step (a fixed
    pace of steps left 53,000 of a 60,000-message flood waiting)."""
    monkeypatch.setattr(tabled, "INDEX_EVERY", 3600.0)  # no step after the first
    data = tmp_path / "indexed.db"
    running = await start_server(data=data, store="sqlite")
    alice = await running.user("alice")
    await alice.burst([{"cmd": "say", "room": "general", "text": f"wombat{i}"} for i in range(300)])
    indexed, newest = index_position(data)
    assert indexed == newest
    monkeypatch.setattr(sqlite_store, "SCAN_MAX", 0)  # the index, as for a big store
    found = await alice.ok("search", query="wombat299")
    assert [m["text"] for m in found["results"]] == ["wombat299"]


@pytest.mark.engines("sqlite")
async def test_messages_waiting_for_the_index_go_in_before_new_ones(
    start_server, tmp_path, monkeypatch
):
    """The index holds every id up to its position: while older messages
    wait for their steps, new ones wait behind them, and every one is found."""
    data = tmp_path / "backlog.db"
    running = await start_server(data=data, store="sqlite")
    alice = await running.user("alice")
    await alice.burst([{"cmd": "say", "room": "general", "text": f"old{i}"} for i in range(5)])
    await running.close()
    with sqlite3.connect(data) as db:  # as an older schema's database is found
        db.execute("INSERT INTO words (words) VALUES ('delete-all')")
        db.execute("UPDATE meta SET value = 0 WHERE key = 'indexed'")
    monkeypatch.setattr(sqlite_store, "INDEX_STEP", 2)
    monkeypatch.setattr(tabled, "INDEX_PAUSE", 3600.0)  # one step, then none
    running = await start_server(data=data, store="sqlite")
    alice = await running.user("alice", register=False)
    await alice.ok("say", room="general", text="new one")
    indexed, newest = index_position(data)
    assert (indexed, newest) == (2, 6)
    await running.server.store.index_all()  # type: ignore[attr-defined]
    assert index_position(data) == (6, 6)
    monkeypatch.setattr(sqlite_store, "SCAN_MAX", 0)
    for word in ("old3", "new"):
        found = await alice.ok("search", query=word)
        assert len(found["results"]) == 1, word


def checkpointed(data: Path, room: str, copy: Path) -> int:
    """How many of `room`'s messages the database file itself holds (its WAL
    left out: a copy of the file alone)."""
    copy.write_bytes(data.read_bytes())
    db = sqlite3.connect(copy)
    try:
        return db.execute("SELECT count(*) FROM messages WHERE scope = ?", (room,)).fetchone()[0]
    finally:
        db.close()


@pytest.mark.engines("sqlite")
async def test_the_wal_is_folded_in_beside_the_writes_never_by_a_commit(
    start_server, tmp_path, monkeypatch
):
    """A commit that passed SQLite's 1,000 pages checkpointed there and then,
    holding up every acknowledgement behind it; the checkpointer's thread
    folds the WAL in on its own, every CHECKPOINT_EVERY seconds."""
    monkeypatch.setattr(sqlite_store, "CHECKPOINT_EVERY", 3600.0)
    data = tmp_path / "wal.db"
    running = await start_server(data=data, store="sqlite")
    await running.user("alice")
    running = await restart(running, start_server, data)  # the tables in the file, folded at close
    alice = await running.user("alice", register=False)
    text = "w" * 3000  # 2,000 of them: ~1,500 pages
    await alice.burst([{"cmd": "say", "room": "general", "text": text} for _ in range(2000)])
    assert checkpointed(data, "general", tmp_path / "copy.db") == 0
    store = running.server.store
    await asyncio.get_running_loop().run_in_executor(None, store.checkpoint)  # type: ignore[attr-defined]
    assert checkpointed(data, "general", tmp_path / "copy.db") == 2000
    monkeypatch.setattr(sqlite_store, "CHECKPOINT_EVERY", 0.05)
    running = await restart(running, start_server, data)
    alice = await running.user("alice", register=False)
    await alice.burst([{"cmd": "say", "room": "general", "text": text} for _ in range(100)])
    deadline = time.monotonic() + 10
    while checkpointed(data, "general", tmp_path / "copy.db") < 2100:
        assert time.monotonic() < deadline, "the checkpointer never ran"
        await asyncio.sleep(0.05)


@pytest.mark.engines("sqlite")
async def test_messages_past_the_retention_are_deleted(start_server, tmp_path):
    """--retention-days: older messages go from disk and from memory; paging
    stops at the oldest kept, and seq numbers are never reused."""
    running = await start_server(data=tmp_path / "old.db", store="sqlite", retention_days=30)
    alice = await running.user("alice")
    await alice.burst([{"cmd": "say", "room": "general", "text": f"m{i}"} for i in range(5)])
    store = running.server.store
    assert isinstance(store, SqliteStore)
    assert await store.trim(now=time.time() + 31 * 86400) == 5
    page = await alice.ok("history", room="general")
    assert page["messages"] == [] and page["more"] is False and page["more_after"] is False
    assert (await alice.ok("say", room="general", text="new"))["seq"] == 6


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"this is not a database at all, just some text " * 100, "not a usable Nexus database"),
        (None, "written by a newer Nexus"),
        (b"", None),  # an empty file is a new database
    ],
)
async def test_a_database_that_cannot_be_trusted_refuses_to_start(tmp_path, content, why):
    """A damaged file or one written by a newer server: a clear message, no
    traceback, the file left as it was."""
    data = tmp_path / "nexus.db"
    if content is None:
        with sqlite3.connect(data) as db:
            db.execute("PRAGMA user_version = 99")
    else:
        data.write_bytes(content)
    before = data.read_bytes()
    if why is None:
        store = await SqliteStore.open(data)
        await store.close()
        return
    with pytest.raises(DamagedStore, match=why):
        await SqliteStore.open(data)
    assert data.read_bytes() == before
    done = await asyncio.to_thread(
        subprocess.run,
        [*server_command(), "--store", "sqlite", "--data", str(data), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert why in done.stderr and "Traceback" not in done.stderr


async def test_a_sqlite_server_keeps_its_files_private(tmp_path):
    """The database, its -wal and -shm hold password hashes and every DM: 0600."""
    data = tmp_path / "private.db"
    with ServerProcess(data, "--store", "sqlite") as server:
        peer = await Peer.connect("127.0.0.1", server.port)
        await peer.frame()
        await peer.ok("register", username="alice", password=PASSWORD)
        await peer.ok("dm", to="alice", text="a note to self")
        files = sorted(tmp_path.glob("private.db*"))
        assert [f.name for f in files] == ["private.db", "private.db-shm", "private.db-wal"]
        assert all(f.stat().st_mode & 0o077 == 0 for f in files)
        await peer.close()
