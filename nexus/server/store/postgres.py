"""The PostgreSQL engine: every message kept in a PostgreSQL database.

The table engines' shell (tabled.py) with PostgreSQL under it: the same
tables and statements as SQLite (tables.py, written with `?`, which the
connections here turn into psycopg's `%s`), a schema of PostgreSQL's own
types, and search by a trigram index (pg_trgm) on each message's text
casefolded (by Python, as it is stored: PostgreSQL's lower() is no
casefold), which finds a term as a substring, as the protocol's rule says.

A reply `ok` means committed (`synchronous_commit` as the server has it).
The writer and each reader thread hold one connection; psycopg releases
the GIL while it waits on the network, so the event loop serves others.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import psycopg

from nexus.protocol import DEFAULT_ROOMS
from nexus.server.model import Model
from nexus.server.store import DamagedStore, StoreError
from nexus.server.store.rows import MESSAGE_COLUMNS
from nexus.server.store.tabled import TabledStore, matching, search_filters
from nexus.server.store.tables import PINS_COLUMN, THREADS_SCHEMA, fill

log = logging.getLogger("nexus.store")

# 1: as sqlite's schema 3; 2: rooms' pins; 3: threads (as sqlite's schema 5);
# 4: the changes several nodes take turns to make (clustered.py).
SCHEMA_VERSION = 4

# Each node's turn, in the order they were taken: its records and what its
# hub told, which every other node applies and tells in that order.
CHANGES_SCHEMA = """
CREATE TABLE changes (
    position BIGSERIAL PRIMARY KEY,
    node TEXT NOT NULL,
    items BYTEA NOT NULL
);
"""

SCHEMA = (
    """
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE TABLE meta (key TEXT PRIMARY KEY, value BIGINT NOT NULL);
INSERT INTO meta VALUES ('schema', 4), ('indexed', 0);
CREATE TABLE users (
    rowid BIGSERIAL,
    key TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    password TEXT NOT NULL,
    created DOUBLE PRECISION NOT NULL,
    bio TEXT NOT NULL,
    last_seen DOUBLE PRECISION,
    away TEXT,
    admin INTEGER NOT NULL,
    suspended INTEGER NOT NULL,
    tokens TEXT NOT NULL
);
CREATE TABLE rooms (
    rowid BIGSERIAL,
    name TEXT PRIMARY KEY,
    topic TEXT NOT NULL,
    owner TEXT,
    is_default INTEGER NOT NULL,
    created DOUBLE PRECISION NOT NULL,
    private INTEGER NOT NULL,
    last_seq BIGINT NOT NULL,
    moderators TEXT NOT NULL,
    muted TEXT NOT NULL,
    invited TEXT NOT NULL,
    bans TEXT NOT NULL,
    pins TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE members (
    room TEXT NOT NULL,
    "user" TEXT NOT NULL,
    read BIGINT NOT NULL,
    PRIMARY KEY (room, "user")
);
CREATE TABLE conversations (
    rowid BIGSERIAL,
    pair TEXT PRIMARY KEY,
    a TEXT NOT NULL,
    b TEXT NOT NULL,
    last_seq BIGINT NOT NULL,
    read TEXT NOT NULL
);
CREATE TABLE messages (
    id BIGINT PRIMARY KEY,
    scope TEXT NOT NULL,
    seq BIGINT NOT NULL,
    ts DOUBLE PRECISION NOT NULL,
    author TEXT NOT NULL,
    text TEXT NOT NULL,
    recipient TEXT,
    extra TEXT,
    erased INTEGER NOT NULL,
    folded TEXT NOT NULL,
    UNIQUE (scope, seq)
);
CREATE INDEX messages_folded ON messages USING gin (folded gin_trgm_ops);
CREATE TABLE mentions (
    name TEXT NOT NULL,
    scope TEXT NOT NULL,
    seq BIGINT NOT NULL,
    ts DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (name, scope, seq)
);
CREATE INDEX mentions_by_time ON mentions (name, ts);
CREATE TABLE files (
    id TEXT PRIMARY KEY,
    sha TEXT NOT NULL,
    name TEXT NOT NULL,
    size BIGINT NOT NULL,
    type TEXT NOT NULL,
    owner TEXT NOT NULL,
    ts DOUBLE PRECISION NOT NULL,
    width INTEGER,
    height INTEGER,
    shared TEXT NOT NULL
);
"""
    + CHANGES_SCHEMA
)


class Connection:
    """A psycopg connection that takes the table engines' statements, whose
    parameters are written `?`, as DB-API connections take them."""

    def __init__(self, raw: psycopg.Connection[Any]) -> None:
        self.raw = raw

    def execute(self, sql: str, params: Sequence[Any] = ()) -> psycopg.Cursor[Any]:
        return self.raw.execute(sql.replace("?", "%s"), params)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        rows = list(rows)
        if rows:
            self.raw.cursor().executemany(sql.replace("?", "%s"), rows)

    def close(self) -> None:
        self.raw.close()


def create(db: Connection, model: Model) -> None:
    """Makes the tables, holding everything `model` holds (a new store's
    default rooms, or a whole store being migrated); inside a transaction."""
    for statement in filter(str.strip, (SCHEMA + THREADS_SCHEMA).split(";")):
        db.execute(statement)
    fill(db, model, fold=True)


@contextlib.contextmanager
def transaction(db: Connection) -> Iterator[None]:
    db.execute("BEGIN")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


class PostgresStore(TabledStore):
    """The model, kept durable in PostgreSQL (the `Store` protocol's
    `postgresql` engine). Open with `await PostgresStore.open(url)`."""

    errors = (psycopg.Error,)
    folds = True

    def __init__(
        self,
        url: str,
        window: int = 500,
        dm_window: int = 200,
        retention_days: int = 0,
        default_rooms: Sequence[str] = DEFAULT_ROOMS,
    ) -> None:
        super().__init__("postgres", window, dm_window, retention_days, default_rooms)
        self.url = url

    @classmethod
    async def open(
        cls,
        url: str,
        window: int = 500,
        dm_window: int = 200,
        retention_days: int = 0,
        default_rooms: Sequence[str] = DEFAULT_ROOMS,
    ) -> PostgresStore:
        return await cls(url, window, dm_window, retention_days, default_rooms)._opened()

    def _connect(self) -> Connection:
        try:
            return Connection(psycopg.connect(self.url, autocommit=True))
        except psycopg.Error as exc:
            raise StoreError(f"cannot reach the database: {exc}".strip()) from None

    def _open_database(self) -> Model:
        """Connects, makes the tables if the database has none, reads the model."""
        db = self._connection = self._connect()
        tables = db.execute("SELECT to_regclass('meta')").fetchone()
        if tables is None or tables[0] is None:
            with transaction(db):
                create(db, Model(default_rooms=self.default_rooms))
        else:
            version = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            if version is None or version[0] > SCHEMA_VERSION:
                raise DamagedStore(
                    f"the database was written by a newer Nexus (schema {version}): upgrade"
                )
            if version[0] < SCHEMA_VERSION:  # 1: no pins; 2: no threads; 3: no changes
                with transaction(db):
                    if version[0] < 2:
                        db.execute(PINS_COLUMN)
                    if version[0] < 3:
                        for statement in filter(str.strip, THREADS_SCHEMA.split(";")):
                            db.execute(statement)
                    db.execute(CHANGES_SCHEMA)
                    db.execute("UPDATE meta SET value = ? WHERE key = 'schema'", (SCHEMA_VERSION,))
                log.info("PostgreSQL schema %d brought to %d", version[0], SCHEMA_VERSION)
        return self._read_model()

    def _reopen(self) -> Model:
        """A new connection (the one a write failed on may be broken: the
        server restarted, the network went), then the model."""
        self._close_connection()
        self._connection = self._connect()
        return super()._reopen()

    def _connect_reader(self) -> Connection:
        return self._connect()

    def _transaction(self, db: Connection) -> contextlib.AbstractContextManager[None]:
        return transaction(db)

    def _index_step(self) -> bool:
        return False  # the trigram index is PostgreSQL's to keep

    def _read_search(
        self,
        scopes: list[str],
        terms: list[str],
        author: str | None,
        before: float | None,
        limit: int,
    ) -> list[tuple[Any, ...]]:
        """Up to limit + 1 matches, newest first: the trigram index finds the
        messages whose casefolded text holds each term."""
        filters, params = search_filters(author, before)
        marks = ",".join("?" * len(scopes))
        likes = "".join(" AND m.folded LIKE ?" for _ in terms)
        patterns = ["%" + _escaped(term) + "%" for term in terms]
        rows = self._reader().execute(
            f"SELECT {MESSAGE_COLUMNS} FROM messages m WHERE m.scope IN ({marks}){filters}"
            f"{likes} ORDER BY m.id DESC",
            [*scopes, *params, *patterns],
        )
        return matching(rows, terms, limit + 1)


def _escaped(term: str) -> str:
    """`term` matched literally by LIKE (its `%`, `_` and `\\` escaped)."""
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
