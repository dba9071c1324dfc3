"""Store files written directly in the server's formats, with the stores' own writers:
a json snapshot (snapshot_pieces), or a sqlite database (the engine's tables).

Benchmarks set up their users, rooms and histories here instead of through
`register`, so that setting up 1,000 members does not cost 1,000 argon2id
hashes. The hashes written are real argon2id PHC strings: the server verifies
them with the parameters they carry. Fan-out scenarios use cheap parameters
(set-up is not what they measure); the reconnect storm uses the server's own
OWASP parameters, so it measures real password checks.
"""

from __future__ import annotations

import itertools
import random
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher

from nexus.protocol import DEFAULT_ROOMS
from nexus.server.auth import FAST, OWASP
from nexus.server.model import Model, Room, User
from nexus.server.store import tables
from nexus.server.store.engines import engine_of
from nexus.server.store.journal import snapshot_head, snapshot_pieces
from nexus.server.store.words import Vocabulary

PASSWORD = "bench-password"


def password_hash(strong: bool) -> str:
    return PasswordHasher(**(OWASP if strong else FAST)).hash(PASSWORD)


def user_name(i: int) -> str:
    return f"u{i:05d}"


def _room(name: str, members_messages: Iterable[dict] = (), last_seq: int = 0) -> dict:
    return {
        "name": name,
        "topic": "",
        "owner": None if name in DEFAULT_ROOMS else user_name(0),
        "default": name in DEFAULT_ROOMS,
        "created": 0.0,
        "last_seq": last_seq,
        "messages": list(members_messages),
    }


def write_store(
    path: Path,
    users: int,
    rooms_of: dict[int, list[str]] | None = None,
    strong_hash: bool = False,
    room_messages: dict[str, int] | None = None,
    text_size: int = 80,
    texts: list[str] | None = None,
    threads: dict[str, Threads] | None = None,
) -> Path:
    """Writes a store (a json snapshot, or a sqlite database for a `.db` path):
    `users` users (u00000...), each in the rooms `rooms_of[i]` (default: none),
    and `room_messages[name]` stored messages per room, whose texts are "<seq> "
    and lorem ipsum, or one of `texts` chosen by room and seq; in the rooms
    `threads` names, some of them replies in threads."""
    if engine_of(path) == "sqlite":
        return write_database(
            path, users, rooms_of, strong_hash, room_messages, text_size, texts, threads
        )
    hashed = password_hash(strong_hash)
    rooms_of = rooms_of or {}
    room_messages = room_messages or {}
    now = time.time()
    rooms = []
    for r, name in enumerate(_room_names(rooms_of, room_messages)):
        count = room_messages.get(name, 0)
        messages = [
            {"room": name, "seq": seq, "from": author, "text": text, "ts": ts}
            | ({"thread": root} if (root := _root(threads, name, seq)) else {})
            for seq, author, text, ts in _messages(r, count, users, text_size, texts, now)
        ]
        rooms.append(_room(name, messages, count))
    body = {
        "users": [
            {
                "username": user_name(i),
                "password": hashed,
                "created": now,
                "bio": "",
                "last_seen": now,
                "rooms": sorted(rooms_of.get(i, ())),
            }
            for i in range(users)
        ],
        "rooms": rooms,
        "dms": [],
    }
    path.write_bytes(b"".join(snapshot_pieces(snapshot_head(0), body)))
    journal = path.with_name(path.name + ".journal")
    if journal.exists():
        journal.unlink()
    return path


def write_database(
    path: Path,
    users: int,
    rooms_of: dict[int, list[str]] | None = None,
    strong_hash: bool = False,
    room_messages: dict[str, int] | None = None,
    text_size: int = 80,
    texts: list[str] | None = None,
    threads: dict[str, Threads] | None = None,
) -> Path:
    """`write_store`'s store as a sqlite database, every message indexed for
    search (10M messages: minutes, most of them the full-text index)."""
    hashed = password_hash(strong_hash)
    rooms_of = rooms_of or {}
    room_messages = room_messages or {}
    now = time.time()
    model = Model()
    for i in range(users):
        model.users[user_name(i)] = User(user_name(i), hashed, now, last_seen=now)
    names = _room_names(rooms_of, room_messages)
    for name in names:
        if name not in DEFAULT_ROOMS:
            model.rooms[name] = Room(name, "", user_name(0), False, 0.0)
    for i, rooms in rooms_of.items():
        for name in rooms:
            model.add_member(user_name(i), model.rooms[name])
    for suffix in ("", "-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    with sqlite3.connect(path, isolation_level=None) as db:
        db.execute("PRAGMA journal_mode=WAL")
        with tables.transaction(db):
            tables.create(db, model)
        for r, name in enumerate(names):
            made = _messages(r, room_messages.get(name, 0), users, text_size, texts, now)
            while rows := [
                _row(name, seq, ts, author, text, _root(threads, name, seq))
                for seq, author, text, ts in itertools.islice(made, 100_000)
            ]:
                with tables.transaction(db):
                    tables.insert_messages(db, rows, tables.next_id(db))
        vocabulary = Vocabulary()
        while True:
            with tables.transaction(db):
                if not tables.index_some(db, 50_000, vocabulary):
                    break
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    path.chmod(0o600)
    return path


@dataclass(frozen=True)
class Threads:
    """Threads in every room: of each `every` messages, the first is a root
    and the `replies` after it its replies (the rest are not in a thread)."""

    every: int
    replies: int

    def root(self, seq: int) -> int | None:
        """The root seq of message `seq`, if it is a reply."""
        offset = (seq - 1) % self.every
        return seq - offset if 1 <= offset <= self.replies else None


def _root(threads: dict[str, Threads] | None, room: str, seq: int) -> int | None:
    made = threads.get(room) if threads else None
    return made.root(seq) if made is not None else None


def _row(
    scope: str, seq: int, ts: float, author: str, text: str, root: int | None
) -> tuple[object, ...]:
    """A row of tables.insert_messages: a reply names its root in its extra
    fields and its `thread` column, and is off the timeline."""
    extra = None if root is None else f'{{"thread":{root}}}'
    return (scope, seq, ts, author, text, None, extra, 0, root, int(root is None))


def _room_names(rooms_of: dict[int, list[str]], room_messages: dict[str, int]) -> list[str]:
    """Every room a store holds, in the order both writers make them."""
    names = set(DEFAULT_ROOMS) | set(room_messages)
    for rooms in rooms_of.values():
        names.update(rooms)
    return sorted(names)


def _messages(
    room: int, count: int, users: int, text_size: int, texts: list[str] | None, now: float
) -> Iterator[tuple[int, str, str, float]]:
    """The `count` messages of the `room`-th room: (seq, author, text, ts), the
    newest sent now, one a second before it."""
    filler = ("lorem ipsum dolor sit amet " * (text_size // 27 + 1))[:text_size]
    for seq in range(1, count + 1):
        text = f"{seq} {_pick(texts, room, seq) if texts else filler}"
        yield seq, user_name((room * 31 + seq * 7) % max(users, 1)), text, now - (count - seq)


def _pick(texts: list[str], room: int, seq: int) -> str:
    """One of `texts` for a room's message, spread evenly over rooms and seqs."""
    return texts[(room * 7919 + seq * 104_729) % len(texts)]


def vocabulary(size: int, seed: int = 1) -> list[str]:
    """`size` distinct pronounceable words, most common first."""
    rng = random.Random(seed)
    syllables = [c + v for c in "bcdfghjklmnprstvwz" for v in "aeiou"]
    words: dict[str, None] = {}
    while len(words) < size:
        words["".join(rng.choice(syllables) for _ in range(rng.randint(2, 4)))] = None
    return list(words)


def chat_texts(words: list[str], count: int, seed: int = 2) -> list[str]:
    """`count` texts of 6-16 words drawn with Zipf's law (word k about 1/k as
    often as the first), as people's words are."""
    rng = random.Random(seed)
    weights = [1 / (rank + 1) for rank in range(len(words))]
    return [" ".join(rng.choices(words, weights, k=rng.randint(6, 16))) for _ in range(count)]
