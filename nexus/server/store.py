"""The async JSON store: a readable snapshot plus an append-only journal.

Files, for a data path `nexus_data.json`:
- `nexus_data.json`: a JSON snapshot of the whole model, replaced atomically
  (temporary file, fsync, rename, fsync of the directory);
- `nexus_data.json.journal`: one line a change since then,
  `<crc32 as 8 hex digits> <record as JSON>\\n`; records are numbered (`n`)
  and the snapshot names the last one it holds, so a crash between writing
  a snapshot and emptying the journal replays nothing twice.

`commit()` applies a record to the model at once (so the next request sees
it) and returns when the record has been handed to the operating system,
with fsync too if asked. Records arriving together share one write (group
commit). If a write fails (disk full, I/O error) the journal is cut back to
its last whole record, every change not yet written is refused, and the
model is reloaded from disk: nothing unacknowledged lingers in memory, and
writes resume when the disk does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
import zlib
from pathlib import Path
from typing import Any

import aiofiles
import aiofiles.os
import orjson

from nexus.server.model import Model

log = logging.getLogger("nexus.store")

_fsync = aiofiles.os.wrap(os.fsync)

SNAPSHOT_FORMAT = "nexus-store"
SNAPSHOT_VERSION = 1
# The journal is folded into a new snapshot once it outgrows both this and
# the snapshot itself, which keeps compaction's cost proportional to growth.
COMPACT_MIN_BYTES = 64 * 1024 * 1024


class StoreError(Exception):
    """The store could not make a change durable; nothing was acknowledged."""


class DamagedStore(Exception):
    """The files on disk cannot be trusted; start-up must stop."""


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

    Bad records at the very end (a torn write, a flipped byte) are the tail
    to drop; a bad record followed by a good one is damage and is refused.
    """
    records: list[dict[str, Any]] = []
    good_end = 0
    bad_at: int | None = None
    expected: int | None = None
    offset = 0
    while offset < len(data):
        newline = data.find(b"\n", offset)
        end = len(data) if newline < 0 else newline + 1
        record = None if newline < 0 else _decode_record(data[offset:newline])
        if record is None:
            if bad_at is None:
                bad_at = offset
        else:
            if bad_at is not None or (expected is not None and record["n"] != expected):
                at = offset if bad_at is None else bad_at
                raise DamagedStore(f"{name}: damaged record at byte offset {at}")
            expected = record["n"] + 1
            if record["n"] > after:
                records.append(record)
            good_end = end
        offset = end
    return records, good_end


class _Journal:
    """The journal file, appended with plain `os.write` on the event loop's thread.

    A write into the page cache takes microseconds; handing it to a thread
    (aiofiles) cost a thread hop per group and, on a busy loop, up to the
    interpreter's 5 ms switch interval before the result came back. Only
    fsync, which can take milliseconds, still runs in a thread. The methods
    are coroutines so the writer can treat this like any async file.
    """

    def __init__(self, path: Path) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)

    def fileno(self) -> int:
        return self._fd

    async def write(self, data: bytes | memoryview) -> int:
        return os.write(self._fd, data)

    async def truncate(self, size: int) -> None:
        os.ftruncate(self._fd, size)

    async def close(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)


def _ignore_outcome(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()  # retrieved: a failure was logged by the writer


def _fsync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Store:
    """The model, kept durable. Open with `await Store.open(path)`."""

    def __init__(self, path: Path, fsync: bool = False) -> None:
        self.path = Path(path)
        self.journal_path = self.path.with_name(self.path.name + ".journal")
        self.fsync = fsync
        self.model = Model()
        self._n = 0  # number of the last record applied
        self._journal: Any = None
        self._journal_bytes = 0  # length of the journal's sound prefix on disk
        self._snapshot_bytes = 0
        self._pending: list[bytes] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._wakeup = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._closing = False
        self._read_only = False  # set while recovering from a failed write

    @classmethod
    async def open(cls, path: str | os.PathLike[str], fsync: bool = False) -> Store:
        store = cls(Path(path), fsync)
        store.model, store._n, store._journal_bytes = await store._read_disk()
        created = not await aiofiles.os.path.exists(store.journal_path)
        store._journal = _Journal(store.journal_path)
        if created and fsync:
            await asyncio.to_thread(_fsync_directory, store.path.parent)
        store._writer = asyncio.create_task(store._write_loop(), name="nexus-store-writer")
        return store

    # -- loading ---------------------------------------------------------

    async def _read_disk(self) -> tuple[Model, int, int]:
        model, n = Model(), 0
        if await aiofiles.os.path.exists(self.path):
            async with aiofiles.open(self.path, "rb") as f:
                raw = await f.read()
            self._snapshot_bytes = len(raw)
            try:
                # The standard parser, not orjson: orjson builds a tree of the
                # whole document before making Python objects, and for
                # 1,000,000 stored messages (227 MiB) it peaked at 1,135 MiB in
                # 1.3 s; json.loads makes objects as it goes: 739 MiB in 1.1 s,
                # once the bytes are dropped after decoding. Snapshots are
                # written by this module, so json's leniency (NaN) is moot.
                text, raw = raw.decode("utf-8"), b""
                snapshot, text = json.loads(text), ""
                if snapshot.get("format") != SNAPSHOT_FORMAT:
                    raise ValueError("not a Nexus store")
                if snapshot.get("version") != SNAPSHOT_VERSION:
                    raise ValueError(f"unsupported store version {snapshot.get('version')}")
                model, n = Model.from_snapshot(snapshot), snapshot["journal_seq"]
            except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
                raise DamagedStore(f"{self.path}: unreadable snapshot ({exc})") from None
        journal_bytes = 0
        if await aiofiles.os.path.exists(self.journal_path):
            async with aiofiles.open(self.journal_path, "rb") as f:
                raw = await f.read()
            records, journal_bytes = read_journal(raw, n, str(self.journal_path))
            if journal_bytes < len(raw):
                log.warning(
                    "%s: dropping %d bytes of a torn record at byte offset %d",
                    self.journal_path,
                    len(raw) - journal_bytes,
                    journal_bytes,
                )
                await asyncio.to_thread(os.truncate, self.journal_path, journal_bytes)
            for record in records:
                try:
                    model.apply(record)
                except (KeyError, TypeError, ValueError) as exc:
                    raise DamagedStore(
                        f"{self.journal_path}: record {record['n']} does not apply ({exc!r})"
                    ) from None
                n = record["n"]
        return model, n, journal_bytes

    # -- changing --------------------------------------------------------

    def apply(self, record: dict[str, Any]) -> tuple[Any, asyncio.Future[None]]:
        """Applies `record` now; the future resolves once it is on disk.

        Callers validate first: a record must apply cleanly.
        """
        if self._closing or self._read_only:
            raise StoreError("the store is not accepting changes")
        record["n"] = self._n + 1
        result = self.model.apply(record)
        self._n += 1  # only once applied: journal numbers never skip
        self._pending.append(encode_record(record))
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self._wakeup.set()
        return result, waiter

    async def commit(self, record: dict[str, Any]) -> Any:
        """Applies `record` and returns its result once it is durable."""
        result, durable = self.apply(record)
        await durable
        return result

    def record(self, record: dict[str, Any]) -> None:
        """Applies `record` and writes it in the background: for bookkeeping that
        no reply waits on (read markers, last seen)."""
        try:
            _, durable = self.apply(record)
        except StoreError:
            return  # shutting down: the session's bookkeeping can go
        durable.add_done_callback(_ignore_outcome)

    async def _write_loop(self) -> None:
        while True:
            # Check before waiting: a change and close() may both have set
            # the wake-up while the previous batch was being written.
            if not self._pending:
                if self._closing:
                    return
                await self._wakeup.wait()
                self._wakeup.clear()
                continue
            batch, waiters = b"".join(self._pending), self._waiters
            self._pending, self._waiters = [], []
            try:
                await self._append(batch)
            except OSError as exc:
                await self._recover(exc, waiters)
                continue
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)
            if self._journal_bytes > max(COMPACT_MIN_BYTES, self._snapshot_bytes):
                await self._compact_safely()

    async def _append(self, batch: bytes) -> None:
        view = memoryview(batch)
        while view:
            written = await self._journal.write(view)
            view = view[written:]
        if self.fsync:
            await _fsync(self._journal.fileno())
        self._journal_bytes += len(batch)

    async def _recover(self, exc: OSError, waiters: list[asyncio.Future[None]]) -> None:
        """After a failed write: cut the torn bytes, reload, refuse what is unwritten.

        New changes are refused while this runs, so none lands on the model
        that is being replaced. If the files cannot even be reloaded, the
        store stays read-only until restarted.
        """
        log.error("journal write failed, refusing unwritten changes: %s", exc)
        self._read_only = True
        waiters += self._waiters
        self._pending, self._waiters = [], []
        try:
            await asyncio.to_thread(os.truncate, self.journal_path, self._journal_bytes)
            self.model, self._n, self._journal_bytes = await self._read_disk()
            self._read_only = False
        except (OSError, DamagedStore):
            log.exception("could not reload the store after a failed write; now read-only")
        failure = StoreError(f"could not write the journal: {exc.strerror or exc}")
        for waiter in waiters:
            if not waiter.done():
                waiter.set_exception(failure)

    # -- compaction ------------------------------------------------------

    async def _compact_safely(self) -> None:
        try:
            await self.compact()
        except OSError as exc:
            log.error("compaction failed, keeping the journal: %s", exc)

    async def compact(self) -> None:
        """Folds the journal into a new snapshot, atomically."""
        snapshot = {
            "format": SNAPSHOT_FORMAT,
            "version": SNAPSHOT_VERSION,
            "journal_seq": self._n,
            "saved": time.time(),
            **self.model.to_snapshot(),
        }
        data = orjson.dumps(snapshot, option=orjson.OPT_INDENT_2)
        tmp = self.path.with_name(self.path.name + ".tmp")
        async with aiofiles.open(tmp, "wb") as f:
            await f.write(data)
            await f.flush()
            await _fsync(f.fileno())
        await aiofiles.os.replace(tmp, self.path)
        await asyncio.to_thread(_fsync_directory, self.path.parent)
        self._snapshot_bytes = len(data)
        # Every record up to journal_seq is in the snapshot now, including
        # those still pending: they reach the emptied journal with numbers
        # the snapshot covers, and replay skips them.
        await self._journal.truncate(0)
        self._journal_bytes = 0

    async def close(self) -> None:
        """Writes what is pending, folds the journal into the snapshot, closes."""
        if self._writer is None:
            return
        self._closing = True
        self._wakeup.set()
        await self._writer
        self._writer = None
        with contextlib.suppress(OSError):
            await self.compact()
        await self._journal.close()
