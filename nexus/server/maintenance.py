"""`nexus-server check`, `backup DEST`, `export` and `migrate SRC DEST`: the
store, read safely while it is in use, on every engine.

The engine is the configuration's: PostgreSQL with `--store postgresql`
(or `--database URL`), else the data file's by its suffix (`.db`,
`.sqlite`: sqlite; anything else: json); for `migrate`, each of SRC and
DEST is a `postgresql://` URL or a file named so.

SQLite: `check` runs SQLite's integrity check and reads the tables as
start-up does, `backup` uses SQLite's online backup (a consistent copy while
the server writes), and `export` reads every message in one read
transaction. `migrate` reads the whole source store and writes a new one of
the other engine (or the same), refusing to overwrite anything.

JSON: all three read the snapshot and the journal as they stood at one moment
and load them with the store's own code (JournalStore.inspect), so they judge the
files exactly as start-up would and never change them.

Reading while the server runs is safe because the server changes the files
in two ways only: it appends whole records to the journal, and compaction
renames a new snapshot and then a new journal into place. So both files
are opened, read to the end through the open descriptors (a renamed file
stays readable as it was), and the journal is cut after its last newline
(a record being written is left out: it is not acknowledged yet). If
either name pointed to another file by the end, a compaction ran in
between and the read is made again. A backup is then written as one new
snapshot (a fold of the two), checksummed like the server's, loaded again
to verify it, and renamed into place.

PostgreSQL (maintenance_pg.py): `check` and `export` read the tables as
sqlite's are read, in one read-only snapshot; `migrate` writes into an
empty database only, in one transaction. `backup` refuses, saying how
pg_dump does it: a backup of a PostgreSQL store is PostgreSQL's to make.

Files (files/upkeep.py): `check` hashes the content every file record
names; `backup` and `migrate` copy that content beside the new store
(`DEST.files/`, or a PostgreSQL store's `--data` FILE.files), refusing if
it exists.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import sqlite3
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import orjson

from nexus.server import maintenance_pg as pg
from nexus.server.config import ENGINES
from nexus.server.config import load as load_config
from nexus.server.files import upkeep
from nexus.server.files.shelf import files_root
from nexus.server.model import DM_WINDOW, ROOM_WINDOW, Model
from nexus.server.store import DamagedStore
from nexus.server.store import tables as sql
from nexus.server.store.engines import engine_of
from nexus.server.store.journal import (
    FILE_MODE,
    JournalStore,
    fsync_directory,
    snapshot_head,
    snapshot_pieces,
)
from nexus.server.store.rows import message_of
from nexus.server.store.words import Vocabulary

EVERYTHING = 1 << 62  # a window that holds every message
READ_ATTEMPTS = 10  # compactions are minutes apart on a busy server; a few tries suffice


class Unusable(Exception):
    """The command cannot do its job (exit status 1): `code` names the kind
    of failure, the message says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(slots=True)
class Reading:
    """The store as loaded from one consistent read of its files."""

    store: JournalStore
    snapshot_bytes: int
    journal_bytes: int  # whole records only
    torn_bytes: int  # after the journal's last newline: a write cut short or under way


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


def _read(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return b""


def _write_private(path: Path, pieces: Iterator[bytes] | list[bytes]) -> int:
    """Writes `pieces` to a new file readable by its owner only, fsynced; returns its size."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, FILE_MODE)
    size = 0
    with os.fdopen(fd, "wb") as f:
        os.fchmod(fd, FILE_MODE)
        for piece in pieces:
            f.write(piece)
            size += len(piece)
        f.flush()
        os.fsync(fd)
    return size


def inspect(path: Path) -> JournalStore:
    """The store at `path`, loaded by the server's own code without changing it."""
    return asyncio.run(JournalStore.inspect(path))


def read_store(data: Path) -> Reading:
    """The store as it stood at one moment, checked by JournalStore.inspect. Raises
    DamagedStore (naming the real files) or Unusable."""
    journal = data.with_name(data.name + ".journal")
    if not data.exists() and not journal.exists():
        raise Unusable("no_store", f"no store at {data} (nor {journal.name})")
    for _ in range(READ_ATTEMPTS):
        before = (_identity(data), _identity(journal))
        snapshot, log = _read(data), _read(journal)
        if (_identity(data), _identity(journal)) != before:
            continue  # a compaction renamed files while they were read
        whole = log.rfind(b"\n") + 1
        with tempfile.TemporaryDirectory(prefix="nexus-") as tmp:  # mode 0700
            copy = Path(tmp) / data.name
            if snapshot:
                _write_private(copy, [snapshot])
            _write_private(copy.with_name(copy.name + ".journal"), [log[:whole]])
            try:
                store = inspect(copy)
            except DamagedStore as exc:
                if (_identity(data), _identity(journal)) != before:
                    continue
                raise DamagedStore(str(exc).replace(str(copy), str(data))) from None
        return Reading(store, len(snapshot), whole, len(log) - whole)
    raise Unusable("changing", f"{data} kept changing while it was read; try again")


def counts(model: Model) -> dict[str, int]:
    """How many of each thing a store holds (guests and their rooms are never stored)."""
    return {
        "users": sum(1 for user in model.users.values() if not user.guest),
        "rooms": sum(1 for room in model.rooms.values() if not room.ephemeral),
        "room messages": sum(len(r.history.messages) for r in model.rooms.values()),
        "conversations": len(model.conversations),
        "direct messages": sum(len(c.history.messages) for c in model.conversations.values()),
        "files": len(model.files),
    }


def _summary(found: dict[str, int]) -> str:
    return ", ".join(f"{n:,} {what}" for what, n in found.items())


def check(data: Path, out: TextIO, database: str = "") -> None:
    """Reports what the store holds; raises DamagedStore (or Unusable) if it
    cannot be trusted. `database`: a PostgreSQL store's URL (`data` then
    names only where its files are)."""
    if database:
        check_postgres(database, data, out)
        return
    if engine_of(data) == "sqlite":
        check_database(data, out)
        return
    reading = read_store(data)
    store = reading.store
    if reading.snapshot_bytes:
        out.write(f"snapshot: {data} ({reading.snapshot_bytes:,} bytes, checksum ok)\n")
    else:
        out.write(f"snapshot: none yet at {data} (everything is in the journal)\n")
    out.write(
        f"journal: {store.journal_path.name} ({reading.journal_bytes:,} bytes, "
        f"records up to {store.last_record})\n"
    )
    if reading.torn_bytes:
        out.write(
            f"journal: ends with {reading.torn_bytes:,} bytes of an unfinished record (a write"
            " under way, or cut short by a crash: start-up drops it)\n"
        )
    out.write(f"store: {_summary(counts(store.model))}\n")
    _check_files(store.model, data, out)
    _roles(store.model, out)


def _check_files(model: Model, data: Path, out: TextIO) -> None:
    """The files' line of `check`; damage if content a record names is missing or altered."""
    line, problems = upkeep.verify(model, files_root(data))
    out.write(line + "\n")
    if problems:
        raise DamagedStore("; ".join(problems[:5]))


def _copy_files(model: Model, data: Path, dest: Path) -> str:
    """Copies the files of a store at `data` beside its copy at `dest`: the
    words that say so, for the report."""
    copied = upkeep.copy(model, files_root(data), files_root(dest))
    return f" and {copied:,} files' content to {files_root(dest)}" if copied else ""


def _no_files_at(dest: Path) -> None:
    if files_root(dest).exists():
        raise Unusable(
            "exists", f"{files_root(dest)} exists: never overwritten; remove it or choose another"
        )


def _roles(model: Model, out: TextIO) -> None:
    """The admins and suspended accounts, the end of `check`'s report."""
    out.write(f"admins: {_names(model, model.admins)}\n")
    suspended = {key for key, user in model.users.items() if user.suspended}
    if suspended:
        out.write(f"suspended: {_names(model, suspended)}\n")
    out.write("ok\n")


def _names(model: Model, keys: set[str]) -> str:
    """Usernames as registered, sorted; "none" (then name one with --admin)."""
    names = sorted((model.display(key) for key in keys), key=str.casefold)
    return ", ".join(names) if names else "none (nexus-server --admin NAME names one)"


def backup(data: Path, dest: Path, out: TextIO, database: str = "") -> None:
    if database:
        url = pg.shown(database)
        raise Unusable(
            "use_pg_dump",
            f"a PostgreSQL store is backed up with pg_dump: pg_dump --format=custom --file=FILE"
            f" '{url}', then a copy of {files_root(data)} (README, Backups, checks and"
            f" exports); for one file any engine reads: nexus-server migrate '{url}' DEST.db"
            f" --data {data}",
        )
    if dest.is_dir():
        dest = dest / data.name
    if engine_of(data) == "sqlite":
        backup_database(data, dest, out)
        return
    if dest.with_name(dest.name + ".journal").exists():
        raise Unusable(
            "exists",
            f"{dest}.journal exists and would be replayed over the backup: a backup is the"
            " single file DEST; remove it or choose another DEST",
        )
    if dest.resolve() == data.resolve():
        raise Unusable("same_store", "DEST is the store itself")
    _no_files_at(dest)
    reading = read_store(data)
    store = reading.store
    with _replacing(dest) as tmp:
        pieces = snapshot_pieces(snapshot_head(store.last_record), store.model.to_snapshot())
        size = _write_private(tmp, pieces)
        copy = inspect(tmp)  # the backup must load as the original did
        if counts(copy.model) != counts(store.model) or copy.last_record != store.last_record:
            raise Unusable(
                "not_verified", "the backup written does not load as the store did; nothing kept"
            )
    files = _copy_files(store.model, data, dest)
    out.write(f"backed up {_summary(counts(store.model))} (records up to {store.last_record})")
    out.write(f" to {dest} ({size:,} bytes){files}\n")


def messages(model: Model, rooms: set[str] | None) -> list[dict[str, Any]]:
    """Room messages (with `room`) and, without a room filter, DMs (with `to`), oldest first."""
    found = [
        m
        for room in model.rooms.values()
        if rooms is None or room.name in rooms
        for m in room.history.messages
    ]
    if rooms is None:
        found += [m for c in model.conversations.values() for m in c.history.messages]
    found.sort(key=lambda m: m.ts)  # stable: each history is already in order
    return [m.wire() for m in found]


def export(
    data: Path, rooms: list[str] | None, out: TextIO, files: Path | None = None, database: str = ""
) -> None:
    """Prints the messages; with `files`, also copies the files they carry
    there, each as `<id>/<name>` (what a message's attachment names).
    `database`: a PostgreSQL store's URL."""
    wanted = {r.lstrip("#").lower() for r in rooms} if rooms else None
    if files is not None and files.exists() and any(files.iterdir()):
        raise Unusable("exists", f"{files} is not empty: an export never overwrites")
    if database:
        with pg.reading(database) as db:
            carried = export_rows(db, wanted, out, files is not None)
    elif engine_of(data) == "sqlite":
        carried = export_database(data, wanted, out, files is not None)
    else:
        model = read_store(data).store.model
        if wanted and (missing := wanted - set(model.rooms)):
            raise Unusable("no_such_room", f"no such room: {', '.join(sorted(missing))}")
        carried = {}
        for message in messages(model, wanted):
            out.write(orjson.dumps(message).decode() + "\n")
            for a in message.get("files", ()) if files is not None else ():
                carried[a["id"]] = (model.files[a["id"]].sha, a["name"])
    if files is not None:
        upkeep.export(files_root(data), carried, files)


# -- the sqlite engine ------------------------------------------------------------------


@contextlib.contextmanager
def reading_database(path: Path) -> Iterator[sqlite3.Connection]:
    """A read-only connection to the database at `path`, checked to be Nexus's."""
    if not path.exists():
        raise Unusable("no_store", f"no store at {path}")
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            sql.check_schema(db, path)
            if db.execute("PRAGMA user_version").fetchone()[0] == 0:
                raise Unusable("no_store", f"{path} is an empty database, not a Nexus store yet")
            yield db
    except sqlite3.DatabaseError as exc:
        raise DamagedStore(f"{path}: not a usable Nexus database ({exc})") from None


def check_database(path: Path, out: TextIO) -> None:
    with reading_database(path) as db:
        problems = [row[0] for row in db.execute("PRAGMA integrity_check")]
        if problems != ["ok"]:
            raise DamagedStore(f"{path}: " + "; ".join(problems[:5]))
        version = db.execute("PRAGMA user_version").fetchone()[0]
        out.write(f"database: {path} ({path.stat().st_size:,} bytes, schema {version}, sound)\n")
        model = check_tables(db, str(path), out)
        indexed = db.execute("SELECT value FROM meta WHERE key = 'indexed'").fetchone()[0]
        waiting = db.execute("SELECT COUNT(*) FROM messages WHERE id > ?", (indexed,))
        out.write(f"search: {waiting.fetchone()[0]:,} messages not indexed yet\n")
    _check_files(model, path, out)
    _roles(model, out)


def check_postgres(url: str, data: Path, out: TextIO) -> None:
    """`check` of a PostgreSQL store: its tables in one snapshot, its indexes
    (amcheck, where installed), and its files beside `data`."""
    with pg.reading(url) as db:
        version = pg.schema_of(db)
        out.write(f"database: {pg.shown(url)} ({pg.describe(db)}, schema {version})\n")
        out.write(pg.index_check(db) + "\n")
        model = check_tables(db, pg.shown(url), out)
    _check_files(model, data, out)
    _roles(model, out)


def check_tables(db: Any, where: str, out: TextIO) -> Model:
    """What `check` says of any table engine's tables (their consistency,
    then their counts); the model as start-up reads it."""
    problems = sql.inconsistencies(db)
    if problems:
        raise DamagedStore(f"{where}: " + "; ".join(problems[:5]))
    model = sql.read_model(db, 1, 1)
    out.write(f"store: {_summary(sql.counts(db))}\n")
    return model


def backup_database(path: Path, dest: Path, out: TextIO) -> None:
    if dest.exists():
        raise Unusable(
            "exists", f"{dest} exists: a backup never overwrites; remove it or choose another"
        )
    _no_files_at(dest)
    with _replacing(dest) as tmp, reading_database(path) as db:
        found = sql.counts(db)
        _write_private(tmp, [])
        with contextlib.closing(sqlite3.connect(tmp)) as copy:
            db.backup(copy)  # one consistent read, while the server writes
            copy.execute("PRAGMA journal_mode=DELETE")  # one file, no -wal beside it
            if [row[0] for row in copy.execute("PRAGMA integrity_check")] != ["ok"]:
                raise Unusable("not_verified", "the backup written is not sound; nothing kept")
            copied = sql.counts(copy)  # the server may have written more meanwhile
            if any(copied[what] < n for what, n in found.items()):
                raise Unusable(
                    "not_verified", "the backup written holds less than the store; nothing kept"
                )
            found = copied
            model = sql.read_model(copy, 1, 1)  # the files the copy names
    files = _copy_files(model, path, dest)
    out.write(f"backed up {_summary(found)} to {dest} ({dest.stat().st_size:,} bytes){files}\n")


def export_database(
    path: Path, rooms: set[str] | None, out: TextIO, with_files: bool = False
) -> dict[str, tuple[str, str]]:
    """Prints the database's messages; with `with_files`, the files they
    carry (id -> (sha, name)), read in the same transaction."""
    with reading_database(path) as db:
        db.execute("BEGIN")  # the messages and the files as of one moment
        return export_rows(db, rooms, out, with_files)


def export_rows(
    db: Any, rooms: set[str] | None, out: TextIO, with_files: bool
) -> dict[str, tuple[str, str]]:
    """`export` from any table engine's tables, read in one transaction."""
    carried: dict[str, tuple[str, str]] = {}
    shas = dict(db.execute("SELECT id, sha FROM files").fetchall()) if with_files else {}
    query, args = sql.EXPORT, list[str]()
    if rooms is not None:
        missing = rooms - {row[0] for row in db.execute("SELECT name FROM rooms")}
        if missing:
            raise Unusable("no_such_room", f"no such room: {', '.join(sorted(missing))}")
        marks = ",".join("?" * len(rooms))
        query = query.replace(" ORDER BY", f" AND m.scope IN ({marks}) ORDER BY")
        args = sorted(rooms)
    for row in db.execute(query, args):
        message = message_of(row).wire()
        out.write(orjson.dumps(message).decode() + "\n")
        for a in message.get("files", ()) if with_files else ():
            carried[a["id"]] = (shas[a["id"]], a["name"])
    return carried


def read_database(path: Path) -> Model:
    """Everything the database at `path` holds, every message included."""
    with reading_database(path) as db:
        return sql.read_model(db, EVERYTHING, EVERYTHING, load=True)


# -- migrate ----------------------------------------------------------------------------


def migrate(source: str, dest: str, out: TextIO, data: Path = ENGINES["postgresql"]) -> None:
    """Copies every user, room, conversation, message and file from `source`
    to a new store at `dest`: each a PostgreSQL database's URL, or a file of
    the engine its suffix names. `data` is where a PostgreSQL store's files
    are (its server's --data)."""
    into_database = pg.is_url(dest)
    if not into_database:
        _not_taken(Path(dest))
    files_only = not (pg.is_url(source) or into_database)
    if source == dest or (files_only and _same(source, dest)):
        raise Unusable("same_store", "DEST is the store itself")
    source_data = data if pg.is_url(source) else Path(source)
    dest_data = data if into_database else Path(dest)
    _no_files_at(dest_data)
    model = _read_everything(source)
    if model.files and not files_root(source_data).exists():
        raise Unusable(
            "no_files",
            f"{files_root(source_data)}, where the content of {len(model.files):,} files should"
            " be, is missing (is --data the server's?); nothing written",
        )
    if into_database:
        files = _write_postgres(model, dest, source_data, dest_data)
    else:
        if engine_of(Path(dest)) == "sqlite":
            _write_database(model, Path(dest))
        else:
            _write_snapshot(model, Path(dest), out)
        files = _copy_files(model, source_data, dest_data)
    shown = f"from {pg.shown(source)} to {pg.shown(dest)}"
    out.write(f"migrated {_summary(counts(model))} {shown}{files}\n")


def _not_taken(dest: Path) -> None:
    journal = dest.with_name(dest.name + ".journal")
    for taken in (dest, journal, dest.with_name(dest.name + "-wal")):
        if taken.exists():
            raise Unusable(
                "exists", f"{taken} exists: migrate never overwrites; remove it or choose another"
            )


def _same(source: str, dest: str) -> bool:
    return Path(source).resolve() == Path(dest).resolve()


def _read_everything(source: str) -> Model:
    """Everything the store at `source` (a URL or a file) holds, every message included."""
    if pg.is_url(source):
        with pg.reading(source) as db:
            return sql.read_model(db, EVERYTHING, EVERYTHING, load=True)
    if engine_of(Path(source)) == "sqlite":
        return read_database(Path(source))
    return read_store(Path(source)).store.model


def _write_postgres(model: Model, url: str, source_data: Path, dest_data: Path) -> str:
    """Writes `model` into the empty database at `url` in one transaction,
    and copies its files beside `dest_data` before that commits (removed
    again if it does not); the words that say so."""
    try:
        with pg.writing(url, model) as db:
            if sql.counts(db) != counts(model):
                raise Unusable(
                    "not_verified", "the database written does not hold what was read; nothing kept"
                )
            return _copy_files(model, source_data, dest_data)
    except BaseException:
        shutil.rmtree(files_root(dest_data), ignore_errors=True)  # it was not there before
        raise


def _write_database(model: Model, dest: Path) -> None:
    with _replacing(dest) as tmp:
        _write_private(tmp, [])
        with contextlib.closing(sqlite3.connect(tmp, isolation_level=None)) as db:
            with sql.transaction(db):
                sql.create(db, model)
            vocabulary = Vocabulary()
            while True:
                with sql.transaction(db):
                    if not sql.index_some(db, 10_000, vocabulary):
                        break
            if sql.counts(db) != counts(model):
                raise Unusable(
                    "not_verified", "the database written does not hold what was read; nothing kept"
                )


def _write_snapshot(model: Model, dest: Path, out: TextIO) -> None:
    with _replacing(dest) as tmp:
        _write_private(tmp, snapshot_pieces(snapshot_head(0), model.to_snapshot()))
    over = [
        name
        for name, history in [
            *((room.name, room.history) for room in model.rooms.values()),
            *(("a conversation", conv.history) for conv in model.conversations.values()),
        ]
        if len(history.messages) > (DM_WINDOW if name == "a conversation" else ROOM_WINDOW)
    ]
    if over:
        out.write(
            f"note: the json engine keeps the newest {ROOM_WINDOW} messages of a room and"
            f" {DM_WINDOW} of a conversation (--history-limit, --dm-history-limit): started"
            f" with less, it drops older ones in {len(over)} of them\n"
        )


@contextlib.contextmanager
def _replacing(dest: Path) -> Iterator[Path]:
    """A temporary file beside `dest` to write; it takes `dest`'s place (and
    the directory is synced) only if the block ends without an error, and is
    removed otherwise, so `dest` is whole or absent."""
    tmp = dest.with_name(dest.name + ".tmp")
    try:
        yield tmp
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_directory(dest.parent)


def add_source_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data",
        type=Path,
        metavar="FILE",
        help="the store's file: a json snapshot, or a sqlite database (.db, .sqlite); with"
        " --database, where its files are (the server's --data)",
    )
    p.add_argument(
        "--database",
        metavar="URL",
        help="a PostgreSQL store: its database, postgresql://USER@HOST:PORT/NAME",
    )
    p.add_argument("--config", type=Path, metavar="FILE", help="the server's TOML settings")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="nexus-server",
        description="Look after a Nexus store; safe while the server runs.",
    )
    commands = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    c = commands.add_parser(
        "check",
        help="verify the store, print counts; exit 1 on damage",
        description="Load the store as start-up would (json: the snapshot and journal; "
        "sqlite: SQLite's integrity check, then the tables; postgresql: one read-only "
        "snapshot of the tables, their indexes with amcheck where installed), changing "
        "nothing; print what it holds. Exit 0 if sound, 1 if damaged.",
    )
    add_source_flags(c)
    b = commands.add_parser(
        "backup",
        help="write a consistent copy of the store to DEST",
        description="Write the store as one verified file to DEST (a file, or a directory "
        "to put it in under the store's name): json, a snapshot; sqlite, an online backup "
        "of the database; uploaded files' content goes to DEST.files. To restore: stop the "
        "server, put DEST (and DEST.files) in place of the data file (and its .files) and "
        "delete what is beside it (json: its .journal; sqlite: its -wal and -shm). "
        "A PostgreSQL store is backed up with pg_dump (this says how, and exits 1).",
    )
    b.add_argument("dest", type=Path, metavar="DEST")
    add_source_flags(b)
    e = commands.add_parser(
        "export",
        help="print the stored messages as JSON lines",
        description="Print every stored message as one JSON object a line, oldest first: "
        "room messages (with `room`) and direct messages (with `to`).",
    )
    e.add_argument(
        "--room", action="append", metavar="ROOM", help="only this room (no DMs); repeatable"
    )
    e.add_argument(
        "--files",
        type=Path,
        metavar="DIR",
        help="also copy the files the messages carry to DIR, as DIR/<id>/<name>",
    )
    add_source_flags(e)
    m = commands.add_parser(
        "migrate",
        help="copy a store to a new one of another engine (by suffix, or a URL)",
        description="Copy every user, room, conversation, message and file from SRC to a "
        "new store DEST: each a PostgreSQL database's URL (postgresql://...) or a file of the "
        "engine its suffix names (.db or .sqlite: sqlite; anything else: json). Never "
        "overwrites: a database DEST must be empty, and is written in one transaction. Run "
        "it with the server stopped, or on a backup.",
    )
    m.add_argument("source", metavar="SRC")
    m.add_argument("dest", metavar="DEST")
    m.add_argument(
        "--data",
        type=Path,
        default=ENGINES["postgresql"],
        metavar="FILE",
        help="where a PostgreSQL SRC's or DEST's files are: its server's --data (default"
        " %(default)s; they are in FILE.files)",
    )
    return p


def main(argv: list[str]) -> int:
    """Runs one command; the data file is found as the server finds it."""
    args = parser().parse_args(argv)
    out = sys.stdout
    try:
        if args.command == "migrate":
            migrate(args.source, args.dest, out, args.data)
            return 0
        store = "postgresql" if args.database else None
        config = load_config(args.config, data=args.data, store=store, database=args.database)
    except ValueError as exc:
        print(f"nexus-server: {exc}", file=sys.stderr)
        return 2
    except (DamagedStore, Unusable, pg.DatabaseUnusable, OSError) as exc:
        return _failed(args.command, exc)
    data = config.data
    database = config.database if config.store == "postgresql" else ""
    try:
        if args.command == "check":
            check(data, out, database)
        elif args.command == "backup":
            backup(data, args.dest, out, database)
        else:
            export(data, args.room, out, args.files, database)
    except BrokenPipeError:
        return 0  # the reader went away (`export | head`)
    except (DamagedStore, Unusable, pg.DatabaseUnusable, OSError) as exc:
        return _failed(args.command, exc)
    return 0


def _failed(command: str, exc: DamagedStore | Unusable | pg.DatabaseUnusable | OSError) -> int:
    """Says why `command` could not be done; exit status 1."""
    if isinstance(exc, DamagedStore):
        print(f"nexus-server {command}: damaged: {exc}", file=sys.stderr)
    elif isinstance(exc, OSError):
        name = exc.filename or ""
        print(f"nexus-server {command}: {name}: {exc.strerror or exc}", file=sys.stderr)
    else:
        print(f"nexus-server {command}: {exc.code}: {exc}", file=sys.stderr)
    return 1
