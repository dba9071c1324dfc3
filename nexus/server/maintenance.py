"""`nexus-server check`, `backup DEST` and `export`: the store, read safely while it is in use.

All three read the snapshot and the journal as they stood at one moment
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
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import orjson

from nexus.server.config import load as load_config
from nexus.server.store import DamagedStore
from nexus.server.store.journal import FILE_MODE, JournalStore, snapshot_head, snapshot_pieces

COMMANDS = ("check", "backup", "export")
READ_ATTEMPTS = 10  # compactions are minutes apart on a busy server; a few tries suffice


class Unusable(Exception):
    """The command cannot do its job; the message says why (exit status 1)."""


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
        raise Unusable(f"no store at {data} (nor {journal.name})")
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
    raise Unusable(f"{data} kept changing while it was read; try again")


def counts(store: JournalStore) -> dict[str, int]:
    model = store.model
    return {
        "users": len(model.users),
        "rooms": len(model.rooms),
        "room messages": sum(len(r.history.messages) for r in model.rooms.values()),
        "conversations": len(model.conversations),
        "direct messages": sum(len(c.history.messages) for c in model.conversations.values()),
    }


def _summary(store: JournalStore) -> str:
    return ", ".join(f"{n:,} {what}" for what, n in counts(store).items())


def check(data: Path, out: TextIO) -> None:
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
    out.write(f"store: {_summary(store)}\n")
    out.write(f"admins: {_names(store, store.model.admins)}\n")
    suspended = {key for key, user in store.model.users.items() if user.suspended}
    if suspended:
        out.write(f"suspended: {_names(store, suspended)}\n")
    out.write("ok\n")


def _names(store: JournalStore, keys: set[str]) -> str:
    """Usernames as registered, sorted; "none" (then name one with --admin)."""
    names = sorted((store.model.display(key) for key in keys), key=str.casefold)
    return ", ".join(names) if names else "none (nexus-server --admin NAME names one)"


def backup(data: Path, dest: Path, out: TextIO) -> None:
    if dest.is_dir():
        dest = dest / data.name
    if dest.with_name(dest.name + ".journal").exists():
        raise Unusable(
            f"{dest}.journal exists and would be replayed over the backup: a backup is the"
            " single file DEST; remove it or choose another DEST"
        )
    if dest.resolve() == data.resolve():
        raise Unusable("DEST is the store itself")
    reading = read_store(data)
    store = reading.store
    tmp = dest.with_name(dest.name + ".tmp")
    try:
        pieces = snapshot_pieces(snapshot_head(store.last_record), store.model.to_snapshot())
        size = _write_private(tmp, pieces)
        copy = inspect(tmp)  # the backup must load as the original did
        if counts(copy) != counts(store) or copy.last_record != store.last_record:
            raise Unusable("the backup written does not load as the store did; nothing kept")
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fd = os.open(dest.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    out.write(f"backed up {_summary(store)} (records up to {store.last_record}) to {dest}")
    out.write(f" ({size:,} bytes)\n")


def messages(store: JournalStore, rooms: set[str] | None) -> list[dict[str, Any]]:
    """Room messages (with `room`) and, without a room filter, DMs (with `to`), oldest first."""
    model = store.model
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


def export(data: Path, rooms: list[str] | None, out: TextIO) -> None:
    reading = read_store(data)
    wanted = {r.lstrip("#").lower() for r in rooms} if rooms else None
    if wanted and (missing := wanted - set(reading.store.model.rooms)):
        raise Unusable(f"no such room: {', '.join(sorted(missing))}")
    for message in messages(reading.store, wanted):
        out.write(orjson.dumps(message).decode() + "\n")


def add_source_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", type=Path, metavar="FILE", help="the store's snapshot file")
    p.add_argument("--config", type=Path, metavar="FILE", help="the server's TOML settings")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="nexus-server",
        description="Look after a Nexus store; safe while the server runs.",
    )
    commands = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    c = commands.add_parser(
        "check",
        help="verify the snapshot and journal, print counts; exit 1 on damage",
        description="Load the snapshot and journal as start-up would, changing nothing; "
        "print what they hold. Exit 0 if sound, 1 if damaged.",
    )
    add_source_flags(c)
    b = commands.add_parser(
        "backup",
        help="write a consistent copy of the store to DEST",
        description="Write the store as one verified snapshot file to DEST (a file, or a "
        "directory to put nexus_data.json in). To restore: stop the server, put DEST in "
        "place of the data file and delete its .journal.",
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
    add_source_flags(e)
    return p


def main(argv: list[str]) -> int:
    """Runs one command; the data file is found as the server finds it."""
    args = parser().parse_args(argv)
    try:
        data = load_config(args.config, data=args.data).data
    except ValueError as exc:
        print(f"nexus-server: {exc}", file=sys.stderr)
        return 2
    out = sys.stdout
    try:
        if args.command == "check":
            check(data, out)
        elif args.command == "backup":
            backup(data, args.dest, out)
        else:
            export(data, args.room, out)
    except DamagedStore as exc:
        print(f"nexus-server {args.command}: damaged: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 0  # the reader went away (`export | head`)
    except Unusable as exc:
        print(f"nexus-server {args.command}: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        name = exc.filename or ""
        print(f"nexus-server {args.command}: {name}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0
