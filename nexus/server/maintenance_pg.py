"""PostgreSQL under `nexus-server check`, `export` and `migrate`: reaching
a database by its URL, reading it as of one moment, writing a new store
into an empty one.

Reading is one REPEATABLE READ, READ ONLY transaction: every table is
read as of one snapshot while the server writes, and nothing can be
changed. Writing (`migrate` into PostgreSQL) makes the schema and every
row in one transaction, which PostgreSQL keeps whole (its DDL is
transactional too): a migrate that fails leaves the database as it was.

A URL is shown without its password, in reports and in errors alike.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from nexus.server.model import Model
from nexus.server.store import DamagedStore
from nexus.server.store.postgres import SCHEMA_VERSION, Connection, create

SCHEMES = ("postgresql://", "postgres://")  # what libpq takes as a URL
CONNECT_TIMEOUT = 10  # seconds, unless the URL says (an unreachable host would take minutes)


class DatabaseUnusable(Exception):
    """The database cannot be reached or used as asked; `code` names the
    kind of failure, the message says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def is_url(name: str) -> bool:
    """Whether `name` (a migrate's SRC or DEST) is a PostgreSQL database's URL."""
    return name.startswith(SCHEMES)


def shown(url: str) -> str:
    """`url` without its password (after `USER:`, or a `password=` parameter),
    however malformed the rest of it."""
    return _PASSWORD.sub(lambda m: (m.group(1) or m.group(2)) + "***", url)


_PASSWORD = re.compile(r"(://[^/@:]*:)[^/@]*(?=@)|([?&]password=)[^&]*")


def _why(exc: psycopg.Error) -> str:
    """psycopg's message on one line, any URL in it without its password."""
    return shown(" ".join(str(exc).split())) or type(exc).__name__


@contextlib.contextmanager
def connected(url: str) -> Iterator[Connection]:
    """A connection to the database at `url` (autocommit: transactions are
    begun explicitly); any database error inside is a DatabaseUnusable."""
    try:
        params = conninfo_to_dict(url)
    except psycopg.Error as exc:
        raise DatabaseUnusable("bad_url", f"{shown(url)}: {_why(exc)}") from None
    if not re.fullmatch(r"[0-9,]*", str(params.get("port", ""))):
        raise DatabaseUnusable("bad_url", f"{shown(url)}: the port is not a number")
    timeout = {} if "connect_timeout" in params else {"connect_timeout": CONNECT_TIMEOUT}
    try:
        raw = psycopg.connect(make_conninfo(url, **timeout), autocommit=True)
    except psycopg.Error as exc:
        raise DatabaseUnusable("unreachable", f"cannot reach {shown(url)}: {_why(exc)}") from None
    try:
        with contextlib.closing(Connection(raw)) as db:
            yield db
    except psycopg.Error as exc:
        raise DatabaseUnusable("database", f"{shown(url)}: {_why(exc)}") from None


def schema_of(db: Connection) -> int | None:
    """The Nexus schema the database holds, None if it holds none."""
    if _row(db, "SELECT to_regclass('meta')")[0] is None:
        return None
    found = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
    return int(found[0]) if found is not None else None


@contextlib.contextmanager
def reading(url: str) -> Iterator[Connection]:
    """The Nexus store at `url`, read in one snapshot that changes nothing."""
    with connected(url) as db:
        db.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        version = schema_of(db)
        if version is None:
            raise DatabaseUnusable("no_store", f"{shown(url)} holds no Nexus store")
        if version > SCHEMA_VERSION:
            raise DatabaseUnusable(
                "too_new",
                f"{shown(url)} was written by a newer Nexus (schema {version}; this one reads"
                f" up to {SCHEMA_VERSION}): upgrade",
            )
        yield db
        db.execute("ROLLBACK")


@contextlib.contextmanager
def writing(url: str, model: Model) -> Iterator[Connection]:
    """Writes `model` as a new store into the empty database at `url`, in
    one transaction committed when the block ends without an error (the
    block checks what was written, or copies what goes with it)."""
    with connected(url) as db:
        db.execute("BEGIN")
        (tables,) = _row(db, "SELECT COUNT(*) FROM pg_tables WHERE schemaname = current_schema()")
        if tables:
            kind = "a Nexus store" if schema_of(db) is not None else f"{tables} tables"
            raise DatabaseUnusable(
                "not_empty",
                f"{shown(url)} holds {kind}: migrate writes only into an empty database"
                " (dropdb and createdb make one)",
            )
        try:
            create(db, model)
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")


def describe(db: Connection) -> str:
    """The server's version and the database's size, for `check`'s report."""
    version, size = _row(
        db, "SELECT current_setting('server_version'), pg_database_size(current_database())"
    )
    return f"PostgreSQL {version}, {size:,} bytes"


def index_check(db: Connection) -> str:
    """`check`'s line on the indexes: each verified with amcheck when the
    database has that extension (PostgreSQL keeps its own pages sound;
    damage would show in an index first), else how to have them checked."""
    if db.execute("SELECT 1 FROM pg_extension WHERE extname = 'amcheck'").fetchone() is None:
        return "indexes: not verified (CREATE EXTENSION amcheck in the database, and check will)"
    indexes = db.execute(
        "SELECT c.oid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
        " JOIN pg_am a ON a.oid = c.relam JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE a.amname = 'btree' AND n.nspname = current_schema()"
    ).fetchall()
    try:
        for (oid,) in indexes:
            db.execute("SELECT bt_index_check(?::regclass, true)", (oid,))
    except (psycopg.errors.DataCorrupted, psycopg.errors.IndexCorrupted) as exc:
        raise DamagedStore(_why(exc)) from None
    return f"indexes: {len(indexes)} verified (amcheck), sound"


def _row(db: Connection, query: str) -> tuple[Any, ...]:
    """The one row a query of functions or aggregates gives."""
    row = db.execute(query).fetchone()
    assert row is not None, query
    return tuple(row)
