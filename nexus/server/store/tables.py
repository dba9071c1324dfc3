"""The SQLite engine's tables: the schema, rows to and from the model's
objects, and the statements that read and write them.

One database file: `users`, `rooms`, `members` (with each member's read
marker), `conversations` (with both read markers), `messages` (every one,
numbered by an id that never comes back, so a full-text entry can never
name another message), `mentions` (who each message names, to list and
count mentions without reading messages) and the search index (words.py).
`files` holds uploads' records (their bytes are beside the database, in
the blob store). `meta` holds how far that has indexed. Sets and maps of small size
(moderators, mutes, invitations, bans, tokens, read markers of a
conversation) are JSON columns of their row.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson

from nexus.server.model import (
    Conversation,
    Follow,
    History,
    Model,
    Pinned,
    Room,
    StoredFile,
    User,
    pair_key,
)
from nexus.server.store import DamagedStore
from nexus.server.store import words as w
from nexus.server.store.rows import (
    FILE_COLUMNS,
    MESSAGE_COLUMNS,
    conversation_row,
    file_row,
    follow_row,
    message_of,
    message_row,
    room_row,
    user_row,
)

# 1: a trigram index of messages' text, and one of their times; 2: words and
# a vocabulary (words.py), no index of times; 3: files; 4: rooms' pins;
# 5: threads (messages' thread and timeline columns, follows).
SCHEMA_VERSION = 5
FILE_MODE = 0o600  # the database holds password hashes and every DM
SCHEMA = (
    """
CREATE TABLE users (
    key TEXT NOT NULL UNIQUE,
    username TEXT NOT NULL,
    password TEXT NOT NULL,
    created REAL NOT NULL,
    bio TEXT NOT NULL,
    last_seen REAL,
    away TEXT,
    admin INTEGER NOT NULL,
    suspended INTEGER NOT NULL,
    tokens TEXT NOT NULL
);
CREATE TABLE rooms (
    name TEXT NOT NULL UNIQUE,
    topic TEXT NOT NULL,
    owner TEXT,
    is_default INTEGER NOT NULL,
    created REAL NOT NULL,
    private INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    moderators TEXT NOT NULL,
    muted TEXT NOT NULL,
    invited TEXT NOT NULL,
    bans TEXT NOT NULL,
    pins TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE members (
    room TEXT NOT NULL,
    "user" TEXT NOT NULL,
    read INTEGER NOT NULL,
    PRIMARY KEY (room, "user")
) WITHOUT ROWID;
CREATE TABLE conversations (
    pair TEXT NOT NULL UNIQUE,
    a TEXT NOT NULL,
    b TEXT NOT NULL,
    last_seq INTEGER NOT NULL,
    read TEXT NOT NULL
);
CREATE TABLE messages (
    id INTEGER PRIMARY KEY,
    scope TEXT NOT NULL,
    seq INTEGER NOT NULL,
    ts REAL NOT NULL,
    author TEXT NOT NULL,
    text TEXT NOT NULL,
    recipient TEXT,
    extra TEXT,
    erased INTEGER NOT NULL,
    UNIQUE (scope, seq)
);
CREATE TABLE mentions (
    name TEXT NOT NULL,
    scope TEXT NOT NULL,
    seq INTEGER NOT NULL,
    ts REAL NOT NULL,
    PRIMARY KEY (name, scope, seq)
) WITHOUT ROWID;
CREATE INDEX mentions_by_time ON mentions (name, ts);
CREATE TABLE meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID;
INSERT INTO meta VALUES ('indexed', 0);
"""
    + w.SCHEMA
)
PINS_COLUMN = "ALTER TABLE rooms ADD COLUMN pins TEXT NOT NULL DEFAULT '[]'"
FILES_SCHEMA = """
CREATE TABLE files (
    id TEXT PRIMARY KEY,
    sha TEXT NOT NULL,
    name TEXT NOT NULL,
    size INTEGER NOT NULL,
    type TEXT NOT NULL,
    owner TEXT NOT NULL,
    ts REAL NOT NULL,
    width INTEGER,
    height INTEGER,
    shared TEXT NOT NULL
) WITHOUT ROWID;
"""


# Threads: each message's root (NULL: none) and whether the timeline shows
# it, so that a thread page and a timeline page are each one indexed range
# (partial indexes: a thread's holds replies only), and who follows which
# thread with their marker there (`following` NULL: a marker only).
THREADS_SCHEMA = """
ALTER TABLE messages ADD COLUMN thread INTEGER;
ALTER TABLE messages ADD COLUMN timeline INTEGER NOT NULL DEFAULT 1;
CREATE INDEX messages_thread ON messages (scope, thread, seq) WHERE thread IS NOT NULL;
CREATE INDEX messages_timeline ON messages (scope, seq) WHERE timeline = 1;
CREATE TABLE follows (
    "user" TEXT NOT NULL,
    scope TEXT NOT NULL,
    root BIGINT NOT NULL,
    following INTEGER,
    read BIGINT NOT NULL,
    PRIMARY KEY ("user", scope, root)
);
"""


class DatabaseError(DamagedStore):
    """The database cannot be used: not one of ours, damaged, or too new."""


@contextlib.contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[None]:
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def check_schema(db: sqlite3.Connection, path: Path) -> None:
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise DatabaseError(
            f"{path}: written by a newer Nexus (schema {version}; this one reads up to"
            f" {SCHEMA_VERSION}): upgrade the server"
        )
    if version == 0 and db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0]:
        raise DatabaseError(f"{path}: a SQLite database, but not one of Nexus's")


def run_script(db: sqlite3.Connection, script: str) -> None:
    """Runs each statement of `script` in the transaction under way (which
    `executescript` would commit first)."""
    statement = ""
    for piece in script.split(";"):
        statement += piece + ";"
        if sqlite3.complete_statement(statement):
            db.execute(statement)
            statement = ""


def migrate(db: sqlite3.Connection) -> int:
    """Brings a database of an older schema to this one; the version it had.
    From 1: the trigram index gives way to words.py's, which the server then
    builds in the background (search reads unindexed messages directly).
    From 2: a table of files, empty. From 3: rooms have pins, none yet.
    From 4: threads; every message stored is on its timeline, in no thread."""
    version: int = db.execute("PRAGMA user_version").fetchone()[0]
    if version < SCHEMA_VERSION:
        with transaction(db):
            if version == 1:
                db.execute("DROP INDEX messages_ts")
                db.execute("DROP TABLE words")
                run_script(db, w.SCHEMA)
                db.execute("UPDATE meta SET value = 0 WHERE key = 'indexed'")
            if version <= 2:
                run_script(db, FILES_SCHEMA)
            if version <= 3:
                db.execute(PINS_COLUMN)
            run_script(db, THREADS_SCHEMA)
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
    return version


def write_files(db: sqlite3.Connection, rows: list[tuple[Any, ...]], gone: list[str]) -> None:
    many(db, "DELETE FROM files WHERE id = ?", [(file_id,) for file_id in gone])
    many(
        db,
        f"INSERT INTO files ({FILE_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)"
        " ON CONFLICT (id) DO UPDATE SET shared = excluded.shared",
        rows,
    )


def write_follows(db: Any, rows: list[tuple[Any, ...]], gone: list[tuple[str, str, int]]) -> None:
    many(db, 'DELETE FROM follows WHERE "user" = ? AND scope = ? AND root = ?', gone)
    many(
        db,
        'INSERT INTO follows ("user", scope, root, following, read) VALUES (?,?,?,?,?)'
        ' ON CONFLICT ("user", scope, root) DO UPDATE SET following = excluded.following,'
        " read = excluded.read",
        rows,
    )


def write_rooms(db: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
    many(
        db,
        "INSERT INTO rooms (name, topic, owner, is_default, created, private, last_seq,"
        " moderators, muted, invited, bans, pins) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
        " ON CONFLICT (name) DO UPDATE SET topic = excluded.topic, owner = excluded.owner,"
        " private = excluded.private, last_seq = CASE WHEN excluded.last_seq > rooms.last_seq"
        " THEN excluded.last_seq ELSE rooms.last_seq END,"
        " moderators = excluded.moderators, muted = excluded.muted,"
        " invited = excluded.invited, bans = excluded.bans, pins = excluded.pins",
        rows,
    )


def many(db: Any, sql: str, rows: Sequence[tuple[Any, ...]]) -> None:
    """`executemany`, not run for no rows: a statement costs the writer a trip
    through the driver (and, for sqlite, the GIL twice) even with none."""
    if rows:
        db.executemany(sql, rows)


# Rows one INSERT takes: a cut's messages go in a few statements of these
# sizes, not one step each (the sqlite3 module lets the GIL go, and takes
# it back, around every step), and the statements stay few enough to be
# prepared once.
ROWS_A_STATEMENT = (64, 16, 4, 1)


def insert_rows(db: Any, head: str, rows: Sequence[tuple[Any, ...]]) -> None:
    """`head` ("INSERT INTO t (...) VALUES ") run for `rows`, several a statement."""
    if not rows:
        return
    one = "(" + ",".join("?" * len(rows[0])) + ")"
    done = 0
    for size in ROWS_A_STATEMENT:
        statement = head + ",".join([one] * size)
        while len(rows) - done >= size:
            db.execute(statement, [value for row in rows[done : done + size] for value in row])
            done += size


def next_id(db: Any) -> int:
    """The id a new message takes: on from the highest the index has passed,
    so that none comes back when the newest messages are deleted (what
    AUTOINCREMENT does, at a cost on each row)."""
    newest = db.execute("SELECT coalesce(max(id), 0) FROM messages").fetchone()[0]
    indexed = db.execute("SELECT value FROM meta WHERE key = 'indexed'").fetchone()[0]
    return int(max(newest, indexed)) + 1


def insert_messages(db: Any, rows: list[tuple[Any, ...]], first: int, fold: bool = False) -> None:
    """Stores new messages, numbered from `first` (`next_id`). With `fold`,
    each one's text casefolded too (`folded`, what PostgreSQL searches: it
    cannot casefold as Python does)."""
    columns = f"{MESSAGE_COLUMNS}, thread, timeline"
    if fold:
        values = [(first + n, *row, row[4].casefold()) for n, row in enumerate(rows)]
        columns += ", folded"
    else:
        values = [(first + n, *row) for n, row in enumerate(rows)]
    insert_rows(db, f"INSERT INTO messages ({columns}) VALUES ", values)
    mentions = []
    last: dict[str, int] = {}
    for scope, seq, ts, _, _, _, extra, *_ in rows:
        if extra is not None and '"mentions"' in extra:
            mentions += [(name, scope, seq, ts) for name in orjson.loads(extra)["mentions"]]
        last[scope] = max(seq, last.get(scope, 0))
    many(db, "INSERT INTO mentions VALUES (?,?,?,?) ON CONFLICT DO NOTHING", mentions)
    many(
        db,
        "UPDATE rooms SET last_seq = ? WHERE name = ? AND last_seq < ?",
        [(seq, scope, seq) for scope, seq in last.items() if "\n" not in scope],
    )


def change_message(
    db: Any, row: tuple[Any, ...], indexed: int, vocabulary: w.Vocabulary, fold: bool = False
) -> None:
    """Rewrites a stored message, its mentions and, if indexed, its words."""
    scope, seq, _, _, text, _, extra, erased = row[:8]
    found = db.execute(
        "SELECT id, text, erased FROM messages WHERE scope = ? AND seq = ?", (scope, seq)
    ).fetchone()
    if found is None:
        return  # its room is gone, or it was trimmed
    id_, old_text, was_erased = found
    db.execute(
        "UPDATE messages SET text = ?, extra = ?, erased = ? WHERE id = ?",
        (text, extra, erased, id_),
    )
    if fold:
        db.execute("UPDATE messages SET folded = ? WHERE id = ?", (text.casefold(), id_))
    if id_ <= indexed and (old_text != text or was_erased != erased):
        if not was_erased:
            w.remove(db, [(id_, old_text)])
        if not erased:
            vocabulary.add(db, [(id_, text)])
    db.execute("DELETE FROM mentions WHERE scope = ? AND seq = ?", (scope, seq))
    if extra is not None and '"mentions"' in extra:
        ts = db.execute("SELECT ts FROM messages WHERE id = ?", (id_,)).fetchone()[0]
        db.executemany(
            "INSERT INTO mentions VALUES (?,?,?,?) ON CONFLICT DO NOTHING",
            [(name, scope, seq, ts) for name in orjson.loads(extra)["mentions"]],
        )


def delete_room(db: sqlite3.Connection, name: str, indexed: int) -> None:
    """A deleted room goes with its members, messages, mentions and words."""
    w.remove(
        db,
        db.execute(
            "SELECT id, text FROM messages WHERE scope = ? AND id <= ? AND erased = 0",
            (name, indexed),
        ).fetchall(),
    )
    tables = (
        ("messages", "scope"),
        ("mentions", "scope"),
        ("members", "room"),
        ("follows", "scope"),
    )
    for table, column in tables:
        db.execute(f"DELETE FROM {table} WHERE {column} = ?", (name,))
    db.execute("DELETE FROM rooms WHERE name = ?", (name,))


def read_model(db: Any, room_window: int, dm_window: int, load: bool = False) -> Model:
    """The model as the database holds it, its windows empty, or with `load`
    (for maintenance: every message, windows of no limit) full."""
    model = Model(room_window, dm_window, spills=True)
    model.rooms.clear()
    defaults = db.execute("SELECT name FROM rooms WHERE is_default = 1 ORDER BY rowid")
    model.default_rooms = tuple(name for (name,) in defaults)
    for row in db.execute(
        "SELECT key, username, password, created, bio, last_seen, away, admin, suspended,"
        " tokens FROM users ORDER BY rowid"
    ):
        key, username, password, created, bio, last_seen, away, admin, suspended, tokens = row
        model.users[key] = User(
            username,
            password,
            created,
            bio,
            last_seen,
            tokens=orjson.loads(tokens),
            away=away,
            suspended=bool(suspended),
        )
        if admin:
            model.set_admin(key, True)
    for row in db.execute(
        "SELECT name, topic, owner, is_default, created, private, last_seq, moderators,"
        " muted, invited, bans, pins FROM rooms ORDER BY rowid"
    ):
        name, topic, owner, default, created, private, last_seq = row[:7]
        moderators, muted, invited, bans, pins = (orjson.loads(value) for value in row[7:])
        model.rooms[name] = Room(
            name,
            topic,
            owner,
            bool(default),
            created,
            read_window(db, name, room_window, last_seq, load),
            private=bool(private),
            moderators=set(moderators),
            muted=set(muted),
            bans={ban["user"].lower(): ban for ban in bans},
            invited=set(invited),
            pins=[Pinned(**pin) for pin in pins],
        )
    for name, key, read in db.execute('SELECT room, "user", read FROM members'):
        room = model.rooms[name]
        model.add_member(key, room)
        model.users[key].read[name] = read
    for pair, a, b, last_seq, read in db.execute(
        "SELECT pair, a, b, last_seq, read FROM conversations ORDER BY rowid"
    ):
        model.conversations[pair] = Conversation(
            (a, b), read_window(db, pair, dm_window, last_seq, load), orjson.loads(read)
        )
        model.users[a].conversations.add(pair)
        model.users[b].conversations.add(pair)
    for key, scope, root, on, read in db.execute(
        'SELECT "user", scope, root, following, read FROM follows'
    ):
        on = None if on is None else bool(on)
        model.users[key].follows[scope, root] = Follow(on, read)
    for row in db.execute(f"SELECT {FILE_COLUMNS} FROM files ORDER BY ts, id"):  # as uploaded
        file = model.files[row[0]] = StoredFile(*row[:9])
        file.shared = {(scope, seq) for scope, seq in orjson.loads(row[9])}
    return model


def read_window(db: Any, scope: str, size: int, last_seq: int, load: bool) -> History:
    """A window of `size` on `scope`'s messages: empty (a server fills it as
    messages come; older ones are read from disk when asked for, so start-up
    and memory do not grow with history), or with `load` every message."""
    oldest = db.execute("SELECT MIN(seq) FROM messages WHERE scope = ?", (scope,)).fetchone()[0]
    if not load:
        history = History(size, last_seq, (), oldest, spills=True)
        read_threads(db, scope, history)
        return history
    rows = db.execute(
        f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE scope = ? ORDER BY seq", (scope,)
    ).fetchall()
    return History(size, last_seq, map(message_of, rows), None, spills=True)


def read_threads(db: Any, scope: str, history: History) -> None:
    """Every thread's replies in `scope` (seq, author, time, erased): what
    summaries, thread pages and unread counts are answered from."""
    for root, seq, author, ts, erased in db.execute(
        "SELECT thread, seq, author, ts, erased FROM messages WHERE scope = ?"
        " AND thread IS NOT NULL ORDER BY thread, seq",
        (scope,),
    ):
        history.thread(root).add(seq, author, ts, bool(erased))


def create(db: sqlite3.Connection, model: Model) -> None:
    """Makes the tables, holding everything `model` holds (a new store's
    default rooms, or a whole store being migrated); inside a transaction."""
    run_script(db, SCHEMA)
    run_script(db, FILES_SCHEMA)
    run_script(db, THREADS_SCHEMA)
    fill(db, model)
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")


def fill(db: Any, model: Model, fold: bool = False) -> None:
    """Writes everything `model` holds into empty tables (any engine's)."""
    write_files(db, [file_row(f) for f in model.files.values()], [])
    guests = {key for key, user in model.users.items() if user.guest}
    db.executemany(
        "INSERT INTO users (key, username, password, created, bio, last_seen, away, admin,"
        " suspended, tokens) VALUES (?,?,?,?,?,?,?,?,?,?)",
        [user_row(key, user) for key, user in model.users.items() if not user.guest],
    )
    rooms = [room for room in model.rooms.values() if not room.ephemeral]
    write_rooms(db, [room_row(room, guests) for room in rooms])
    db.executemany(
        "INSERT INTO members VALUES (?,?,?)",
        [
            (room.name, key, model.users[key].read.get(room.name, 0))
            for room in rooms
            for key in sorted(room.members - guests)
        ],
    )
    conversations = [c for c in model.conversations.values() if guests.isdisjoint(c.users)]
    stored = {room.name for room in rooms} | {pair_key(*c.users) for c in conversations}
    write_follows(
        db,
        [
            follow_row(key, scope, root, follow)
            for key, user in model.users.items()
            if not user.guest
            for (scope, root), follow in user.follows.items()
            if scope in stored
        ],
        [],
    )
    db.executemany(
        "INSERT INTO conversations (pair, a, b, last_seq, read) VALUES (?,?,?,?,?)",
        map(conversation_row, conversations),
    )
    # Every message, oldest first, so ids run in the order of time.
    scopes = [(room.name, room.history) for room in rooms] + [
        (pair_key(*c.users), c.history) for c in conversations
    ]
    ordered = sorted(
        (message.ts, position, message.seq, scope, message)
        for position, (scope, history) in enumerate(scopes)
        for message in history.messages
    )
    rows = [message_row(scope, m) for _, _, _, scope, m in ordered]
    insert_messages(db, rows, next_id(db), fold)


def index_some(db: sqlite3.Connection, limit: int, vocabulary: w.Vocabulary) -> bool:
    """Adds up to `limit` messages not indexed yet to the search index;
    whether more wait."""
    indexed = db.execute("SELECT value FROM meta WHERE key = 'indexed'").fetchone()[0]
    rows = db.execute(
        "SELECT id, text, erased FROM messages WHERE id > ? ORDER BY id LIMIT ?",
        (indexed, limit),
    ).fetchall()
    if not rows:
        return False
    vocabulary.add(db, [(id_, text) for id_, text, erased in rows if not erased])
    db.execute("UPDATE meta SET value = ? WHERE key = 'indexed'", (rows[-1][0],))
    return len(rows) == limit


# Every message, in the order `export` prints them on every engine: by time,
# then rooms before conversations, each in the order it was made, then seq.
EXPORT = (
    f"SELECT {', '.join('m.' + c for c in MESSAGE_COLUMNS.split(', '))} FROM messages m"
    " LEFT JOIN rooms r ON r.name = m.scope LEFT JOIN conversations c ON c.pair = m.scope"
    " WHERE (r.rowid IS NOT NULL OR c.rowid IS NOT NULL)"
    " ORDER BY m.ts, r.rowid IS NULL, coalesce(r.rowid, c.rowid), m.seq"
)


def counts(db: Any) -> dict[str, int]:
    """How many of each thing the database holds, as `check` prints them
    (any engine's: a conversation's scope holds a newline, a room's never)."""

    def count(query: str, *params: str) -> int:
        return int(db.execute(query, params).fetchone()[0])

    return {
        "users": count("SELECT COUNT(*) FROM users"),
        "rooms": count("SELECT COUNT(*) FROM rooms"),
        "room messages": count("SELECT COUNT(*) FROM messages WHERE scope NOT LIKE ?", "%\n%"),
        "conversations": count("SELECT COUNT(*) FROM conversations"),
        "direct messages": count("SELECT COUNT(*) FROM messages WHERE scope LIKE ?", "%\n%"),
        "files": count("SELECT COUNT(*) FROM files"),
    }


def inconsistencies(db: Any) -> list[str]:
    """What in the tables (any engine's) start-up could not read, or the
    server would trip on: a membership or conversation naming no such
    user or room, messages of no room or conversation, and messages
    numbered past their room's or conversation's last number (the next
    one would collide)."""
    found = [
        f"{key} is a member of #{room}, but that user or room is gone"
        for key, room in db.execute(
            'SELECT m."user", m.room FROM members m LEFT JOIN rooms r ON r.name = m.room'
            ' LEFT JOIN users u ON u.key = m."user" WHERE r.name IS NULL OR u.key IS NULL'
        )
    ]
    found += [
        f"the conversation of {a} and {b} names a user who is gone"
        for a, b in db.execute(
            "SELECT c.a, c.b FROM conversations c LEFT JOIN users a ON a.key = c.a"
            " LEFT JOIN users b ON b.key = c.b WHERE a.key IS NULL OR b.key IS NULL"
        )
    ]
    found += [
        f"{n:,} messages of {_shown(scope)}, which is no room or conversation"
        for scope, n in db.execute(
            "SELECT m.scope, COUNT(*) FROM messages m LEFT JOIN rooms r ON r.name = m.scope"
            " LEFT JOIN conversations c ON c.pair = m.scope"
            " WHERE r.name IS NULL AND c.pair IS NULL GROUP BY m.scope ORDER BY m.scope"
        )
    ]
    found += [
        f"{_shown(scope)} has message {top} past its last number, {last}"
        for scope, top, last in db.execute(
            "SELECT s.scope, m.top, s.last FROM (SELECT name AS scope, last_seq AS last FROM rooms"
            " UNION ALL SELECT pair, last_seq FROM conversations) s JOIN (SELECT scope,"
            " MAX(seq) AS top FROM messages GROUP BY scope) m ON m.scope = s.scope"
            " WHERE m.top > s.last ORDER BY s.scope"
        )
    ]
    return found


def _shown(scope: str) -> str:
    """A scope as a report names it: #room, or the conversation of a and b."""
    if "\n" in scope:
        return "the conversation of " + " and ".join(scope.split("\n"))
    return "#" + scope
