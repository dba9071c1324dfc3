"""`nexus-server check`, `backup` and `export`: the real binary, on stores at rest and in use."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import re
import shutil
import sqlite3
import stat
import subprocess

import psycopg
import pytest

from nexus.server import cli, maintenance
from nexus.server.records import from_json
from nexus.server.store.journal import JournalStore, encode_record
from tests.conftest import PASSWORD, needs_postgresql
from tests.postgres import cluster
from tests.procs import ServerProcess, server_command
from tests.wire import Peer

pytestmark = pytest.mark.long


def server(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*server_command(), *args], capture_output=True, text=True, timeout=60)


async def fill(data, rooms=("general",), n=3) -> None:
    """A store with two users, `n` messages in each room and a DM, journal not folded."""
    store = await JournalStore.open(data)
    ts = 1_800_000_000.0
    for name in ("ana", "bob"):
        first = {"admin": True} if name == "ana" else {}
        store.apply(
            from_json({"op": "register", "username": name, "password": "x", "ts": ts, **first})
        )
    store.apply(from_json({"op": "suspend", "user": "ana", "target": "bob", "on": True}))
    for room in rooms:
        if room != "general":
            store.apply(
                from_json({"op": "create", "user": "ana", "room": room, "topic": "", "ts": ts})
            )
        for i in range(n):
            ts += 1
            store.apply(
                from_json(
                    {"op": "say", "user": "ana", "room": room, "text": f"{room} {i}", "ts": ts}
                )
            )
    ts += 1
    store.apply(from_json({"op": "dm", "user": "ana", "to": "bob", "text": "psst", "ts": ts}))
    await store.written()
    store._open_journal().close()  # as if killed: nothing folded


def test_check_prints_counts_of_a_sound_store(tmp_path):
    """A sound store: exit 0, the counts of users, rooms and messages, the
    admins and suspended accounts, `ok`."""
    data = tmp_path / "nexus_data.json"
    asyncio.run(fill(data))
    out = server("check", "--data", str(data))
    assert out.returncode == 0, out.stderr
    assert "2 users" in out.stdout and "3 room messages" in out.stdout
    assert "1 direct messages" in out.stdout and out.stdout.endswith("ok\n")
    assert "admins: ana\n" in out.stdout and "suspended: bob\n" in out.stdout


def test_check_finds_damage_and_changes_nothing(tmp_path):
    """A damaged record mid-journal: exit 1 naming file and offset; a torn tail: exit 0,
    reported and left in place."""
    data = tmp_path / "nexus_data.json"
    asyncio.run(fill(data))
    journal = tmp_path / "nexus_data.json.journal"
    sound = journal.read_bytes()
    journal.write_bytes(sound + b"0123")
    out = server("check", "--data", str(data))
    assert out.returncode == 0 and "4 bytes of an unfinished record" in out.stdout
    assert journal.read_bytes() == sound + b"0123"
    damaged = sound.replace(b"general 1", b"general X")
    journal.write_bytes(damaged)
    out = server("check", "--data", str(data))
    assert out.returncode == 1
    assert f"{journal}: damaged record at byte offset" in out.stderr
    assert "Traceback" not in out.stderr
    assert journal.read_bytes() == damaged


def test_check_of_no_store_exits_1(tmp_path):
    """Nothing at --data: exit 1 saying so."""
    out = server("check", "--data", str(tmp_path / "none.json"))
    assert out.returncode == 1 and "no store" in out.stderr


def test_export_prints_messages_as_json_lines_oldest_first(tmp_path):
    """Room messages and DMs, one JSON object a line, by time; --room keeps one room."""
    data = tmp_path / "nexus_data.json"
    asyncio.run(fill(data, rooms=("general", "ops"), n=2))
    out = server("export", "--data", str(data))
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert [m["text"] for m in lines] == ["general 0", "general 1", "ops 0", "ops 1", "psst"]
    assert lines[-1]["to"] == "bob" and lines[0]["room"] == "general"
    out = server("export", "--data", str(data), "--room", "#ops")
    assert [json.loads(x)["text"] for x in out.stdout.splitlines()] == ["ops 0", "ops 1"]
    out = server("export", "--data", str(data), "--room", "nope")
    assert out.returncode == 1 and "no such room: nope" in out.stderr


def test_backup_is_one_verified_private_file_that_starts_a_server(tmp_path):
    """backup DEST folds snapshot and journal into one 0600 file; a server starts from it."""
    data = tmp_path / "nexus_data.json"
    asyncio.run(fill(data))
    dest = tmp_path / "backups"
    dest.mkdir()
    out = server("backup", str(dest), "--data", str(data))
    assert out.returncode == 0, out.stderr
    copy = dest / "nexus_data.json"
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600
    assert not (dest / "nexus_data.json.journal").exists()
    assert (
        server("export", "--data", str(copy)).stdout == server("export", "--data", str(data)).stdout
    )
    (tmp_path / "backups" / "nexus_data.json.journal").write_bytes(b"")
    out = server("backup", str(dest), "--data", str(data))
    assert out.returncode == 1 and "journal exists" in out.stderr


async def test_backup_while_the_server_takes_messages_holds_every_acknowledged_one(tmp_path):
    """Backups taken during a stream of messages each load, and hold all acknowledged before."""
    data = tmp_path / "nexus_data.json"
    with ServerProcess(data, "--rate-limit", "off") as running:
        peer = await Peer.connect("127.0.0.1", running.port)
        await peer.frame()
        await peer.ok("register", username="ana", password=PASSWORD)
        acknowledged = 0
        for round_ in range(3):
            for i in range(100):
                await peer.send({"id": i, "cmd": "say", "room": "general", "text": f"m{i}"})
            proc = await asyncio.create_subprocess_exec(
                *server_command(), "backup", str(tmp_path / f"b{round_}.json"),
                "--data", str(data), stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            for _ in range(100):
                await peer.reply()
            _, err = await proc.communicate()
            assert proc.returncode == 0, err
            copy = await JournalStore.inspect(tmp_path / f"b{round_}.json")
            kept = len(copy.model.rooms["general"].history.messages)
            assert acknowledged <= kept <= acknowledged + 100
            acknowledged += 100
        await peer.close()


async def compacted_copy(data, folded) -> None:
    """`data` with one more message, folded into a new snapshot (empty journal) in `folded`."""
    shutil.copy(data.with_name(data.name + ".journal"), folded / (data.name + ".journal"))
    store = await JournalStore.open(folded / data.name)
    store.apply(
        from_json({"op": "say", "user": "bob", "room": "general", "text": "late", "ts": 2e9})
    )
    await store.close()


def test_a_compaction_during_the_read_is_noticed_and_read_again(tmp_path, monkeypatch):
    """If the files are replaced between reading the snapshot and the journal, the
    read is made again rather than judging a mismatched pair damaged."""
    data = tmp_path / "nexus_data.json"
    asyncio.run(fill(data))
    folded = tmp_path / "folded"
    folded.mkdir()
    asyncio.run(compacted_copy(data, folded))
    reads = []
    real_read = maintenance._read

    def read_racing_a_compaction(path):
        got = real_read(path)
        reads.append(path.name)
        if len(reads) == 1:  # the snapshot is read; now "compaction" replaces both files
            for name in ("nexus_data.json", "nexus_data.json.journal"):
                os.replace(folded / name, tmp_path / name)
        return got

    monkeypatch.setattr(maintenance, "_read", read_racing_a_compaction)
    reading = maintenance.read_store(data)
    assert len(reads) == 4  # two attempts
    assert [m.text for m in reading.store.model.rooms["general"].history.messages][-1] == "late"


@pytest.mark.parametrize("command", ["check", "backup", "export"])
def test_maintenance_finds_the_store_through_the_config_file(tmp_path, command):
    """--config FILE gives the data path to check, backup and export too."""
    data = tmp_path / "store" / "chat.json"
    data.parent.mkdir()
    asyncio.run(fill(data))
    config = tmp_path / "server.toml"
    config.write_text(f'data = "{data}"\n')
    extra = [str(tmp_path / "copy.json")] if command == "backup" else []
    out = server(command, *extra, "--config", str(config))
    assert out.returncode == 0, out.stderr


def test_a_journal_record_that_does_not_apply_is_damage(tmp_path):
    """A well-formed record the model refuses fails the check like start-up would."""
    data = tmp_path / "nexus_data.json"
    (tmp_path / "nexus_data.json.journal").write_bytes(
        encode_record({"n": 1, "op": "say", "user": "ghost", "room": "general", "text": "x"})
    )
    out = server("check", "--data", str(data))
    assert out.returncode == 1 and "record 1 does not apply" in out.stderr


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgresql", marks=needs_postgresql)])
def test_check_finds_what_start_up_would_trip_on_in_a_database(tmp_path, kind, capsys):
    """A table engine's store whose rows disagree (a user gone, whose
    membership and conversation stay; a room numbered behind its messages):
    exit 1 naming each. PostgreSQL's comes from --config, its indexes
    verified with amcheck once the database has it."""
    source = tmp_path / "nexus_data.json"
    asyncio.run(fill(source))
    if kind == "sqlite":
        dest = str(tmp_path / "nexus_data.db")
        connect = functools.partial(sqlite3.connect, dest, isolation_level=None)
        flags = ["--data", dest]
    else:
        dest = cluster().database_for(tmp_path / "nexus_data.pg")
        connect = functools.partial(psycopg.connect, dest, autocommit=True)
        config = tmp_path / "server.toml"
        config.write_text(f'store = "postgresql"\ndatabase = "{dest}"\n')
        flags = ["--config", str(config)]
    assert cli.main(["migrate", str(source), dest]) == 0
    if kind == "postgresql":
        with contextlib.closing(connect()) as db:
            db.execute("CREATE EXTENSION amcheck")
    capsys.readouterr()
    assert cli.main(["check", *flags]) == 0
    report = capsys.readouterr().out
    assert "store: 2 users, 3 rooms, 3 room messages, 1 conversations" in report
    if kind == "postgresql":
        assert re.search(r"indexes: \d+ verified \(amcheck\), sound", report), report
    with contextlib.closing(connect()) as db:
        db.execute("DELETE FROM users WHERE key = 'bob'")
        db.execute("UPDATE rooms SET last_seq = 1 WHERE name = 'general'")
    assert cli.main(["check", *flags]) == 1
    said = capsys.readouterr().err
    assert said.startswith("nexus-server check: damaged: ") and said.count("\n") == 1
    assert "bob is a member of #general, but that user or room is gone" in said
    assert "the conversation of ana and bob names a user who is gone" in said
    assert "#general has message 3 past its last number, 1" in said
