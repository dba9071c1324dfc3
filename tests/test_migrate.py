"""`nexus-server migrate SRC DEST`: a store moves between engines with
nothing lost, checked with the real binary."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest

from nexus.server import cli
from nexus.server.files.shelf import files_root
from nexus.server.model import Message
from nexus.server.records import from_json
from nexus.server.store.journal import JournalStore
from tests.conftest import needs_postgresql
from tests.postgres import cluster
from tests.procs import ServerProcess, server_command
from tests.wire import Peer

pytestmark = pytest.mark.long

TS = 1_800_000_000.0

# Every kind of record the journal holds, in an order that leaves traces of each.
RECORDS = [
    {"op": "register", "username": "Ana", "password": "$argon2id$x", "ts": TS, "admin": True},
    {"op": "register", "username": "bob", "password": "$argon2id$y", "ts": TS + 1},
    {"op": "register", "username": "cy", "password": "$argon2id$z", "ts": TS + 2},
    {"op": "token", "user": "bob", "digest": "d" * 64, "ts": TS + 3},
    {"op": "password", "user": "cy", "password": "$argon2id$w", "ts": TS + 4},
    {"op": "bio", "user": "ana", "text": "runs the place"},
    {"op": "away", "user": "bob", "text": "lunch"},
    {"op": "seen", "user": "cy", "ts": TS + 5},
    {"op": "create", "user": "ana", "room": "ops", "topic": "deploys", "ts": TS + 6},
    {"op": "create", "user": "ana", "room": "vault", "topic": "", "ts": TS + 7, "private": True},
    {"op": "create", "user": "bob", "room": "tmp", "topic": "", "ts": TS + 8},
    {"op": "join", "user": "bob", "room": "ops"},
    {"op": "join", "user": "cy", "room": "ops"},
    {"op": "invite", "user": "ana", "room": "vault", "target": "cy"},
    {"op": "topic", "user": "ana", "room": "ops", "topic": "deploys, Fridays never"},
    {"op": "moderator", "user": "ana", "room": "ops", "target": "bob", "on": True},
    {
        "op": "say",
        "user": "ana",
        "room": "ops",
        "text": "ship it @bob",
        "ts": TS + 9,
        "mentions": ["bob"],
    },
    {"op": "say", "user": "bob", "room": "ops", "text": "waves", "ts": TS + 10, "action": True},
    {"op": "say", "user": "cy", "room": "ops", "text": "why", "ts": TS + 11, "reply_to": 1},
    {"op": "say", "user": "cy", "room": "general", "text": "hello all", "ts": TS + 11},
    {
        "op": "edit",
        "user": "ana",
        "room": "ops",
        "seq": 1,
        "text": "ship it now @bob",
        "ts": TS + 12,
        "mentions": ["bob"],
    },
    {"op": "react", "user": "bob", "room": "ops", "seq": 1, "emoji": "🚀", "on": True},
    {"op": "react", "user": "cy", "room": "ops", "seq": 1, "emoji": "🚀", "on": True},
    {"op": "erase", "user": "cy", "room": "ops", "seq": 3},
    {"op": "read", "user": "bob", "room": "ops", "seq": 2},
    {"op": "dm", "user": "ana", "to": "bob", "text": "psst", "ts": TS + 13},
    {"op": "dm", "user": "bob", "to": "ana", "text": "what", "ts": TS + 14, "reply_to": 1},
    {"op": "dm", "user": "cy", "to": "cy", "text": "note to self", "ts": TS + 15},
    {"op": "read", "user": "ana", "with": "bob", "seq": 2},
    {"op": "react", "user": "ana", "with": "bob", "seq": 2, "emoji": "👀", "on": True},
    {"op": "mute", "user": "ana", "room": "ops", "target": "cy", "on": True},
    {"op": "kick", "user": "ana", "room": "ops", "target": "cy"},
    {
        "op": "ban",
        "user": "ana",
        "room": "general",
        "target": "cy",
        "reason": "spam",
        "ts": TS + 16,
    },
    {"op": "ban", "user": "ana", "room": "random", "target": "bob", "reason": "", "ts": TS + 17},
    {"op": "unban", "user": "ana", "room": "random", "target": "bob"},
    {"op": "suspend", "user": "ana", "target": "cy", "on": True},
    {"op": "leave", "user": "bob", "room": "tmp"},
    {"op": "delete", "user": "ana", "room": "tmp"},
    {"op": "admin", "user": "ana", "target": "bob", "on": True},
]
# A file's record (its content is the test's to put in place, or not).
UPLOAD = {
    "op": "upload",
    "user": "bob",
    "id": "F" * 22,
    "name": "a.txt",
    "size": 1,
    "kind": "text/plain",
    "ts": TS + 18,
    "sha": "0" * 64,
}


def server(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*server_command(), *args], capture_output=True, text=True, timeout=60)


def everything(path: Path) -> bytes:
    """The json store at `path` as one document, messages in their wire form."""
    store = asyncio.run(JournalStore.inspect(path))
    return orjson.dumps(
        store.model.to_snapshot(), default=Message.wire, option=orjson.OPT_PASSTHROUGH_DATACLASS
    )


async def fill(path: Path, more: tuple[dict[str, Any], ...] = ()) -> None:
    store = await JournalStore.open(path)
    for record in [*RECORDS, *more]:
        store.apply(from_json(record))
    await store.close()


def test_a_store_of_every_kind_of_record_goes_to_sqlite_and_back_unchanged(tmp_path):
    source, db, back = tmp_path / "source.json", tmp_path / "moved.db", tmp_path / "back.json"
    asyncio.run(fill(source))
    moved = server("migrate", str(source), str(db))
    assert moved.returncode == 0, moved.stderr
    assert "migrated 3 users" in moved.stdout
    returned = server("migrate", str(db), str(back))
    assert returned.returncode == 0, returned.stderr
    assert everything(back) == everything(source)
    exports = [server("export", "--data", str(path)) for path in (source, db, back)]
    assert all(e.returncode == 0 for e in exports), [e.stderr for e in exports]
    assert exports[0].stdout == exports[1].stdout == exports[2].stdout
    assert len(exports[0].stdout.splitlines()) == 7
    rooms = [server("export", "--room", "ops", "--data", str(p)) for p in (source, db)]
    assert rooms[0].stdout == rooms[1].stdout and rooms[0].stdout.count("\n") == 3
    checks = [server("check", "--data", str(path)) for path in (source, db)]
    assert all(c.returncode == 0 for c in checks), [c.stderr for c in checks]
    summary = "store: 3 users, 5 rooms, 4 room messages, 2 conversations, 3 direct messages"
    for check in checks:
        assert summary in check.stdout
        assert "admins: Ana, bob" in check.stdout and "suspended: cy" in check.stdout


async def test_a_migrated_store_serves_what_it_held(tmp_path):
    """The server started on the migrated database answers as on the original."""
    source, db = tmp_path / "source.json", tmp_path / "moved.db"
    await fill(source)
    moved = await asyncio.to_thread(server, "migrate", str(source), str(db))
    assert moved.returncode == 0, moved.stderr
    replies = []
    for data, engine in ((source, "json"), (db, "sqlite")):
        with ServerProcess(data, "--store", engine) as running:
            peer = await Peer.connect("127.0.0.1", running.port)
            await peer.frame()
            await peer.ok("register", username="dee", password="correct horse")
            replies.append(
                [
                    (await peer.ok("history", room="ops"))["messages"],
                    (await peer.ok("whois", username="ana"))["user"]["bio"],
                    sorted(r["name"] for r in (await peer.ok("rooms"))["rooms"]),
                    (await peer.ok("history", room="general"))["messages"],
                ]
            )
            await peer.close()
    assert replies[0] == replies[1]


def test_migrate_never_overwrites(tmp_path):
    source, dest = tmp_path / "source.json", tmp_path / "taken.db"
    asyncio.run(fill(source))
    dest.write_bytes(b"precious")
    done = server("migrate", str(source), str(dest))
    assert done.returncode == 1 and "never overwrites" in done.stderr
    assert dest.read_bytes() == b"precious"
    missing = server("migrate", str(tmp_path / "nothing.db"), str(tmp_path / "out.json"))
    assert missing.returncode == 1 and "no store" in missing.stderr
    assert not (tmp_path / "out.json").exists()


def test_backup_of_a_database_in_use_is_one_sound_file(tmp_path):
    """`backup` of a sqlite store while its server writes: one file, private,
    which a server starts on with everything acknowledged before it."""
    data, dest = tmp_path / "live.db", tmp_path / "copy.db"

    async def scenario() -> None:
        with ServerProcess(data, "--store", "sqlite", "--rate-limit", "off") as running:
            peer = await Peer.connect("127.0.0.1", running.port)
            await peer.frame()
            await peer.ok("register", username="ana", password="correct horse")
            await peer.burst(
                [{"cmd": "say", "room": "general", "text": f"m{i}"} for i in range(300)]
            )
            done = await asyncio.to_thread(server, "backup", str(dest), "--data", str(data))
            assert done.returncode == 0, done.stderr
            assert "backed up 1 users" in done.stdout
            await peer.close()
        assert [p.name for p in tmp_path.glob("copy.db*")] == ["copy.db"]
        assert dest.stat().st_mode & 0o077 == 0
        with ServerProcess(dest, "--store", "sqlite") as restored:
            peer = await Peer.connect("127.0.0.1", restored.port)
            await peer.frame()
            await peer.ok("login", username="ana", password="correct horse")
            page = await peer.ok("history", room="general", limit=500)
            assert [m["text"] for m in page["messages"]] == [f"m{i}" for i in range(300)]
            await peer.close()

    asyncio.run(scenario())
    again = server("backup", str(dest), "--data", str(data))
    assert again.returncode == 1 and "never overwrites" in again.stderr


@needs_postgresql
def test_migrate_into_a_database_writes_an_empty_one_whole_or_not_at_all(tmp_path, capsys):
    """Into PostgreSQL: only an empty database, and a migrate that fails
    midway (content a file record names is gone) leaves it empty, with no
    files beside it (one whose files directory is missing is refused
    first); a bad or unreachable URL: one line with its code."""
    source, plain, pg_data = tmp_path / "source.json", tmp_path / "plain.json", tmp_path / "s.pg"
    url = cluster().database_for(pg_data)
    asyncio.run(fill(source, (UPLOAD,)))
    code, said = nexus_server(capsys, "migrate", str(source), url, "--data", str(pg_data))
    assert code == 1 and said.startswith("nexus-server migrate: no_files: "), said
    files_root(source).mkdir()  # but not the content
    assert nexus_server(capsys, "migrate", str(source), url, "--data", str(pg_data)) == (
        1,
        f"nexus-server migrate: {files_root(source)}/00/{'0' * 64}: No such file or directory\n",
    )
    assert not files_root(pg_data).exists()
    with psycopg.connect(url) as db:
        assert tables(db) == 0
    asyncio.run(fill(plain))
    code, said = nexus_server(capsys, "migrate", str(plain), url, "--data", str(pg_data))
    assert code == 0 and "migrated 3 users" in said, said
    before = nexus_server(capsys, "export", "--database", url)
    code, said = nexus_server(capsys, "migrate", str(plain), url, "--data", str(pg_data))
    assert code == 1 and said.startswith("nexus-server migrate: not_empty: "), said
    assert nexus_server(capsys, "export", "--database", url) == before
    assert before[1].count("\n") == 7
    foreign = cluster().database_for(tmp_path / "foreign.pg")
    with psycopg.connect(foreign) as db:
        db.execute("CREATE TABLE accounts (id INTEGER)")
    code, said = nexus_server(capsys, "migrate", str(plain), foreign)
    assert code == 1 and "holds 1 tables" in said, said
    with psycopg.connect(foreign) as db:
        assert tables(db) == 1
    for bad, kind in [
        ("postgresql://nexus:hunter2@127.0.0.1:1/none", "unreachable"),
        ("postgresql://nexus:hunter2@[::1/none", "bad_url"),
        ("postgresql://nexus@127.0.0.1:port/none", "bad_url"),
    ]:
        code, said = nexus_server(capsys, "migrate", str(plain), bad)
        assert code == 1 and said.startswith(f"nexus-server migrate: {kind}: "), said
        assert said.count("\n") == 1 and "hunter2" not in said
    code, said = nexus_server(capsys, "check", "--database", cluster().url())
    assert code == 1 and said.startswith("nexus-server check: no_store: "), said


def nexus_server(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    """The exit status of `nexus-server ARGV`, run in this process (no
    start-up to wait for), and what it printed: its errors if it failed."""
    code = cli.main(list(argv))
    printed = capsys.readouterr()
    return code, printed.err if code else printed.out


def tables(db: psycopg.Connection[Any]) -> int:
    """How many tables the database's public schema holds."""
    found = db.execute("SELECT COUNT(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()
    return int(found[0]) if found else 0
