"""What the server knows, in memory, and the records that change it.

Every change is a record (a small JSON-able dict with an `op`). `Model.apply`
is the only way to change the model: command handlers call it through the
store, and the store calls it again when it replays its journal, so live
state and recovered state cannot drift apart. Plain synchronous code.

Records that act on one message (`edit`, `erase`, `react`) name it by
`room` + `seq`, or by `with` (the other user's key) + `seq` for a DM of the
record's `user`. Replaying them is safe over a snapshot that already holds
their effect (a snapshot is encoded while the model moves on): each sets a
state rather than toggling one, and one whose message is gone does nothing.

Moderation records (`moderator`, `kick`, `ban`, `unban`, `mute`, `invite`,
`admin`, `suspend`) name the acting user as `user` and the user acted on as
`target` (keys); they too set a state, so replaying one is safe.

Guests (`guest` arrives, `depart` goes) are users who are never stored, and
a room a guest creates is ephemeral: it goes when its last member does.
`journaled(record)` is the one rule that tells the store which records to
write: not those that change only guests, ephemeral rooms or conversations
with a guest. A record that is written changes stored state only, so it
replays without any guest: a guest's message in a stored room carries the
guest's name (`guest`), which replay uses instead of looking the user up.
`to_snapshot` leaves out every guest and ephemeral room, and every trace of
them in stored users and rooms.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from nexus.protocol import DEFAULT_ROOMS, DM_HISTORY_CAP, MENTION_RE, ROOM_HISTORY_CAP

Message = dict[str, Any]  # a RoomMessage or DirectMessage, exactly as sent
Ban = dict[str, Any]  # {"user", "by", "reason", "ts"}, exactly as `bans` answers
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
    away: str | None = None  # the away text; None when back
    # Read markers: room -> the seq read up to, for every member room (set
    # to the room's newest seq on joining, never moved back).
    read: dict[str, int] = field(default_factory=dict)
    admin: bool = False  # a server admin: every owner's right in every room
    # Suspended: no login. Its tokens are kept but refused, and dropped on
    # unsuspend, so none issued before a suspension ever works again.
    suspended: bool = False
    guest: bool = False  # in memory only, for as long as its connection lasts


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

    def get(self, seq: int) -> Message | None:
        """The stored message numbered `seq`, or None (never made, or trimmed)."""
        stored = self.messages
        if not stored:
            return None
        i = seq - stored[0]["seq"]
        return stored[i] if 0 <= i < len(stored) else None

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
    private: bool = False  # listed, readable and joinable by members, invitees and admins only
    moderators: set[str] = field(default_factory=set)  # keys; always members
    muted: set[str] = field(default_factory=set)  # keys; kept over leaving and joining again
    bans: dict[str, Ban] = field(default_factory=dict)  # banned user's key -> the ban
    invited: set[str] = field(default_factory=set)  # keys invited (private rooms), until joining
    ephemeral: bool = False  # a guest made it: in memory only, gone when its last member goes


@dataclass(slots=True, eq=False)
class Conversation:
    """The DMs between two users (or one user and themself)."""

    users: tuple[str, str]  # keys, sorted
    history: History = field(default_factory=lambda: History(DM_HISTORY_CAP))
    read: dict[str, int] = field(default_factory=dict)  # key -> last seq read


def user_key(name: str) -> str:
    return name.lower()


def pair_key(a: str, b: str) -> str:
    """The key of the conversation between two user keys.

    It holds a newline, so it never equals a room name: the search index
    uses room names and pair keys side by side as "scopes"."""
    return "\n".join(sorted((a, b)))


# Fields of a message that erasing it takes away (its text becomes "").
_ERASED_FIELDS = ("action", "reply_to", "mentions", "edited", "reactions")
# Optional fields of `say` and `dm` records copied into the message.
_NEW_MESSAGE_FIELDS = ("action", "reply_to", "mentions")

# Records that change only guests: never written.
_GUEST_OPS = frozenset({"guest", "depart"})
# Records that change a room's messages: written for a stored room, whoever makes them.
_HISTORY_OPS = frozenset({"say", "edit", "erase", "react"})
# Where a record names users (keys): one of them a guest, the record is not written.
_NAMED_USERS = ("user", "target", "to", "with")


def _nothing(scope: str, seq: int) -> Any:
    pass


class Model:
    """Users, rooms, memberships and histories, changed only by `apply`."""

    def __init__(self) -> None:
        self.users: dict[str, User] = {}
        self.rooms: dict[str, Room] = {}
        self.conversations: dict[str, Conversation] = {}
        self.admins: set[str] = set()  # keys of the users with `admin`
        # Told of every message made, and of every edit (its scope: a room
        # name or a pair key, and its seq), so the search index can (re)index
        # its text. A `say` pays for `on_new`: keep it a C call.
        self.on_new: Callable[[str, int], Any] = _nothing
        self.on_edit: Callable[[str, int], Any] = _nothing
        for name in DEFAULT_ROOMS:
            self.rooms[name] = Room(name, "", None, True, 0.0)

    # -- queries ---------------------------------------------------------

    def user(self, name: str) -> User | None:
        # Usernames are ASCII; "\u212aate".lower() would otherwise find kate.
        return self.users.get(user_key(name)) if name.isascii() else None

    def display(self, key: str) -> str:
        return self.users[key].username

    def history_of(self, r: dict[str, Any]) -> History | None:
        """The history a record or request addresses: its `room`, or the DM
        conversation of its `user` with `with` (None if they never wrote)."""
        if r.get("room") is not None:
            room = self.rooms.get(r["room"])
            return room.history if room is not None else None
        conv = self.conversations.get(pair_key(r["user"], r["with"]))
        return conv.history if conv is not None else None

    def mentioned(self, text: str) -> list[str]:
        """The users `text` names as `@name` (as registered), each once, in
        order of first mention: worked out once per message, not per reader."""
        if "@" not in text:  # most messages: no regex at all
            return []
        users = self.users
        found: dict[str, None] = {}
        for name in MENTION_RE.findall(text):
            user = users.get(name.lower())
            if user is not None:
                found[user.username] = None
        return list(found)

    def room_unread(self, key: str, name: str) -> tuple[int, int]:
        """A member's unread messages in a room (after the marker, not erased,
        not their own) and how many of those mention them."""
        user, room = self.users[key], self.rooms[name]
        me = user.username
        unread = mentions = 0
        for m in room.history.since(user.read.get(name, room.history.last_seq)):
            if m["from"] != me and not m.get("erased"):
                unread += 1
                if me in m.get("mentions", ()):
                    mentions += 1
        return unread, mentions

    def conversation_unread(self, key: str, conv: Conversation) -> int:
        """The other user's messages in `conv` after `key`'s marker."""
        read = conv.read.get(key, 0)
        return sum(1 for m in conv.history.since(read) if user_key(m["from"]) != key)

    def unread(self, key: str) -> dict[str, int]:
        """Unread DMs from each other user, by their display name."""
        counts = {}
        for conv_key in self.users[key].conversations:
            conv = self.conversations[conv_key]
            n = self.conversation_unread(key, conv)
            if n:
                other = conv.users[0] if conv.users[1] == key else conv.users[1]
                counts[self.display(other)] = n
        return counts

    # -- changes ---------------------------------------------------------

    def journaled(self, r: dict[str, Any]) -> bool:
        """Whether a record, not yet applied, changes stored state and so must
        be written: not when it changes only guests, ephemeral rooms or
        conversations with a guest (a guest's arrival, departure, joins,
        leaves, away, read markers; anything in an ephemeral room; a DM with
        a guest; a kick, ban or mute of a guest). A message in a stored room
        is stored state whoever writes it."""
        op = r["op"]
        if op in _GUEST_OPS:
            return False
        users = self.users
        name = r.get("room")
        if name is not None:
            room = self.rooms.get(name)
            if room is None:  # `create`: a guest's room is ephemeral
                creator = users.get(r["user"])
                return creator is None or not creator.guest
            if room.ephemeral:
                return False
            if op in _HISTORY_OPS:
                return True
        for role in _NAMED_USERS:
            key = r.get(role)
            if key is not None:
                user = users.get(key)
                if user is not None and user.guest:
                    return False
        return True

    def apply(self, record: dict[str, Any]) -> Any:
        """Applies one validated record; returns what the op produced, if anything."""
        return _OPS[record["op"]](self, record)

    def _author(self, r: dict[str, Any]) -> str:
        """The display name of a record's user. A guest's record is made to
        carry it (`guest`), so it replays once the guest is gone."""
        name: str | None = r.get("guest")
        if name is None:
            user = self.users[r["user"]]
            name = user.username
            if user.guest:
                r["guest"] = name
        return name

    def _op_guest(self, r: dict[str, Any]) -> User:
        """A guest arrives: a user by the name it asked for, in no room."""
        user = User(r["username"], "", r["ts"], guest=True)
        self.users[user_key(r["username"])] = user
        return user

    def _op_depart(self, r: dict[str, Any]) -> None:
        """A guest goes, and every trace of it: memberships, roles, mutes,
        bans and invitations; its DM conversations; the ownership of rooms it
        made that still have members (they are left with no owner)."""
        key = r["user"]
        user = self.users[key]
        for name in list(user.rooms):
            self._remove(key, self.rooms[name])
        del self.users[key]
        for room in self.rooms.values():
            room.muted.discard(key)
            room.bans.pop(key, None)
            room.invited.discard(key)
            if room.owner == key:
                room.owner = None
        for conv_key in user.conversations:
            conv = self.conversations.pop(conv_key)
            for other in conv.users:
                if other != key:
                    self.users[other].conversations.discard(conv_key)

    def _op_register(self, r: dict[str, Any]) -> User:
        key = user_key(r["username"])
        user = self.users[key] = User(r["username"], r["password"], r["ts"])
        if r.get("admin"):  # the first account of a store (older records never say so)
            self._op_admin({"target": key, "on": True})
        self._op_join({"user": key, "room": DEFAULT_ROOMS[0]})
        return user

    def _op_join(self, r: dict[str, Any]) -> None:
        user, room = self.users[r["user"]], self.rooms[r["room"]]
        user.rooms.add(room.name)
        user.read[room.name] = room.history.last_seq
        room.members.add(r["user"])
        room.invited.discard(r["user"])  # an invitation lasts until used
        room.roster += 1

    def _op_leave(self, r: dict[str, Any]) -> None:
        self._remove(r["user"], self.rooms[r["room"]])

    def _remove(self, key: str, room: Room) -> None:
        """Takes a member out of a room; a moderator who goes is one no more."""
        user = self.users[key]
        user.rooms.discard(room.name)
        user.read.pop(room.name, None)
        room.members.discard(key)
        room.moderators.discard(key)
        room.roster += 1

    def _op_create(self, r: dict[str, Any]) -> Room:
        room = self.rooms[r["room"]] = Room(r["room"], r["topic"], r["user"], False, r["ts"])
        room.private = bool(r.get("private"))
        room.ephemeral = self.users[r["user"]].guest
        self._op_join(r)
        return room

    def _op_delete(self, r: dict[str, Any]) -> None:
        room = self.rooms.pop(r["room"])
        for key in room.members:
            self.users[key].rooms.discard(room.name)
            self.users[key].read.pop(room.name, None)

    def _op_topic(self, r: dict[str, Any]) -> Room:
        room = self.rooms[r["room"]]
        room.topic = r["topic"]
        return room

    def _op_say(self, r: dict[str, Any]) -> Message:
        history = self.rooms[r["room"]].history
        message = {
            "room": r["room"],
            "seq": history.last_seq + 1,
            "from": self._author(r),
            "text": r["text"],
            "ts": r["ts"],
        }
        _copy_new_fields(r, message)
        history.append(message)
        self.on_new(r["room"], message["seq"])
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
            "from": self._author(r),
            "to": self.display(recipient),
            "text": r["text"],
            "ts": r["ts"],
        }
        _copy_new_fields(r, message)
        conv.history.append(message)
        self.on_new(key, message["seq"])
        return message

    def _addressed(self, r: dict[str, Any]) -> Message | None:
        """The message a record acts on, unless it is gone or erased."""
        history = self.history_of(r)
        message = history.get(r["seq"]) if history is not None else None
        return None if message is None or message.get("erased") else message

    def _op_edit(self, r: dict[str, Any]) -> Message | None:
        message = self._addressed(r)
        if message is None:
            return None
        message["text"] = r["text"]
        message["edited"] = r["ts"]
        if r.get("mentions"):
            message["mentions"] = r["mentions"]
        else:
            message.pop("mentions", None)
        scope = r["room"] if r.get("room") is not None else pair_key(r["user"], r["with"])
        self.on_edit(scope, r["seq"])
        return message

    def _op_erase(self, r: dict[str, Any]) -> Message | None:
        message = self._addressed(r)
        if message is None:
            return None
        message["text"] = ""
        for name in _ERASED_FIELDS:
            message.pop(name, None)
        message["erased"] = True
        return message

    def _op_react(self, r: dict[str, Any]) -> Message | None:
        """Adds or removes the user's reaction (setting it, so replay is safe)."""
        message = self._addressed(r)
        if message is None:
            return None
        name, emoji = self._author(r), r["emoji"]
        reactions = message.get("reactions", {})
        users = reactions.get(emoji, [])
        if r["on"] and name not in users:
            message["reactions"] = reactions
            reactions[emoji] = [*users, name]
        elif not r["on"] and name in users:
            users.remove(name)
            if not users:  # the last one took it back: the key goes, and then `reactions`
                del reactions[emoji]
                if not reactions:
                    del message["reactions"]
        return message

    def _op_read(self, r: dict[str, Any]) -> None:
        if r.get("room") is not None:
            self.users[r["user"]].read[r["room"]] = r["seq"]
        else:
            self.conversations[pair_key(r["user"], r["with"])].read[r["user"]] = r["seq"]

    def _op_away(self, r: dict[str, Any]) -> User:
        user = self.users[r["user"]]
        user.away = r["text"]
        return user

    def _op_password(self, r: dict[str, Any]) -> None:
        """A new password hash; every login token issued before it is revoked."""
        user = self.users[r["user"]]
        user.password = r["password"]
        user.tokens.clear()

    def _op_bio(self, r: dict[str, Any]) -> User:
        user = self.users[r["user"]]
        user.bio = r["text"]
        return user

    def _op_token(self, r: dict[str, Any]) -> None:
        """A token issued, or used: either way it becomes the newest."""
        tokens = self.users[r["user"]].tokens
        tokens.pop(r["digest"], None)
        tokens[r["digest"]] = r["ts"]
        while len(tokens) > TOKENS_PER_USER:  # dicts keep order: the least recently used goes
            del tokens[next(iter(tokens))]

    def _op_seen(self, r: dict[str, Any]) -> None:
        self.users[r["user"]].last_seen = r["ts"]

    # -- moderation (`user` acts, `target` is acted on) --------------------

    def _op_moderator(self, r: dict[str, Any]) -> Room:
        room = self.rooms[r["room"]]
        if r["on"]:
            room.moderators.add(r["target"])
        else:
            room.moderators.discard(r["target"])
        return room

    def _op_kick(self, r: dict[str, Any]) -> None:
        room = self.rooms[r["room"]]
        if r["target"] in room.members:
            self._remove(r["target"], room)

    def _op_ban(self, r: dict[str, Any]) -> None:
        """Bans a user (a member is removed); a ban already there stays as it was."""
        room, key = self.rooms[r["room"]], r["target"]
        if key in room.members:
            self._remove(key, room)
        room.invited.discard(key)
        if key not in room.bans:
            room.bans[key] = {
                "user": self.display(key),
                "by": self.display(r["user"]),
                "reason": r["reason"],
                "ts": r["ts"],
            }

    def _op_unban(self, r: dict[str, Any]) -> None:
        self.rooms[r["room"]].bans.pop(r["target"], None)

    def _op_mute(self, r: dict[str, Any]) -> None:
        muted = self.rooms[r["room"]].muted
        if r["on"]:
            muted.add(r["target"])
        else:
            muted.discard(r["target"])

    def _op_invite(self, r: dict[str, Any]) -> None:
        self.rooms[r["room"]].invited.add(r["target"])

    def _op_admin(self, r: dict[str, Any]) -> None:
        key = r["target"]
        self.users[key].admin = r["on"]
        if r["on"]:
            self.admins.add(key)
        else:
            self.admins.discard(key)

    def _op_suspend(self, r: dict[str, Any]) -> None:
        """Suspends (`on`) or restores an account; restoring drops every
        token it had, so none issued before the suspension works again."""
        user = self.users[r["target"]]
        user.suspended = r["on"]
        if not r["on"]:
            user.tokens.clear()

    # -- snapshot --------------------------------------------------------

    def to_snapshot(self) -> dict[str, Any]:
        """Everything as plain JSON-able data (the store's readable snapshot).

        A copy of the structure: the store writes it while the model moves
        on. Messages are shared, so one may be encoded with an edit, erasure
        or reaction made after the snapshot's journal position; replaying
        that record then finds its effect in place (see the module's note).
        Guests and ephemeral rooms are left out, and so is every trace of
        them in what is stored: the snapshot holds what the journal's
        records (which never name them) build."""
        guests = {key for key, u in self.users.items() if u.guest}
        ephemeral = {name for name, room in self.rooms.items() if room.ephemeral}
        return {
            "users": [
                {
                    "username": u.username,
                    "password": u.password,
                    "created": u.created,
                    "bio": u.bio,
                    "last_seen": u.last_seen,
                    "rooms": sorted(u.rooms - ephemeral),
                    "tokens": dict(u.tokens),
                    "away": u.away,
                    "read": {name: seq for name, seq in u.read.items() if name not in ephemeral},
                    "admin": u.admin,
                    "suspended": u.suspended,
                }
                for u in self.users.values()
                if not u.guest
            ],
            "rooms": [
                {
                    "name": room.name,
                    "topic": room.topic,
                    "owner": room.owner,
                    "default": room.default,
                    "created": room.created,
                    "private": room.private,
                    "moderators": sorted(room.moderators - guests),
                    "muted": sorted(room.muted - guests),
                    "bans": [ban for key, ban in room.bans.items() if key not in guests],
                    "invited": sorted(room.invited - guests),
                    "last_seq": room.history.last_seq,
                    "messages": list(room.history.messages),
                }
                for room in self.rooms.values()
                if not room.ephemeral
            ],
            "dms": [
                {
                    "users": list(conv.users),
                    "read": dict(conv.read),
                    "last_seq": conv.history.last_seq,
                    "messages": list(conv.history.messages),
                }
                for conv in self.conversations.values()
                if guests.isdisjoint(conv.users)
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
                away=u.get("away"),
                suspended=u.get("suspended", False),
            )
            if u.get("admin"):
                model._op_admin({"target": key, "on": True})
        for r in data["rooms"]:
            # Stores before version 4 know no moderation: every room is
            # public, with no moderators, mutes, bans or invitations.
            model.rooms[r["name"]] = Room(
                r["name"],
                r["topic"],
                r["owner"],
                r["default"],
                r["created"],
                History(ROOM_HISTORY_CAP, r["last_seq"], r["messages"]),
                private=r.get("private", False),
                moderators=set(r.get("moderators", ())),
                muted=set(r.get("muted", ())),
                bans={user_key(ban["user"]): ban for ban in r.get("bans", ())},
                invited=set(r.get("invited", ())),
            )
        for u in data["users"]:
            key = user_key(u["username"])
            for name in u["rooms"]:
                model._op_join({"user": key, "room": name})
            # Stores written before read markers existed have none: each
            # member starts with everything stored read, as on joining.
            model.users[key].read.update(u.get("read", {}))
        for d in data["dms"]:
            users = (d["users"][0], d["users"][1])
            key = pair_key(*users)
            model.conversations[key] = Conversation(
                users, History(DM_HISTORY_CAP, d["last_seq"], d["messages"]), d["read"]
            )
            for user in users:
                model.users[user].conversations.add(key)
        return model


# Each record's op -> the method that applies it (a KeyError for an unknown op).
_OPS: dict[str, Callable[[Model, dict[str, Any]], Any]] = {
    name.removeprefix("_op_"): method
    for name, method in vars(Model).items()
    if name.startswith("_op_")
}


def _copy_new_fields(r: dict[str, Any], message: Message) -> None:
    """A `say` or `dm` record's optional fields, into its message (a guest's
    record carries `guest`, its name, since `_author`)."""
    for name in _NEW_MESSAGE_FIELDS:
        if name in r:
            message[name] = r[name]
    if "guest" in r:
        message["guest"] = True
