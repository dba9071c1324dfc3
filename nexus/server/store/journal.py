"""The journal engine: a readable JSON snapshot plus an append-only journal.

Files, for a data path `nexus_data.json`:
- `nexus_data.json`: a JSON snapshot of the whole model, replaced atomically
  (temporary file, fsync, rename, fsync of the directory); its last key,
  `crc32`, is the CRC-32 of every byte before it, so damage anywhere in it
  stops start-up instead of being served;
- `nexus_data.json.journal`: one line a change since then,
  `<crc32 as 8 hex digits> <record as JSON>\\n`; records are numbered (`n`)
  and the snapshot names the last one it holds, so a crash between writing
  a snapshot and cutting the journal replays nothing twice, and a journal
  that does not continue the snapshot is refused.

Both files hold password hashes and every DM: they are created 0600.

Guests (IRC clients let in without an account) and the ephemeral rooms they
create are never written: `apply()` asks the model (`Model.journaled`) and
applies such records to memory only, and the snapshot leaves them out. A
guest's message in a stored room is written, carrying the guest's name
(`"guest": "zed"` in the record, `"guest": true` in the message), since no
user of that name is stored; a server older than this reads such a record
as damage and refuses to start rather than misreading it. The numbers of
records (`n`) count written records only.

`apply()` changes the model at once (so the next request sees the change)
and queues the record; everything applied in one pass of the event loop is
written in one write at the start of the next (group commit), handed to the
operating system, with fsync too if asked. Then the listeners hear
`written`: the outbox flushes there, so no reply or event leaves before the
changes it tells of are written. `commit()` also waits for the write, for
a caller that must not go on before it. If a write fails (disk full, I/O
error) the journal is cut back to its last whole record, every change not
yet written is refused, and the model is reloaded from disk: nothing
unacknowledged lingers in memory, and writes resume when the disk does.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import os
import re
import time
import zlib
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import aiofiles
import aiofiles.os
import orjson

from nexus.protocol import DEFAULT_ROOMS
from nexus.server.model import DM_WINDOW, ROOM_WINDOW, Message, Model
from nexus.server.records import Record, from_json
from nexus.server.search import SearchIndex
from nexus.server.store import (
    DamagedStore,
    Page,
    StoreError,
    StoreListener,
    tell_refused,
    tell_written,
)

log = logging.getLogger("nexus.store")

_fsync = aiofiles.os.wrap(os.fsync)

SNAPSHOT_FORMAT = "nexus-store"
# 2 added the checksum; 3 adds read markers, away texts and the message fields
# of protocol 2 (edits, erasures, reactions...); 4 adds moderation (admins,
# suspensions, private rooms, moderators, mutes, bans, invitations); 5 adds
# threads (replies' `thread`, users' `follows`). Older versions still load;
# an older server refuses a newer file instead of misreading it (a version 3
# server would drop every ban, a version 4 one show replies in timelines).
SNAPSHOT_VERSION = 5
_READABLE_VERSIONS = (1, 2, 3, 4, SNAPSHOT_VERSION)
# The snapshot's last key: the CRC-32 of every byte of the file before it.
_CHECKSUM = re.compile(rb',\n  "crc32": "([0-9a-f]{8})"\n\}\n\Z')
FILE_MODE = 0o600  # data files hold password hashes and every DM
# The journal is folded into a new snapshot once it outgrows both this and
# the snapshot itself, which keeps compaction's cost proportional to growth.
COMPACT_MIN_BYTES = 64 * 1024 * 1024
# A snapshot is written in pieces of about this size; the event loop serves
# requests between pieces (each is under a millisecond of encoding on a
# busy server, so the pause it adds to a loop pass stays below that).
SNAPSHOT_PIECE_BYTES = 256 * 1024


def encode_record(record: dict[str, Any]) -> bytes:
    body = orjson.dumps(record)
    return b"%08x %s\n" % (zlib.crc32(body), body)


def _decode_record(line: bytes) -> dict[str, Any] | None:
    """A journal line (without newline) -> its record, or None if torn or damaged."""
    if len(line) < 10 or line[8:9] != b" ":
        return None
    body = line[9:]
    try:
        if int(line[:8], 16) != zlib.crc32(body):
            return None
        record = orjson.loads(body)
    except ValueError:
        return None
    return record if isinstance(record, dict) and isinstance(record.get("n"), int) else None


def read_journal(data: bytes, after: int, name: str) -> tuple[list[dict[str, Any]], int]:
    """Records numbered above `after`, and the byte length of the sound prefix.

    Only a last record without its newline is torn (a write cut short by a
    crash) and dropped; a whole line that does not check out, anywhere, is
    damage, and so are records that skip a number or do not continue the
    snapshot (numbered up to `after`).
    """
    records: list[dict[str, Any]] = []
    expected: int | None = None
    offset = 0
    while (newline := data.find(b"\n", offset)) >= 0:
        record = _decode_record(data[offset:newline])
        if record is None or (expected is not None and record["n"] != expected):
            raise DamagedStore(f"{name}: damaged record at byte offset {offset}")
        if expected is None and record["n"] > after + 1:
            raise DamagedStore(
                f"{name}: starts at record {record['n']}, but the snapshot holds"
                f" records up to {after}: records in between are missing"
            )
        expected = record["n"] + 1
        if record["n"] > after:
            records.append(record)
        offset = newline + 1
    if expected is not None and expected <= after:
        raise DamagedStore(
            f"{name}: ends at record {expected - 1}, but the snapshot holds records"
            f" up to {after}: the journal is older than the snapshot"
        )
    return records, offset


class _File:
    """A file appended with plain `os.write` on the event loop's thread.

    A write into the page cache takes microseconds (a MiB, well under a
    millisecond); handing it to a thread (aiofiles) cost a thread hop and, on
    a busy loop, up to twice the interpreter's 5 ms switch interval before
    the loop ran again: measured as 10 ms stalls per write. The journal's
    fsync, with `--fsync`, runs on the loop too, as Redis does with
    `appendfsync always`: every reply waits for that write anyway, and while
    the loop waits, requests gather in the socket buffers for the next group.
    """

    def __init__(self, path: Path, truncate: bool = False) -> None:
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
        self._fd = os.open(path, flags | (os.O_TRUNC if truncate else 0), FILE_MODE)

    def write(self, data: bytes | memoryview) -> int:
        return os.write(self._fd, data)

    def append(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[self.write(view) :]

    def fileno(self) -> int:
        return self._fd

    def sync(self) -> None:
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)


def fsync_directory(path: Path) -> None:
    """Make a rename or a new file in `path` survive a power cut."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class JournalStore:
    """The model, kept durable in a snapshot and a journal (the `Store`
    protocol's `journal` engine). Open with `await JournalStore.open(path)`.

    Every message kept is in the model, so history pages, single messages
    and unread counts come from memory; search is the in-memory word index.
    """

    def __init__(
        self,
        path: Path,
        fsync: bool = False,
        room_cap: int = ROOM_WINDOW,
        dm_cap: int = DM_WINDOW,
        default_rooms: Sequence[str] = DEFAULT_ROOMS,
    ) -> None:
        self.path = Path(path)
        self.default_rooms = tuple(default_rooms)  # a new store's (a snapshot names its own)
        self.room_cap = room_cap  # messages kept a room (--history-limit)
        self.dm_cap = dm_cap  # and a DM conversation
        self.journal_path = self.path.with_name(self.path.name + ".journal")
        self.fsync = fsync
        self.model = Model()
        self.listeners: list[StoreListener] = []
        self.index = SearchIndex(lambda: self.model)
        self._n = 0  # number of the last record applied
        self._journal: _File | None = None
        self._journal_bytes = 0  # length of the journal's sound prefix on disk
        self._snapshot_bytes = 0
        self._pending: list[bytes] = []  # records applied, not yet written
        self._waiters: list[asyncio.Future[None]] = []  # written() calls awaiting the write
        self._write_handle: asyncio.Handle | None = None
        self._compaction: asyncio.Task[None] | None = None
        self._recovery: asyncio.Task[None] | None = None  # writes wait for it
        self._recovering = False
        self._closing = False
        self._read_only = False  # the files could not be reloaded after a failed write

    @classmethod
    async def open(
        cls,
        path: str | os.PathLike[str],
        fsync: bool = False,
        room_cap: int = ROOM_WINDOW,
        dm_cap: int = DM_WINDOW,
        default_rooms: Sequence[str] = DEFAULT_ROOMS,
    ) -> JournalStore:
        store = cls(Path(path), fsync, room_cap, dm_cap, default_rooms)
        for existing in (store.path, store.journal_path):
            if existing.exists() and existing.stat().st_mode & 0o077:
                log.warning("%s was readable by others; making it %o", existing, FILE_MODE)
                existing.chmod(FILE_MODE)
        store.model, store._n, store._journal_bytes = await store._read_disk()
        created = not await aiofiles.os.path.exists(store.journal_path)
        store._journal = _File(store.journal_path)
        if created and fsync:
            await asyncio.to_thread(fsync_directory, store.path.parent)
        return store

    @classmethod
    async def inspect(cls, path: str | os.PathLike[str]) -> JournalStore:
        """The store as start-up would load it, changing nothing on disk (a
        torn last record is left in place): for checks, backups and exports.
        Raises DamagedStore like start-up; the result is not open for writes."""
        store = cls(Path(path))
        store.model, store._n, store._journal_bytes = await store._read_disk(repair=False)
        return store

    @property
    def last_record(self) -> int:
        """The number of the last journal record the model holds."""
        return self._n

    # -- loading ---------------------------------------------------------

    async def _read_disk(self, repair: bool = True) -> tuple[Model, int, int]:
        model, n = Model(self.room_cap, self.dm_cap, default_rooms=self.default_rooms), 0
        if await aiofiles.os.path.exists(self.path):
            async with aiofiles.open(self.path, "rb") as f:
                raw = await f.read()
            self._snapshot_bytes = len(raw)
            _check_snapshot(raw, self.path)
            try:
                # The standard parser, not orjson: orjson builds a tree of the
                # whole document before making Python objects, and for
                # 1,000,000 stored messages (227 MiB) it peaked at 1,135 MiB in
                # 1.3 s; json.loads makes objects as it goes: 739 MiB in 1.1 s,
                # once the bytes are dropped after decoding. Snapshots are
                # written by this module, so json's leniency (NaN) is moot.
                text, raw = raw.decode("utf-8"), b""
                with _no_collection():
                    snapshot, text = json.loads(text), ""
                    if snapshot.get("format") != SNAPSHOT_FORMAT:
                        raise ValueError("not a Nexus store")
                    if snapshot.get("version") not in _READABLE_VERSIONS:
                        raise ValueError(f"unsupported store version {snapshot.get('version')}")
                    model = Model.from_snapshot(snapshot, self.room_cap, self.dm_cap)
                n = snapshot["journal_seq"]
            except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
                raise DamagedStore(f"{self.path}: unreadable snapshot ({exc})") from None
        journal_bytes = 0
        if await aiofiles.os.path.exists(self.journal_path):
            async with aiofiles.open(self.journal_path, "rb") as f:
                raw = await f.read()
            records, journal_bytes = read_journal(raw, n, str(self.journal_path))
            if journal_bytes < len(raw) and repair:
                log.warning(
                    "%s: dropping %d bytes of a torn record at byte offset %d",
                    self.journal_path,
                    len(raw) - journal_bytes,
                    journal_bytes,
                )
                await asyncio.to_thread(os.truncate, self.journal_path, journal_bytes)
            for data in records:
                try:
                    model.apply(from_json(data))
                except (KeyError, TypeError, ValueError, AttributeError) as exc:
                    raise DamagedStore(
                        f"{self.journal_path}: record {data['n']} does not apply ({exc!r})"
                    ) from None
                n = data["n"]
        return model, n, journal_bytes

    # -- changing --------------------------------------------------------

    def has_unwritten(self) -> bool:
        """Whether changes are applied that are not written yet, or a failed
        write is being recovered from: what depends on them must wait."""
        return bool(self._pending) or self._recovering

    def apply(self, record: Record) -> Any:
        """Applies `record` now and writes it with the next group.

        Callers validate first: a record must apply cleanly.
        """
        if self._closing or self._read_only or self._recovering:
            raise StoreError("the store is not accepting changes")
        if not record.journaled(self.model):  # guests' and ephemeral rooms': memory only
            return record.apply(self.model)
        result = record.apply(self.model)
        self._n += 1  # only once applied: journal numbers never skip
        if not self._pending:
            for listener in self.listeners:
                listener.hold()
        self._pending.append(encode_record(record.to_json(self._n)))
        if self._write_handle is None:
            # The next loop pass: everything applied in this one shares the write.
            self._write_handle = asyncio.get_running_loop().call_soon(self._write_pending)
        return result

    async def commit(self, record: Record) -> Any:
        """Applies `record` and returns its result once it is written."""
        result = self.apply(record)
        await self.written()
        return result

    def has_turn(self) -> bool:
        return True

    async def turn(self) -> None:
        """Always this node's: it is the only one."""

    async def written(self) -> None:
        """Returns once every change applied so far is written; raises
        StoreError if they were refused instead."""
        if self._pending:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter

    def record(self, record: Record) -> None:
        """Applies `record` unless the store is refusing changes: for
        bookkeeping that nothing waits on (read markers, last seen)."""
        with contextlib.suppress(StoreError):
            self.apply(record)

    def _write_pending(self) -> None:
        self._write_handle = None
        if not self._pending:
            return
        batch, waiters = b"".join(self._pending), self._waiters
        self._pending, self._waiters = [], []
        for listener in self.listeners:
            listener.cut()
        try:
            self._append(batch)
        except Exception as exc:  # not only OSError: whatever stops a write refuses it
            self._recovering = True
            if self._compaction is not None:
                self._compaction.cancel()  # the files it worked from are being cut back
            self._recovery = asyncio.create_task(self._recover(exc, waiters))
            return
        tell_written(self.listeners, waiters)
        if self._compaction is None and self._journal_bytes > max(
            COMPACT_MIN_BYTES, self._snapshot_bytes
        ):
            self._compaction = asyncio.create_task(self._compact_in_background())

    def _append(self, batch: bytes) -> None:
        journal = self._open_journal()
        journal.append(batch)
        if self.fsync:
            journal.sync()
        self._journal_bytes += len(batch)

    def _open_journal(self) -> _File:
        if self._journal is None:
            raise StoreError("the store is closed")
        return self._journal

    async def _recover(self, exc: Exception, waiters: list[asyncio.Future[None]]) -> None:
        """After a failed write: cut the torn bytes, reload, refuse what is unwritten.

        New changes are refused while this runs, so none lands on the model
        that is being replaced. If the files cannot even be reloaded, the
        store stays read-only until restarted.
        """
        log.error("journal write failed, refusing unwritten changes: %s", exc)
        before = self.model
        try:
            await asyncio.to_thread(os.truncate, self.journal_path, self._journal_bytes)
            self.model, self._n, self._journal_bytes = await self._read_disk()
        except (OSError, DamagedStore):
            log.exception("could not reload the store after a failed write; now read-only")
            self._read_only = True
        finally:
            self._recovery = None
            self._recovering = False
        reason = getattr(exc, "strerror", None) or exc
        failure = StoreError(f"could not write the journal: {reason}")
        tell_refused(self.listeners, waiters, failure, before, self.model)

    # -- compaction ------------------------------------------------------

    async def _compact_in_background(self) -> None:
        try:
            await self.compact()
        except OSError as exc:
            log.error("compaction failed, keeping the journal: %s", exc)
        finally:
            self._compaction = None

    async def compact(self) -> None:
        """Folds the journal into a new snapshot, atomically, while writes go on.

        The snapshot is of the model as written so far (a copy made at once);
        it is written a piece at a time, requests being served and the
        journal still growing meanwhile. Once the snapshot is durable, the
        journal is replaced by the records written since, in one step on the
        loop, so no append falls in between.
        """
        self._write_pending()  # the snapshot then holds exactly what is written
        if self._recovering:
            return
        cut = self._journal_bytes
        head = snapshot_head(self._n)
        pieces = snapshot_pieces(head, self.model.to_snapshot())
        tmp = self.path.with_name(self.path.name + ".tmp")
        size = 0
        snapshot = _File(tmp, truncate=True)
        try:
            for piece in pieces:
                snapshot.append(piece)
                size += len(piece)
                await asyncio.sleep(0)  # requests go on between pieces
            await _fsync(snapshot.fileno())
        finally:
            snapshot.close()
        os.replace(tmp, self.path)
        await asyncio.to_thread(fsync_directory, self.path.parent)
        self._snapshot_bytes = size
        self._keep_journal_after(cut)

    def _keep_journal_after(self, cut: int) -> None:
        """Replaces the journal by its bytes past `cut`: the records written
        since the snapshot was taken. A crash before the rename leaves the
        whole journal, whose older records replay skips by number."""
        fd = os.open(self.journal_path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            tail = os.pread(fd, self._journal_bytes - cut, cut)
        finally:
            os.close(fd)
        tmp = self.journal_path.with_name(self.journal_path.name + ".tmp")
        journal = _File(tmp, truncate=True)
        try:
            journal.append(tail)
            if self.fsync:
                journal.sync()
            os.replace(tmp, self.journal_path)
            if self.fsync:
                fsync_directory(self.path.parent)
        except OSError:
            journal.close()
            raise
        self._open_journal().close()
        self._journal, self._journal_bytes = journal, len(tail)

    # -- reading beyond the window: there is none -----------------------------

    async def page(self, scope: str, limit: int, before: int | None, replies: bool = False) -> Page:
        history = self.model.history(scope)
        page = history.page(limit, before, replies) if history is not None else None
        return page or ([], False)

    async def newer(self, scope: str, after: int, limit: int, replies: bool = False) -> Page:
        history = self.model.history(scope)
        page = history.newer(after, limit, replies) if history is not None else None
        return page or ([], False)

    async def around(
        self, scope: str, seq: int, limit: int, replies: bool = False
    ) -> tuple[list[Message], bool, bool]:
        history = self.model.history(scope)
        page = history.around(seq, limit, replies) if history is not None else None
        return page or ([], False, False)

    async def thread_page(self, scope: str, root: int, limit: int, before: int | None) -> Page:
        history = self.model.history(scope)
        page = history.thread_page(root, limit, before) if history is not None else None
        return page or ([], False)

    async def message(self, scope: str, seq: int) -> Message | None:
        history = self.model.history(scope)
        return history.get(seq) if history is not None else None

    async def unread(self, scope: str, after: int, reader: str) -> tuple[int, int]:
        return self.model.unread_in(scope, after, reader)

    async def search(
        self,
        scopes: Iterable[str],
        terms: list[str],
        author: str | None = None,
        before: float | None = None,
        limit: int = 20,
    ) -> Page:
        return await self.index.search(set(scopes), terms, author, before, limit)

    async def mentions(self, user: str, scopes: set[str], limit: int) -> list[Message]:
        return await self.index.mentions(user, scopes, limit)

    # -- life ----------------------------------------------------------------

    def start(self) -> None:
        self.index.start()

    async def close(self) -> None:
        """Writes what is pending, folds the journal into the snapshot, closes."""
        await self.index.close()
        if self._journal is None:
            return
        self._closing = True
        await self._settle()
        self._write_pending()
        await self._settle()
        with contextlib.suppress(OSError):
            await self.compact()
        self._journal.close()
        self._journal = None

    async def _settle(self) -> None:
        """Waits for a compaction or recovery under way."""
        while task := self._recovery or self._compaction:
            await asyncio.wait([task])


def snapshot_head(journal_seq: int) -> dict[str, Any]:
    """The snapshot's first keys: what it is, and the last journal record it holds."""
    return {
        "format": SNAPSHOT_FORMAT,
        "version": SNAPSHOT_VERSION,
        "journal_seq": journal_seq,
        "saved": time.time(),
    }


def snapshot_pieces(head: dict[str, Any], body: dict[str, list[Any]]) -> Iterator[bytes]:
    """The snapshot as indented JSON, in pieces of about SNAPSHOT_PIECE_BYTES,
    ending with its checksum.

    Each user, room and conversation is encoded on its own (indented as it
    would be inside the whole document), so encoding is spread over the
    pieces instead of blocking the loop for the whole store at once.
    """
    crc = 0
    for piece in _body_pieces(head, body):
        crc = zlib.crc32(piece, crc)
        yield piece
    yield b',\n  "crc32": "%08x"\n}\n' % crc


def _body_pieces(head: dict[str, Any], body: dict[str, list[Any]]) -> Iterator[bytes]:
    piece = [b"{\n"]
    size = 0
    for key, value in head.items():
        piece.append(b"  %s: %s,\n" % (orjson.dumps(key), orjson.dumps(value)))
    for i, (key, items) in enumerate(body.items()):
        piece.append(b"  %s: [" % orjson.dumps(key))
        for j, item in enumerate(items):
            encoded = orjson.dumps(item, default=_wire, option=_SNAPSHOT_OPTIONS)
            encoded = encoded.replace(b"\n", b"\n    ")
            piece.append(b",\n    " if j else b"\n    ")
            piece.append(encoded)
            size += len(encoded)
            if size >= SNAPSHOT_PIECE_BYTES:
                yield b"".join(piece)
                piece, size = [], 0
        piece.append(b"\n  ]" if items else b"]")
        if i < len(body) - 1:
            piece.append(b",\n")
    yield b"".join(piece)


# Messages (dataclasses) go through `_wire`, not orjson's own dataclass encoding.
_SNAPSHOT_OPTIONS = orjson.OPT_INDENT_2 | orjson.OPT_PASSTHROUGH_DATACLASS


@contextlib.contextmanager
def _no_collection() -> Iterator[None]:
    """Loading makes millions of objects that all live on: collecting them
    meanwhile only scans them again and again (1.6 s of 4.8 s for a store of
    1,000,000 messages). The server freezes what it loaded once it listens."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _wire(value: Any) -> dict[str, Any]:
    """A snapshot's messages are `Message` objects, converted as they are encoded."""
    if isinstance(value, Message):
        wire = value.wire()
        wire.pop("thread_summary", None)  # worked out from the replies as they load
        return wire
    raise TypeError(f"cannot store {type(value).__name__}")


def _check_snapshot(raw: bytes, path: Path) -> None:
    """Refuses a snapshot whose checksum does not match its bytes.

    Version 1 snapshots were written without one; any other must end with it.
    """
    found = _CHECKSUM.search(raw, max(0, len(raw) - 64))
    if found is None:
        if re.search(rb'\A\{\n  "format": "nexus-store",\n  "version": 1,\n', raw[:80]):
            return
        raise DamagedStore(f"{path}: the snapshot's checksum is missing")
    if zlib.crc32(memoryview(raw)[: found.start()]) != int(found.group(1), 16):
        raise DamagedStore(f"{path}: the snapshot does not match its checksum")
