"""What the server knows, in memory, and the records that change it.

Every change is a record (a small JSON-able dict with an `op`). `Model.apply`
is the only way to change the model: command handlers call it through the
store, and the store calls it again when it replays its journal, so live
state and recovered state cannot drift apart. Plain synchronous code.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from nexus.protocol import DEFAULT_ROOMS, DM_HISTORY_CAP, ROOM_HISTORY_CAP

Message = dict[str, Any]  # a RoomMessage or DirectMessage, exactly as sent
TOKENS_PER_USER = 16  # devices a user may stay logged in on


@dataclass(slots=True, eq=False)
class User:
    username: str  # as registered; the model's keys are its lower-case form
    password: str  # an argon2 PHC string
    created: float
    bio: str = ""
    last_seen: float | None = None
    rooms: set[str] = field(default_factory=set)
    conversations: set[str] = field(default_factory=set)  # keys of Conversation
    # Login tokens: SHA-256 of the token -> when it was issued. The token
    # itself exists only on the client.
    tokens: dict[str, float] = field(default_factory=dict)


class History:
    """A capped run of messages whose `seq` values are consecutive."""

    __slots__ = ("last_seq", "messages")

    def __init__(self, cap: int, last_seq: int = 0, messages: Iterable[Message] = ()) -> None:
        self.messages: deque[Message] = deque(messages, maxlen=cap)
        self.last_seq = last_seq

    def append(self, message: Message) -> None:
        self.last_seq = message["seq"]
        self.messages.append(message)

    def page(self, limit: int, before: int | None) -> tuple[list[Message], bool]:
        """Up to `limit` messages older than `before` (newest if None), oldest first,
        and whether older ones are still stored."""
        stored = self.messages
        if not stored:
            return [], False
        first = stored[0]["seq"]
        end = len(stored) if before is None else max(0, min(len(stored), before - first))
        start = max(0, end - limit)
        return list(islice(stored, start, end)), start > 0

    def since(self, seq: int) -> Iterable[Message]:
        """Messages with a seq above `seq`."""
        stored = self.messages
        if not stored:
            return ()
        return islice(stored, max(0, seq + 1 - stored[0]["seq"]), None)


@dataclass(slots=True, eq=False)
class Room:
    name: str
    topic: str
    owner: str | None  # the owner's key; None for default rooms
    default: bool
    created: float
    history: History = field(default_factory=lambda: History(ROOM_HISTORY_CAP))
    members: set[str] = field(default_factory=set)
    roster: int = 0  # counts changes to `members`: a broadcast is valid for one roster


@dataclass(slots=True, eq=False)
class Conversation:
    """The DMs between two users (or one user and themself)."""

    users: tuple[str, str]  # keys, sorted
    history: History = field(default_factory=lambda: History(DM_HISTORY_CAP))
    read: dict[str, int] = field(default_factory=dict)  # key -> last seq read


def user_key(name: str) -> str:
    return name.lower()


def pair_key(a: str, b: str) -> str:
    """The key of the conversation between two user keys."""
    return "\n".join(sorted((a, b)))


class Model:
    """Users, rooms, memberships and histories, changed only by `apply`."""

    def __init__(self) -> None:
        self.users: dict[str, User] = {}
        self.rooms: dict[str, Room] = {}
        self.conversations: dict[str, Conversation] = {}
        for name in DEFAULT_ROOMS:
            self.rooms[name] = Room(name, "", None, True, 0.0)

    # -- queries ---------------------------------------------------------

    def user(self, name: str) -> User | None:
        # Usernames are ASCII; "\u212aate".lower() would otherwise find kate.
        return self.users.get(user_key(name)) if name.isascii() else None

    def display(self, key: str) -> str:
        return self.users[key].username

    def unread(self, key: str) -> dict[str, int]:
        """Unread DMs from each other user, by their display name."""
        counts = {}
        for conv_key in self.users[key].conversations:
            conv = self.conversations[conv_key]
            read = conv.read.get(key, 0)
            n = sum(1 for m in conv.history.since(read) if user_key(m["from"]) != key)
            if n:
                other = conv.users[0] if conv.users[1] == key else conv.users[1]
                counts[self.display(other)] = n
        return counts

    # -- changes ---------------------------------------------------------

    def apply(self, record: dict[str, Any]) -> Any:
        """Applies one validated record; returns what the op produced, if anything."""
        return getattr(self, "_op_" + record["op"])(record)

    def _op_register(self, r: dict[str, Any]) -> User:
        key = user_key(r["username"])
        user = self.users[key] = User(r["username"], r["password"], r["ts"])
        self._op_join({"user": key, "room": DEFAULT_ROOMS[0]})
        return user

    def _op_join(self, r: dict[str, Any]) -> None:
        self.users[r["user"]].rooms.add(r["room"])
        room = self.rooms[r["room"]]
        room.members.add(r["user"])
        room.roster += 1

    def _op_leave(self, r: dict[str, Any]) -> None:
        self.users[r["user"]].rooms.discard(r["room"])
        room = self.rooms[r["room"]]
        room.members.discard(r["user"])
        room.roster += 1

    def _op_create(self, r: dict[str, Any]) -> Room:
        room = self.rooms[r["room"]] = Room(r["room"], r["topic"], r["user"], False, r["ts"])
        self._op_join(r)
        return room

    def _op_delete(self, r: dict[str, Any]) -> None:
        room = self.rooms.pop(r["room"])
        for key in room.members:
            self.users[key].rooms.discard(room.name)

    def _op_topic(self, r: dict[str, Any]) -> Room:
        room = self.rooms[r["room"]]
        room.topic = r["topic"]
        return room

    def _op_say(self, r: dict[str, Any]) -> Message:
        history = self.rooms[r["room"]].history
        message = {
            "room": r["room"],
            "seq": history.last_seq + 1,
            "from": self.display(r["user"]),
            "text": r["text"],
            "ts": r["ts"],
        }
        history.append(message)
        return message

    def _op_dm(self, r: dict[str, Any]) -> Message:
        sender, recipient = r["user"], r["to"]
        key = pair_key(sender, recipient)
        conv = self.conversations.get(key)
        if conv is None:
            conv = self.conversations[key] = Conversation(tuple(sorted((sender, recipient))))
            self.users[sender].conversations.add(key)
            self.users[recipient].conversations.add(key)
        message = {
            "seq": conv.history.last_seq + 1,
            "from": self.display(sender),
            "to": self.display(recipient),
            "text": r["text"],
            "ts": r["ts"],
        }
        conv.history.append(message)
        return message

    def _op_read(self, r: dict[str, Any]) -> None:
        self.conversations[pair_key(r["user"], r["with"])].read[r["user"]] = r["seq"]

    def _op_bio(self, r: dict[str, Any]) -> User:
        user = self.users[r["user"]]
        user.bio = r["text"]
        return user

    def _op_token(self, r: dict[str, Any]) -> None:
        tokens = self.users[r["user"]].tokens
        tokens[r["digest"]] = r["ts"]
        while len(tokens) > TOKENS_PER_USER:  # dicts keep order: the oldest goes
            del tokens[next(iter(tokens))]

    def _op_seen(self, r: dict[str, Any]) -> None:
        self.users[r["user"]].last_seen = r["ts"]

    # -- snapshot --------------------------------------------------------

    def to_snapshot(self) -> dict[str, Any]:
        """Everything as plain JSON-able data (the store's readable snapshot).

        A copy: the store writes it while the model moves on. Messages are
        shared, as nothing changes a message once made."""
        return {
            "users": [
                {
                    "username": u.username,
                    "password": u.password,
                    "created": u.created,
                    "bio": u.bio,
                    "last_seen": u.last_seen,
                    "rooms": sorted(u.rooms),
                    "tokens": dict(u.tokens),
                }
                for u in self.users.values()
            ],
            "rooms": [
                {
                    "name": room.name,
                    "topic": room.topic,
                    "owner": room.owner,
                    "default": room.default,
                    "created": room.created,
                    "last_seq": room.history.last_seq,
                    "messages": list(room.history.messages),
                }
                for room in self.rooms.values()
            ],
            "dms": [
                {
                    "users": list(conv.users),
                    "read": dict(conv.read),
                    "last_seq": conv.history.last_seq,
                    "messages": list(conv.history.messages),
                }
                for conv in self.conversations.values()
            ],
        }

    @classmethod
    def from_snapshot(cls, data: dict[str, Any]) -> Model:
        model = cls()
        for u in data["users"]:
            key = user_key(u["username"])
            model.users[key] = User(
                u["username"],
                u["password"],
                u["created"],
                u["bio"],
                u["last_seen"],
                tokens=u.get("tokens", {}),
            )
        for r in data["rooms"]:
            model.rooms[r["name"]] = Room(
                r["name"],
                r["topic"],
                r["owner"],
                r["default"],
                r["created"],
                History(ROOM_HISTORY_CAP, r["last_seq"], r["messages"]),
            )
        for u in data["users"]:
            for name in u["rooms"]:
                model._op_join({"user": user_key(u["username"]), "room": name})
        for d in data["dms"]:
            users = (d["users"][0], d["users"][1])
            key = pair_key(*users)
            model.conversations[key] = Conversation(
                users, History(DM_HISTORY_CAP, d["last_seq"], d["messages"]), d["read"]
            )
            for user in users:
                model.users[user].conversations.add(key)
        return model
