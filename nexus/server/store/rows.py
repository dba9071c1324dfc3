"""A table engine's rows: the model's objects as the tuples its tables
hold, and back, in the column order every engine's schema keeps."""

from __future__ import annotations

from typing import Any

import orjson

from nexus.server.model import Conversation, Follow, Message, Room, StoredFile, User, pair_key

FILE_COLUMNS = "id, sha, name, size, type, owner, ts, width, height, shared"


MESSAGE_COLUMNS = "id, scope, seq, ts, author, text, recipient, extra, erased"


def to_json(value: Any) -> str:
    return orjson.dumps(value).decode()


# A message's fields that are not columns: its wire form's optional ones.
EXTRA = (
    "action",
    "reply_to",
    "mentions",
    "edited",
    "reactions",
    "guest",
    "files",
    "plain",
    "thread",
    "broadcast",
)


def message_row(scope: str, m: Message) -> tuple[Any, ...]:
    """(scope, seq, ts, author, text, recipient, extra, erased, thread,
    timeline) of a message: `thread` and `timeline` (whether the timeline
    shows it) are columns for the indexes of thread and timeline pages."""
    wire = m.wire()
    extra = {name: wire[name] for name in EXTRA if name in wire}
    return (
        scope,
        m.seq,
        m.ts,
        m.author,
        m.text,
        m.to,
        to_json(extra) if extra else None,
        int(m.erased),
        m.thread,
        int(m.thread is None or m.broadcast),
    )


def follow_row(key: str, scope: str, root: int, follow: Follow) -> tuple[Any, ...]:
    on = None if follow.on is None else int(follow.on)
    return (key, scope, root, on, follow.read)


def message_of(row: tuple[Any, ...]) -> Message:
    """A message from a row of MESSAGE_COLUMNS."""
    _, scope, seq, ts, author, text, recipient, extra, erased = row
    wire = orjson.loads(extra) if extra else {}
    wire.update(seq=seq, ts=ts, text=text, erased=bool(erased))
    wire["from"] = author
    if "\n" in scope:
        wire["to"] = recipient
    else:
        wire["room"] = scope
    return Message.from_wire(wire)


def file_row(f: StoredFile) -> tuple[Any, ...]:
    shared = to_json(sorted([scope, seq] for scope, seq in f.shared))
    return (f.id, f.sha, f.name, f.size, f.kind, f.owner, f.ts, f.width, f.height, shared)


def user_row(key: str, u: User) -> tuple[Any, ...]:
    return (
        key,
        u.username,
        u.password,
        u.created,
        u.bio,
        u.last_seen,
        u.away,
        int(u.admin),
        int(u.suspended),
        to_json(u.tokens),
    )


def room_row(room: Room, guests: set[str]) -> tuple[Any, ...]:
    return (
        room.name,
        room.topic,
        room.owner,
        int(room.default),
        room.created,
        int(room.private),
        room.history.last_seq,
        to_json(sorted(room.moderators - guests)),
        to_json(sorted(room.muted - guests)),
        to_json(sorted(room.invited - guests)),
        to_json([ban for key, ban in room.bans.items() if key not in guests]),
        to_json([pin.to_json() for pin in room.pins]),
    )


def conversation_row(conv: Conversation) -> tuple[Any, ...]:
    return (pair_key(*conv.users), *conv.users, conv.history.last_seq, to_json(conv.read))
