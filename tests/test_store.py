"""The journaled store on real files: replay, torn tails, damage, compaction, write faults."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import zlib

import orjson
import pytest

from nexus.server.model import Message
from nexus.server.records import from_json
from nexus.server.store import DamagedStore, StoreError, StoreListener
from nexus.server.store import journal as store_module
from nexus.server.store.journal import JournalStore, read_journal


async def fill(store: JournalStore, messages: int = 5) -> None:
    """A user, a room of their own, messages and a DM, all committed."""
    await store.commit(
        from_json({"op": "register", "username": "Alice", "password": "h", "ts": 1.0})
    )
    await store.commit(from_json({"op": "register", "username": "bob", "password": "h", "ts": 2.0}))
    await store.commit(
        from_json({"op": "create", "user": "alice", "room": "den", "topic": "t", "ts": 3.0})
    )
    for i in range(messages):
        await store.commit(
            from_json({"op": "say", "user": "alice", "room": "den", "text": f"m{i}", "ts": 4.0})
        )
    await store.commit(
        from_json({"op": "dm", "user": "alice", "to": "bob", "text": "hi", "ts": 5.0})
    )


def as_json(snapshot: dict) -> bytes:
    """A snapshot's body as the store writes it (messages in their wire form)."""
    return orjson.dumps(snapshot, default=Message.wire, option=orjson.OPT_PASSTHROUGH_DATACLASS)


def state(store: JournalStore) -> dict:
    return store.model.to_snapshot()


async def reopen(store: JournalStore) -> JournalStore:
    """Abandons `store` as a crash would (no close, no compaction) and loads its files."""
    if store._write_handle is not None:
        store._write_handle.cancel()  # what is still pending dies with the process
    for task in (store._compaction, store._recovery):
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    store._journal.close()
    return await JournalStore.open(store.path)


async def test_committed_changes_survive_a_crash(tmp_path):
    """Everything committed is replayed from the journal after an unclean stop."""
    store = await JournalStore.open(tmp_path / "data.json")
    await fill(store)
    before = state(store)
    again = await reopen(store)
    assert state(again) == before
    assert [m.text for m in again.model.rooms["den"].history.messages][-1] == "m4"
    await again.close()


async def test_concurrent_commits_share_writes(tmp_path, monkeypatch):
    """Changes arriving together go to disk in one write (group commit)."""
    store = await JournalStore.open(tmp_path / "data.json")
    await fill(store, messages=0)
    writes = []
    real_append = store._append

    def counting_append(batch: bytes) -> None:
        writes.append(batch.count(b"\n"))
        real_append(batch)

    monkeypatch.setattr(store, "_append", counting_append)
    record = {"op": "say", "user": "alice", "room": "den", "text": "x", "ts": 1.0}
    await asyncio.gather(*(store.commit(from_json(record)) for _ in range(1000)))
    assert writes == [1000]
    await store.close()


async def test_close_folds_the_journal_into_a_readable_snapshot(tmp_path):
    """A clean stop leaves an indented JSON snapshot and an empty journal."""
    store = await JournalStore.open(tmp_path / "data.json")
    await fill(store)
    before = state(store)
    await store.close()
    assert (tmp_path / "data.json.journal").stat().st_size == 0
    snapshot = orjson.loads((tmp_path / "data.json").read_bytes())
    assert snapshot["format"] == "nexus-store"
    assert b'\n  "users"' in (tmp_path / "data.json").read_bytes()
    again = await JournalStore.open(tmp_path / "data.json")
    assert state(again) == before
    await again.close()


async def test_torn_tail_at_every_offset_of_the_last_records(tmp_path, caplog):
    """A journal cut at any byte of its last records loads every whole record before the cut."""
    path = tmp_path / "data.json"
    store = await JournalStore.open(path)
    await fill(store, messages=3)
    await reopen(store)  # closes the journal file without compaction
    journal = (tmp_path / "data.json.journal").read_bytes()
    lines = journal.splitlines(keepends=True)
    tail_start = len(journal) - len(lines[-1]) - len(lines[-2])
    for cut in range(tail_start, len(journal)):
        (tmp_path / "data.json.journal").write_bytes(journal[:cut])
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="nexus.store"):
            store = await JournalStore.open(path)
        whole = journal[:cut].count(b"\n")
        assert store._n == whole
        texts = [m.text for m in store.model.rooms["den"].history.messages]
        assert len(texts) == min(3, max(0, whole - 3))
        torn = not journal[:cut].endswith(b"\n")
        assert ("torn record" in caplog.text) == torn
        assert (tmp_path / "data.json.journal").stat().st_size == len(b"".join(lines[:whole]))
        await reopen(store)


async def test_a_flipped_byte_in_the_last_whole_record_is_damage(tmp_path):
    """Only an unfinished last record is a torn write; a whole one that fails its
    checksum is damage, refused with its offset, and the files are left alone."""
    path = tmp_path / "data.json"
    store = await JournalStore.open(path)
    await fill(store, messages=2)
    await reopen(store)
    journal = bytearray((tmp_path / "data.json.journal").read_bytes())
    last = journal.rindex(b"\n", 0, len(journal) - 1) + 1
    journal[-5] ^= 0x01
    (tmp_path / "data.json.journal").write_bytes(journal)
    with pytest.raises(DamagedStore, match=f"byte offset {last}"):
        await JournalStore.open(path)
    assert (tmp_path / "data.json.journal").read_bytes() == journal


async def test_damage_in_the_middle_refuses_to_start_naming_file_and_offset(tmp_path):
    """A bad record followed by good ones stops start-up with a clear message."""
    path = tmp_path / "data.json"
    store = await JournalStore.open(path)
    await fill(store, messages=3)
    await reopen(store)
    journal = bytearray((tmp_path / "data.json.journal").read_bytes())
    offset = journal.index(b"\n") + 1  # the second record
    journal[offset + 20] ^= 0x40
    (tmp_path / "data.json.journal").write_bytes(journal)
    with pytest.raises(DamagedStore) as caught:
        await JournalStore.open(path)
    assert f"byte offset {offset}" in str(caught.value)
    assert "data.json.journal" in str(caught.value)


async def test_a_damaged_snapshot_refuses_to_start(tmp_path):
    """A snapshot that is not a Nexus store is refused, never overwritten."""
    (tmp_path / "data.json").write_bytes(b'{"users": [')
    with pytest.raises(DamagedStore, match="snapshot"):
        await JournalStore.open(tmp_path / "data.json")
    assert (tmp_path / "data.json").read_bytes() == b'{"users": ['


async def test_missing_records_in_the_journal_are_damage(tmp_path):
    """Records must be numbered without gaps; a missing one is refused."""
    lines = [
        store_module.encode_record(
            {"n": 1, "op": "register", "username": "amy", "password": "h", "ts": 1}
        ),
        store_module.encode_record({"n": 3, "op": "bio", "user": "amy", "text": "x"}),
    ]
    with pytest.raises(DamagedStore):
        read_journal(b"".join(lines), 0, "journal")


async def test_a_crash_at_each_step_of_compaction_loses_nothing(tmp_path):
    """Whatever step of compaction a crash interrupts, the store loads whole and once."""
    path = tmp_path / "data.json"
    store = await JournalStore.open(path)
    await fill(store, messages=4)
    await store.compact()
    await fill_more(store)
    expected = state(store)
    old_snapshot = path.read_bytes()
    old_journal = (tmp_path / "data.json.journal").read_bytes()
    await store.compact()
    new_snapshot = path.read_bytes()
    await reopen(store)

    def lay(snapshot: bytes, journal: bytes, tmp: bytes | None, journal_tmp=None) -> None:
        path.write_bytes(snapshot)
        (tmp_path / "data.json.journal").write_bytes(journal)
        for name, data in (("data.json.tmp", tmp), ("data.json.journal.tmp", journal_tmp)):
            if data is None:
                (tmp_path / name).unlink(missing_ok=True)
            else:
                (tmp_path / name).write_bytes(data)

    steps = {
        "temporary file half written": (old_snapshot, old_journal, new_snapshot[:100]),
        "temporary file written, not renamed": (old_snapshot, old_journal, new_snapshot),
        "renamed, journal not yet cut": (new_snapshot, old_journal, None),
        "cut journal written, not renamed": (new_snapshot, old_journal, None, b""),
        "journal cut": (new_snapshot, b"", None),
    }
    for step, files in steps.items():
        lay(*files)
        loaded = await JournalStore.open(path)
        assert state(loaded) == expected, step
        await reopen(loaded)


async def fill_more(store: JournalStore) -> None:
    await store.commit(
        from_json({"op": "say", "user": "bob", "room": "general", "text": "late", "ts": 9.0})
    )
    await store.commit(from_json({"op": "bio", "user": "bob", "text": "hello"}))


async def test_a_failed_write_acknowledges_nothing_and_writes_resume(tmp_path, monkeypatch):
    """ENOSPC refuses the unwritten change, keeps earlier ones and lets later writes through."""
    path = tmp_path / "data.json"
    store = await JournalStore.open(path)
    await fill(store, messages=2)
    before = state(store)
    journal = store._journal
    real_write = journal.write
    failures = []

    def full_disk(data):
        # Half the batch reaches the file before the disk fills up.
        failures.append(len(data))
        real_write(bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(journal, "write", full_disk)
    record = {"op": "say", "user": "alice", "room": "den", "text": "lost", "ts": 1.0}
    with pytest.raises(StoreError, match="No space left"):
        await store.commit(from_json(record))
    assert failures
    assert state(store) == before  # the refused change is gone from memory too
    monkeypatch.setattr(journal, "write", real_write)
    kept = {"op": "say", "user": "alice", "room": "den", "text": "kept", "ts": 2.0}
    await store.commit(from_json(kept))
    after = state(store)
    again = await reopen(store)
    assert state(again) == after
    texts = [m.text for m in again.model.rooms["den"].history.messages]
    assert texts[-1] == "kept" and "lost" not in texts
    await again.close()


async def test_fsync_mode_commits_and_reloads(tmp_path):
    """With fsync on, commits still group and the data reloads."""
    store = await JournalStore.open(tmp_path / "data.json", fsync=True)
    await fill(store)
    before = state(store)
    again = await reopen(store)
    assert state(again) == before
    await again.close()


async def test_the_journal_compacts_once_it_outgrows_the_snapshot(tmp_path, monkeypatch):
    """Past the threshold, the store folds the journal into the snapshot by itself."""
    monkeypatch.setattr(store_module, "COMPACT_MIN_BYTES", 2_000)
    store = await JournalStore.open(tmp_path / "data.json")
    await fill(store, messages=40)
    await store._settle()  # compaction runs in the background
    assert (tmp_path / "data.json").exists()
    assert (tmp_path / "data.json.journal").stat().st_size < 2_000 + 200
    before = state(store)
    again = await reopen(store)
    assert state(again) == before
    await again.close()


async def test_an_unexpected_error_in_a_write_refuses_like_a_full_disk(tmp_path, monkeypatch):
    """Whatever stops a write, the change is refused and the model reloaded, never acknowledged."""
    store = await JournalStore.open(tmp_path / "data.json")
    await fill(store, messages=1)
    before = state(store)
    refused: list[StoreError] = []

    class Refusals(StoreListener):
        def refused(self, error: StoreError) -> None:
            refused.append(error)

    store.listeners.append(Refusals())

    def broken(data):
        raise RuntimeError("bug in the writer")

    monkeypatch.setattr(store._journal, "write", broken)
    record = {"op": "say", "user": "alice", "room": "den", "text": "lost", "ts": 1.0}
    with pytest.raises(StoreError, match="bug in the writer"):
        await store.commit(from_json(record))
    assert state(store) == before
    assert len(refused) == 1 and not store.has_unwritten()
    await store.close()


async def test_writes_go_on_while_a_snapshot_is_written(tmp_path, monkeypatch):
    """Compaction does not pause the journal; what is written meanwhile stays in it."""
    monkeypatch.setattr(store_module, "SNAPSHOT_PIECE_BYTES", 1)  # a piece per item
    path = tmp_path / "data.json"
    store = await JournalStore.open(path)
    for i in range(200):
        store.record(from_json({"op": "register", "username": f"u{i}", "password": "h", "ts": 1.0}))
    await fill(store)
    compaction = asyncio.create_task(store.compact())
    await asyncio.sleep(0)  # the snapshot is taken; its pieces are being written
    late = {"op": "say", "user": "alice", "room": "den", "text": "during", "ts": 6.0}
    await store.commit(from_json(late))
    assert not compaction.done()  # written while the snapshot was still being written
    await compaction
    held = orjson.loads(path.read_bytes())["journal_seq"]
    records, _ = read_journal(store.journal_path.read_bytes(), held, "journal")
    assert [r.get("text") for r in records] == ["during"]  # the journal holds just the tail
    expected = state(store)
    again = await reopen(store)
    assert state(again) == expected
    await again.close()


def test_a_snapshot_written_in_pieces_is_the_whole_document(monkeypatch):
    """However small the pieces, they join into the indented JSON of the whole snapshot."""
    head = {"format": "nexus-store", "version": 1, "journal_seq": 3, "saved": 1.5}
    body = {
        "users": [{"username": "a", "rooms": ["x", "y"]}, {"username": "b", "rooms": []}],
        "rooms": [],
        "dms": [{"users": ["a", "b"], "read": {}, "messages": [{"text": "two\nlines"}]}],
    }
    document = orjson.dumps({**head, **body}, option=orjson.OPT_INDENT_2)
    checksum = b',\n  "crc32": "%08x"\n}\n' % zlib.crc32(document[:-2])
    whole = document[:-2] + checksum  # the last key covers every byte before it
    assert orjson.loads(whole)["crc32"] == f"{zlib.crc32(document[:-2]):08x}"
    for size in (1, 40, 1 << 20):
        monkeypatch.setattr(store_module, "SNAPSHOT_PIECE_BYTES", size)
        pieces = list(store_module.snapshot_pieces(head, body))
        assert b"".join(pieces) == whole
        assert (len(pieces) > 2) == (size < len(document))


async def test_a_changed_letter_in_a_stored_message_refuses_to_start(tmp_path):
    """The snapshot carries a checksum: an altered message is damage, never served."""
    path = tmp_path / "data.json"
    store = await JournalStore.open(path)
    await fill(store, messages=3)
    await store.close()
    snapshot = path.read_bytes()
    assert snapshot.count(b'"m1"') == 1
    path.write_bytes(snapshot.replace(b'"m1"', b'"n1"'))
    with pytest.raises(DamagedStore, match=r"data\.json"):
        await JournalStore.open(path)
    assert path.read_bytes() == snapshot.replace(b'"m1"', b'"n1"')  # left for the operator


async def test_a_changed_journal_seq_refuses_to_start(tmp_path):
    """A snapshot whose journal_seq was altered would drop or renumber journal records."""
    path = tmp_path / "data.json"
    store = await JournalStore.open(path)
    await fill(store, messages=3)
    await store.compact()
    await fill_more(store)
    seq = orjson.loads(path.read_bytes())["journal_seq"]
    await reopen(store)
    snapshot = path.read_bytes()
    changed = snapshot.replace(b'"journal_seq": %d' % seq, b'"journal_seq": %d' % (seq + 5))
    assert changed != snapshot
    path.write_bytes(changed)
    with pytest.raises(DamagedStore):
        await JournalStore.open(path)


async def test_a_changed_newline_between_the_last_records_is_damage_not_a_torn_tail(tmp_path):
    """Two whole records run together are damage: only an unfinished last record is torn."""
    path = tmp_path / "data.json"
    store = await JournalStore.open(path)
    await fill(store, messages=3)
    await reopen(store)
    journal = (tmp_path / "data.json.journal").read_bytes()
    last_two = journal.rstrip(b"\n").rindex(b"\n")
    (tmp_path / "data.json.journal").write_bytes(
        journal[:last_two] + b" " + journal[last_two + 1 :]
    )
    merged_at = journal.rindex(b"\n", 0, last_two) + 1
    with pytest.raises(DamagedStore, match=f"byte offset {merged_at}"):
        await JournalStore.open(path)


async def test_data_files_are_readable_by_their_owner_only(tmp_path):
    """Snapshot and journal hold password hashes and every DM: created 0600 whatever the umask."""
    old = os.umask(0o022)
    try:
        store = await JournalStore.open(tmp_path / "data.json")
        await fill(store)
        await store.compact()
        await fill_more(store)
        await store.close()
    finally:
        os.umask(old)
    for name in ("data.json", "data.json.journal"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o600, name


def test_replaying_message_changes_over_a_snapshot_that_holds_them_changes_nothing():
    """A snapshot is encoded while the model moves on, so it may already hold the
    effect of edits, reactions and erasures the journal replays after it: each
    record sets a state, so replaying any tail of them again leaves the same model."""
    from nexus.server.model import Model

    records = [
        {"op": "register", "username": "Alice", "password": "h", "ts": 1.0},
        {"op": "register", "username": "bob", "password": "h", "ts": 1.0},
        {"op": "say", "user": "alice", "room": "general", "text": "a", "ts": 2.0},
        {"op": "say", "user": "bob", "room": "general", "text": "b", "ts": 2.0},
        {"op": "dm", "user": "alice", "to": "bob", "text": "d", "ts": 2.0},
        {"op": "react", "user": "bob", "room": "general", "seq": 1, "emoji": "+", "on": True},
        {"op": "react", "user": "alice", "room": "general", "seq": 1, "emoji": "+", "on": True},
        {"op": "react", "user": "bob", "room": "general", "seq": 1, "emoji": "+", "on": False},
        {"op": "react", "user": "bob", "room": "general", "seq": 1, "emoji": "+", "on": True},
        {"op": "edit", "user": "alice", "room": "general", "seq": 1, "text": "a2", "ts": 3.0},
        {"op": "edit", "user": "alice", "room": "general", "seq": 1, "text": "a3", "ts": 4.0},
        {"op": "react", "user": "bob", "with": "alice", "seq": 1, "emoji": "x", "on": True},
        {"op": "erase", "user": "bob", "room": "general", "seq": 2},
        {"op": "edit", "user": "alice", "with": "bob", "seq": 1, "text": "d2", "ts": 5.0},
        {"op": "erase", "user": "alice", "with": "bob", "seq": 1},
    ]
    final = Model()
    for record in records:
        final.apply(from_json(record))
    for cut in range(5, len(records)):  # the snapshot holds every message made
        model = Model.from_snapshot(orjson.loads(as_json(final.to_snapshot())))
        for record in records[cut:]:
            model.apply(from_json(record))
        assert model.to_snapshot() == final.to_snapshot(), cut
    general = final.rooms["general"].history.messages
    assert general[0].reactions == {"+": ["Alice", "bob"]} and general[0].text == "a3"


async def guests_everywhere(store: JournalStore) -> None:
    """Guest zed in a stored room and a room of its own, with every kind of
    trace in stored state: a mute, a ban, a DM, a registered member of its room."""
    await fill(store, messages=2)  # alice owns den; bob
    for record in (
        {"op": "guest", "user": None, "username": "Zed", "ts": 7.0},
        {"op": "guest", "user": None, "username": "yan", "ts": 7.0},
        {"op": "join", "user": "zed", "room": "general"},
        {"op": "join", "user": "zed", "room": "den"},
        # What a guest says carries its name: no user of that name is stored.
        {"op": "say", "user": "zed", "room": "general", "text": "kept", "ts": 8.0, "guest": "Zed"},
        {
            "op": "react",
            "user": "zed",
            "room": "den",
            "seq": 1,
            "emoji": "+",
            "on": True,
            "guest": "Zed",
        },
        {"op": "mute", "user": "alice", "room": "den", "target": "zed", "on": True},
        {"op": "ban", "user": "alice", "room": "den", "target": "yan", "reason": "", "ts": 8.0},
        {"op": "create", "user": "zed", "room": "tmp", "topic": "", "ts": 8.0},
        {"op": "join", "user": "bob", "room": "tmp"},
        {"op": "say", "user": "bob", "room": "tmp", "text": "gone", "ts": 9.0},
        {"op": "read", "user": "bob", "room": "tmp", "seq": 1},
        {"op": "dm", "user": "zed", "to": "alice", "text": "psst", "ts": 9.0},
        {"op": "dm", "user": "alice", "to": "zed", "text": "hm", "ts": 9.0},
        {"op": "away", "user": "zed", "text": "brb"},
    ):
        await store.commit(from_json(record))


async def test_guests_and_their_rooms_are_never_written(tmp_path):
    """Nothing but a guest's messages in stored rooms reaches the journal, and
    the snapshot holds no guest, no ephemeral room and no trace of either."""
    store = await JournalStore.open(tmp_path / "data.json")
    await guests_everywhere(store)
    journal = [orjson.loads(line[9:]) for line in store.journal_path.read_bytes().splitlines()]
    names = [record.get("user") for record in journal] + [r.get("target") for r in journal]
    assert "yan" not in names and "tmp" not in [record.get("room") for record in journal]
    written = [record for record in journal if record.get("user") == "zed"]
    assert [(r["op"], r["guest"]) for r in written] == [("say", "Zed"), ("react", "Zed")]
    snapshot = store.model.to_snapshot()
    encoded = orjson.dumps(snapshot).decode()
    assert "yan" not in encoded and "tmp" not in encoded and "psst" not in encoded
    assert [u["username"] for u in snapshot["users"]] == ["Alice", "bob"]
    den = next(room for room in snapshot["rooms"] if room["name"] == "den")
    assert (
        den["muted"] == []
        and den["bans"] == []
        and snapshot["dms"][0]["users"]
        == [
            "alice",
            "bob",
        ]
    )
    bob = next(user for user in snapshot["users"] if user["username"] == "bob")
    assert bob["rooms"] == ["general"] and "tmp" not in bob["read"]
    await store.close()


async def test_a_guests_message_in_a_stored_room_replays_without_the_guest(tmp_path):
    """After a crash, and after a compaction, a guest's message keeps its seq, its
    name and its guest mark; numbering goes on after it; no guest is in the model."""
    store = await JournalStore.open(tmp_path / "data.json")
    await guests_everywhere(store)
    general = list(store.model.rooms["general"].history.messages)
    assert [m.wire() for m in general] == [
        {"room": "general", "seq": 1, "from": "Zed", "text": "kept", "ts": 8.0, "guest": True}
    ]
    again = await reopen(store)
    model = again.model
    assert list(model.rooms["general"].history.messages) == general
    assert model.rooms["den"].history.get(1).reactions == {"+": ["Zed"]}
    assert set(model.users) == {"alice", "bob"} and "tmp" not in model.rooms
    assert model.rooms["general"].members == {"alice", "bob"}
    message = await again.commit(
        from_json({"op": "say", "user": "bob", "room": "general", "text": "n", "ts": 1.0})
    )
    assert message.seq == 2
    await again.compact()
    compacted = await reopen(again)
    assert [m.seq for m in compacted.model.rooms["general"].history.messages] == [1, 2]
    assert compacted.model.rooms["general"].history.get(1).guest is True
    await compacted.close()


def test_a_guest_departs_with_every_trace_and_its_room_loses_its_owner():
    """`depart` takes a guest out of every room, mute, ban, invitation and DM
    conversation; a room it made that still has members is left with no owner."""
    from nexus.server.model import Model

    model = Model()
    for record in (
        {"op": "register", "username": "ana", "password": "h", "ts": 1.0},
        {"op": "guest", "user": None, "username": "zed", "ts": 1.0},
        {"op": "create", "user": "ana", "room": "den", "topic": "", "ts": 1.0, "private": True},
        {"op": "invite", "user": "ana", "room": "den", "target": "zed"},
        {"op": "join", "user": "zed", "room": "general"},
        {"op": "mute", "user": "ana", "room": "general", "target": "zed", "on": True},
        {"op": "ban", "user": "ana", "room": "random", "target": "zed", "reason": "", "ts": 1.0},
        {"op": "create", "user": "zed", "room": "tmp", "topic": "", "ts": 1.0},
        {"op": "join", "user": "ana", "room": "tmp"},
        {"op": "dm", "user": "zed", "to": "ana", "text": "hi", "ts": 1.0},
    ):
        model.apply(from_json(record))
    assert model.rooms["tmp"].ephemeral and not model.rooms["den"].ephemeral
    model.apply(from_json({"op": "depart", "user": "zed"}))
    assert "zed" not in model.users and not model.conversations
    assert not model.users["ana"].conversations
    assert "zed" not in model.rooms["den"].invited | model.rooms["general"].members
    assert not model.rooms["general"].muted and not model.rooms["random"].bans
    assert model.rooms["tmp"].owner is None and model.rooms["tmp"].members == {"ana"}
