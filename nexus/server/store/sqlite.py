"""The SQLite engine: every message kept on disk, searched with FTS5.

One database file (WAL): users, rooms, memberships, conversations and every
message, with a full-text index of them. Memory holds what the model holds
for every engine (users, rooms, memberships, conversations) and a window of
each room's and conversation's newest messages; older ones are read from
disk when asked for, so memory does not grow with history.

Writing: `apply()` changes the model at once and notes what the record
touched (a user, a room, a membership, a message...). At the next pass of
the loop everything noted is turned into rows, as the model now holds them,
and written in one transaction (group commit), on the loop, as the json
engine appends its journal: a cut of a few messages takes a fraction of a
millisecond, less than handing it to a thread and hearing back (measured:
docs/performance.md). A reply `ok` still means on disk: the listeners hear
`written` once the transaction is committed (`synchronous=NORMAL`: survives
a crash of the process; FULL with `--fsync`, the loop waiting for the
sync: survives power loss). If a write fails, every change not written is
refused and the model is read again from the database.

Search: each message's words in a contentless FTS5 table, and the
vocabulary of all of them, which turns a term into the words holding it
(words.py), so a term is found as a substring, exactly as the protocol's
rule says. A new message is indexed in the transaction that stores it
(its words cost about a third of its row), as an edit or an erasure is.
Messages stored unindexed (by an older schema, or before a backlog was
worked off) are indexed in order by steps between transactions, and new
ones join the steps until they have caught up; until then a search reads
the newest, not yet indexed messages directly.

The WAL is folded into the database file by a thread of its own, every
CHECKPOINT_EVERY seconds, never by a commit: a checkpoint copies every page
written since the last one and syncs the file (20-40 ms under load), and a
commit that ran it held up every acknowledgement behind it.

Reads past the window (history pages, single messages, unread counts,
search) run on reader threads, each with its own read-only connection: WAL
lets them read while the writer writes. A message read from disk to be
changed (an edit of an old message) is kept, one object per message, until
its change is written, so concurrent changes to it never race.

The schema is versioned (`PRAGMA user_version`); a database written by a
newer server, or one that is not a database, refuses to start with a
message saying so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from nexus.protocol import DEFAULT_ROOMS
from nexus.server.model import Model
from nexus.server.store import words as w
from nexus.server.store.rows import MESSAGE_COLUMNS
from nexus.server.store.tabled import TabledStore, holds, matching, search_filters
from nexus.server.store.tables import (
    FILE_MODE,
    SCHEMA_VERSION,
    DatabaseError,
    check_schema,
    create,
    index_some,
    migrate,
    read_model,
    transaction,
)

log = logging.getLogger("nexus.store")

# Messages indexed in one transaction: ~2 ms of work here, which is what a
# write waiting behind a step may be delayed (with trigrams, 256 a step took
# 15 ms and put every fan-out's p99 past 10 ms).
INDEX_STEP = 64
# Seconds between checkpoints: the WAL holds about this long's writes (a few
# MiB a second at the most the server takes).
CHECKPOINT_EVERY = 1.0
# A search of scopes holding at most this many messages reads them newest
# first instead of the index: a word common in the store, asked in one
# small room, would walk the index's matches everywhere else.
SCAN_MAX = 20_000
# A search whose every term is held by more than words.WIDE words reads this
# many of the newest messages before it asks the index (~20 ms).
WALK_MAX = 20_000


class SqliteStore(TabledStore):
    """The model, kept durable in SQLite (the `Store` protocol's `sqlite`
    engine). Open with `await SqliteStore.open(path)`."""

    errors = (sqlite3.Error,)
    writes_on_loop = True

    def __init__(
        self,
        path: Path,
        fsync: bool = False,
        window: int = 500,
        dm_window: int = 200,
        retention_days: int = 0,
        default_rooms: Sequence[str] = DEFAULT_ROOMS,
    ) -> None:
        super().__init__("sqlite", window, dm_window, retention_days, default_rooms)
        self.path = Path(path)
        self.fsync = fsync
        self._checkpointer = ThreadPoolExecutor(1, thread_name_prefix="nexus-sqlite-checkpoint")
        self._checkpoints: sqlite3.Connection | None = None  # the checkpointer's
        self._indexed: int | None = None  # the writer's: the index's position, once read

    @classmethod
    async def open(
        cls,
        path: str | os.PathLike[str],
        fsync: bool = False,
        window: int = 500,
        dm_window: int = 200,
        retention_days: int = 0,
        default_rooms: Sequence[str] = DEFAULT_ROOMS,
    ) -> SqliteStore:
        return await cls(
            Path(path), fsync, window, dm_window, retention_days, default_rooms
        )._opened()

    def _open_database(self) -> Model:
        """Opens (or creates) the database and reads the model."""
        created = not self.path.exists()
        if created:
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
        elif self.path.stat().st_mode & 0o077:
            log.warning("%s was readable by others; making it %o", self.path, FILE_MODE)
            self.path.chmod(FILE_MODE)
        try:
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._connection = db
            check_schema(db, self.path)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={self._synchronous}")
            db.execute("PRAGMA wal_autocheckpoint=0")  # the checkpointer's work
            if db.execute("PRAGMA user_version").fetchone()[0] == 0:
                with transaction(db):
                    create(db, Model(default_rooms=self.default_rooms))
            elif (version := migrate(db)) < SCHEMA_VERSION:
                log.info("%s: schema %d brought to %d", self.path, version, SCHEMA_VERSION)
            return read_model(db, self.window, self.dm_window)
        except sqlite3.DatabaseError as exc:
            raise DatabaseError(f"{self.path}: not a usable Nexus database ({exc})") from None

    @property
    def _synchronous(self) -> str:
        return "FULL" if self.fsync else "NORMAL"

    def _connect_reader(self) -> sqlite3.Connection:
        """A read-only connection: WAL lets it read while the writer writes."""
        return sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)

    def _search_reader(self, scopes: list[str]) -> Callable[..., list[tuple[Any, ...]]]:
        """Small scopes are read newest first; the index answers the rest."""
        small = sum(map(self._kept, scopes)) <= SCAN_MAX
        return self._scan_search if small else self._read_search

    def _read_search(
        self,
        scopes: list[str],
        terms: list[str],
        author: str | None,
        before: float | None,
        limit: int,
    ) -> list[tuple[Any, ...]]:
        """Up to limit + 1 matches, newest first: the messages not indexed yet
        are read directly, then the index's, newest first."""
        db = self._reader()
        indexed = db.execute("SELECT value FROM meta WHERE key = 'indexed'").fetchone()[0]
        marks = ",".join("?" * len(scopes))
        filters, params = search_filters(author, before)
        filters = f" AND m.scope IN ({marks})" + filters
        params = [*scopes, *params]
        recent = db.execute(
            f"SELECT {MESSAGE_COLUMNS} FROM messages m WHERE m.id > ?{filters} ORDER BY m.id DESC",
            [indexed, *params],
        )
        found = matching(recent, terms, limit + 1)
        if len(found) > limit:
            return found
        groups = [w.holding(db, term, w.WIDE) for term in terms]
        if [] in groups:  # a term in no message indexed
            return found
        top = indexed
        if all(group is None for group in groups):
            # Every term is held by many words, so it is likely common: the
            # newest messages are read first, then (a term held by many rare
            # words) the index, unless a term is in even more words.
            walked = 0
            for row in db.execute(
                f"SELECT {MESSAGE_COLUMNS} FROM messages m WHERE m.id <= ?{filters}"
                " ORDER BY m.id DESC LIMIT ?",
                [indexed, *params, WALK_MAX],
            ):
                walked, top = walked + 1, row[0] - 1
                if holds(row[5], terms):
                    found.append(row)
                    if len(found) > limit:
                        return found
            if walked < WALK_MAX:
                return found
            groups = [w.holding(db, term, w.SPREAD) for term in terms]
            if [] in groups:
                return found
            if None in groups:
                groups = []
        narrow = [group for group in groups if group is not None]
        if narrow:
            rows = db.execute(
                f"SELECT m.{MESSAGE_COLUMNS.replace(', ', ', m.')} FROM words"
                " JOIN messages m ON m.id = words.rowid WHERE words MATCH ? AND words.rowid <= ?"
                f"{filters} ORDER BY words.rowid DESC",
                [w.match(narrow), top, *params],
            )
        else:
            rows = db.execute(
                f"SELECT {MESSAGE_COLUMNS} FROM messages m WHERE m.id <= ?{filters}"
                " ORDER BY m.id DESC",
                [top, *params],
            )
        return found + matching(rows, terms, limit + 1 - len(found))

    def _index_step(self) -> bool:
        """Indexes up to INDEX_STEP messages; whether more wait."""
        db = self._open_connection()
        self._indexed = None  # read again by the next write
        with transaction(db):
            return index_some(db, INDEX_STEP, self._vocabulary)

    def _index_new(self, db: sqlite3.Connection, first: int, rows: list[tuple[Any, ...]]) -> None:
        """Indexes the messages a write stores, unless older ones wait: the
        index holds every id up to its position, so those go first, in steps."""
        if not rows:
            return
        if self._indexed is None:
            self._indexed = db.execute("SELECT value FROM meta WHERE key = 'indexed'").fetchone()[0]
        if self._indexed != first - 1:
            return
        self._vocabulary.add(db, [(first + n, row[4]) for n, row in enumerate(rows) if not row[7]])
        self._indexed = first + len(rows) - 1
        db.execute("UPDATE meta SET value = ? WHERE key = 'indexed'", (self._indexed,))

    def _reopen(self) -> Model:
        self._indexed = None  # a failed write's position was not stored
        return super()._reopen()

    def _before_close(self, db: sqlite3.Connection) -> None:
        """Folds the WAL into the database, so it is one file at rest."""
        self._checkpointer.submit(self._close_checkpoints).result()
        with contextlib.suppress(sqlite3.Error):
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    # -- checkpoints, on the checkpointer's thread -------------------------------

    def start(self) -> None:
        super().start()
        self._in_background(self._checkpoint_in_background())

    async def _checkpoint_in_background(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(CHECKPOINT_EVERY)
            await loop.run_in_executor(self._checkpointer, self.checkpoint)

    def checkpoint(self) -> None:
        """Copies what the WAL holds into the database file, beside the
        writer and the readers (PASSIVE: it waits for neither)."""
        try:
            if self._checkpoints is None:
                self._checkpoints = sqlite3.connect(
                    self.path, isolation_level=None, check_same_thread=False
                )
                self._checkpoints.execute(f"PRAGMA synchronous={self._synchronous}")
            self._checkpoints.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error as exc:
            log.warning("checkpoint failed; trying again later: %s", exc)
            self._close_checkpoints()

    def _close_checkpoints(self) -> None:
        if self._checkpoints is not None:
            with contextlib.suppress(sqlite3.Error):
                self._checkpoints.close()
            self._checkpoints = None

    def _shut(self) -> None:
        super()._shut()
        self._checkpointer.shutdown(wait=False)

    def _transaction(self, db: sqlite3.Connection) -> contextlib.AbstractContextManager[None]:
        return transaction(db)


# -- helpers
