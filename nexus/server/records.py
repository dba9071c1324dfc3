"""Every change to what the server knows is one typed record.

A handler makes a record and hands it to the store (`ctx.change(record)`),
and nothing changes a record once made (they are not frozen dataclasses only
because a frozen one costs a microsecond more to make, on every `say`);
the store applies it to the model (`record.apply(model)`, the only code that
changes the model) and makes it durable. Recovery applies the same records
again, so live state and recovered state cannot drift apart.

Records name users by key (`user` acts, `target` is acted on, `to` and
`with_` name a DM's other user). Records that act on one message (`Edit`,
`Erase`, `React`) name it by `room` + `seq`, or `with_` + `seq` for a DM of
the record's `user`. Replaying any record over state that already holds its
effect is safe (a snapshot is encoded while the model moves on): each sets a
state rather than toggling one, and one whose message is gone does nothing.

`journaled(model)` is the one rule that says which records are written: not
those that change only guests, ephemeral rooms or conversations with a
guest. A guest's message in a stored room is written with the guest's name
(`guest`), which replay uses since no such user is stored.

On disk (the JSON engine's journal) a record is a JSON object: its `op` and
its fields, `with_` written `with`, optional fields left out when unset;
`to_json` and `from_json` are that mapping and nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import MISSING, dataclass, fields
from typing import Any, ClassVar

from nexus.server.model import (
    TOKENS_PER_USER,
    Conversation,
    Follow,
    Message,
    Model,
    Pinned,
    Room,
    StoredFile,
    User,
    pair_key,
    user_key,
)

# Fields of a message that erasing it takes away (its text becomes "").
_ERASED = ("action", "reply_to", "mentions", "edited", "reactions")


@dataclass(slots=True, kw_only=True)
class Record:
    """One change. `user` is the key of the user who made it (None: the server)."""

    OP: ClassVar[str]
    # Fields that name users by key: a record naming a guest is not written.
    ROLES: ClassVar[tuple[str, ...]] = ("user",)
    user: str | None = None

    def apply(self, model: Model) -> Any:
        raise NotImplementedError

    def journaled(self, model: Model) -> bool:
        """Whether this record, not yet applied, changes stored state and so
        must be written: not when it changes only guests, ephemeral rooms or
        conversations with a guest (a guest's joins, leaves, away, read
        markers; anything in an ephemeral room; a DM with a guest; a kick,
        ban or mute of a guest). A message in a stored room is stored state
        whoever writes it."""
        name = getattr(self, "room", None)
        if name is not None:
            room = model.rooms.get(name)
            if room is None:  # `Create`: a guest's room is ephemeral
                creator = model.users.get(self.user) if self.user is not None else None
                return creator is None or not creator.guest
            if room.ephemeral:
                return False
            if isinstance(self, _HISTORY):
                return True
        users = model.users
        for role in self.ROLES:
            key = getattr(self, role)
            if key is not None:
                named = users.get(key)
                if named is not None and named.guest:
                    return False
        return True

    def to_json(self, n: int | None = None) -> dict[str, Any]:
        """The record as the journal holds it (numbered `n` there)."""
        out: dict[str, Any] = {"op": self.OP} if n is None else {"op": self.OP, "n": n}
        for attr, key, default in _codec(type(self)):
            value = getattr(self, attr)
            if default is MISSING or value != default:
                out[key] = value
        return out


def from_json(data: dict[str, Any]) -> Record:
    """A record from its journal form; KeyError (unknown op) or TypeError
    (missing or unknown fields) for anything else."""
    cls = RECORDS[data["op"]]
    return cls(**{attr: data[key] for attr, key, _ in _codec(cls) if key in data})


def _codec(cls: type[Record]) -> tuple[tuple[str, str, Any], ...]:
    """(attribute, JSON key, default or MISSING) for each field of `cls`."""
    codec = _CODECS.get(cls)
    if codec is None:
        codec = _CODECS[cls] = tuple((f.name, f.name.rstrip("_"), f.default) for f in fields(cls))
    return codec


_CODECS: dict[type[Record], tuple[tuple[str, str, Any], ...]] = {}


def _author(model: Model, record: Say | Dm | React) -> str:
    """The display name a message or reaction is made under: the guest's
    name a record carries, or its user's."""
    if record.guest is not None:
        return record.guest
    return model.users[record.user].username  # type: ignore[index]


def _addressed(model: Model, room: str | None, user: str | None, other: str | None, seq: int):
    """The message a record acts on, unless it is gone (trimmed, or its
    room or conversation deleted) or erased."""
    history = model.history_of(room, user, other)
    message = history.get(seq) if history is not None else None
    return None if message is None or message.erased else message


# -- users ---------------------------------------------------------------------------


@dataclass(slots=True, kw_only=True)
class Guest(Record):
    """A guest arrives: a user by the name it asked for, in no room, never written."""

    OP = "guest"
    username: str
    ts: float

    def journaled(self, model: Model) -> bool:
        return False

    def apply(self, model: Model) -> User:
        user = User(self.username, "", self.ts, guest=True)
        model.users[user_key(self.username)] = user
        return user


@dataclass(slots=True, kw_only=True)
class Depart(Record):
    """A guest goes, and every trace of it: memberships, roles, mutes, bans
    and invitations; its DM conversations; the ownership of rooms it made
    that still have members (they are left with no owner)."""

    OP = "depart"

    def journaled(self, model: Model) -> bool:
        return False

    def apply(self, model: Model) -> None:
        key = self.user
        assert key is not None
        user = model.users[key]
        for name in list(user.rooms):
            model.remove_member(key, model.rooms[name])
        del model.users[key]
        for room in model.rooms.values():
            room.muted.discard(key)
            room.bans.pop(key, None)
            room.invited.discard(key)
            if room.owner == key:
                room.owner = None
        for conv_key in user.conversations:
            conv = model.conversations.pop(conv_key)
            for other in conv.users:
                if other != key:
                    model.users[other].conversations.discard(conv_key)
            model.drop_follows(conv_key, conv.users)


@dataclass(slots=True, kw_only=True)
class Register(Record):
    """A new account, a member of the first default room; `admin` for the
    first account of a store (older records never say so)."""

    OP = "register"
    username: str
    password: str  # an argon2 PHC string
    ts: float
    admin: bool = False

    def apply(self, model: Model) -> User:
        key = user_key(self.username)
        user = model.users[key] = User(self.username, self.password, self.ts)
        if self.admin:
            model.set_admin(key, True)
        for name in model.default_rooms[:1]:
            if name in model.rooms:
                model.add_member(key, model.rooms[name])
        return user


@dataclass(slots=True, kw_only=True)
class Password(Record):
    """A new password hash; every login token issued before it is revoked."""

    OP = "password"
    password: str
    ts: float

    def apply(self, model: Model) -> None:
        user = model.users[self.user]  # type: ignore[index]
        user.password = self.password
        user.tokens.clear()


@dataclass(slots=True, kw_only=True)
class Token(Record):
    """A login token (its digest) issued, or used: either way it becomes the newest."""

    OP = "token"
    digest: str
    ts: float

    def apply(self, model: Model) -> None:
        tokens = model.users[self.user].tokens  # type: ignore[index]
        tokens.pop(self.digest, None)
        tokens[self.digest] = self.ts
        while len(tokens) > TOKENS_PER_USER:  # dicts keep order: the least recently used goes
            del tokens[next(iter(tokens))]


@dataclass(slots=True, kw_only=True)
class Bio(Record):
    OP = "bio"
    text: str

    def apply(self, model: Model) -> User:
        user = model.users[self.user]  # type: ignore[index]
        user.bio = self.text
        return user


@dataclass(slots=True, kw_only=True)
class Away(Record):
    OP = "away"
    text: str | None  # None: back

    def apply(self, model: Model) -> User:
        user = model.users[self.user]  # type: ignore[index]
        user.away = self.text
        return user


@dataclass(slots=True, kw_only=True)
class Seen(Record):
    """When the user's last session ended."""

    OP = "seen"
    ts: float

    def apply(self, model: Model) -> None:
        model.users[self.user].last_seen = self.ts  # type: ignore[index]


# -- rooms ---------------------------------------------------------------------------


@dataclass(slots=True, kw_only=True)
class Join(Record):
    OP = "join"
    room: str

    def apply(self, model: Model) -> None:
        model.add_member(self.user, model.rooms[self.room])  # type: ignore[arg-type]


@dataclass(slots=True, kw_only=True)
class Leave(Record):
    OP = "leave"
    room: str

    def apply(self, model: Model) -> None:
        model.remove_member(self.user, model.rooms[self.room])  # type: ignore[arg-type]


@dataclass(slots=True, kw_only=True)
class Create(Record):
    """A room, made by its owner, who is its first member; a guest's is ephemeral."""

    OP = "create"
    room: str
    topic: str
    ts: float
    private: bool = False

    def apply(self, model: Model) -> Room:
        key = self.user
        assert key is not None
        history = model.new_history(False)
        room = model.rooms[self.room] = Room(self.room, self.topic, key, False, self.ts, history)
        room.private = self.private
        room.ephemeral = model.users[key].guest
        model.add_member(key, room)
        return room


@dataclass(slots=True, kw_only=True)
class Delete(Record):
    OP = "delete"
    room: str

    def apply(self, model: Model) -> None:
        room = model.rooms.pop(self.room)
        for key in room.members:
            model.users[key].rooms.discard(room.name)
            model.users[key].read.pop(room.name, None)
        model.drop_follows(room.name, model.users)
        for file in model.files.values():  # its messages are gone, and so is that access
            if file.shared:
                file.shared = {ref for ref in file.shared if ref[0] != self.room}


@dataclass(slots=True, kw_only=True)
class Topic(Record):
    OP = "topic"
    room: str
    topic: str

    def apply(self, model: Model) -> Room:
        room = model.rooms[self.room]
        room.topic = self.topic
        return room


@dataclass(slots=True, kw_only=True)
class Pin(Record):
    """Pins (`on`) or unpins message `seq` of a room: sets it, so replay is safe."""

    OP = "pin"
    room: str
    seq: int
    on: bool
    ts: float

    def apply(self, model: Model) -> Room:
        room = model.rooms[self.room]
        room.unpin(self.seq)
        if self.on:
            room.pins.append(Pinned(self.seq, self.user, self.ts))  # type: ignore[arg-type]
        return room


# -- messages ------------------------------------------------------------------------


@dataclass(slots=True, kw_only=True)
class Say(Record):
    """A message to a room; `guest`: the guest's name, when a guest says it."""

    OP = "say"
    room: str
    text: str
    ts: float
    action: bool = False
    reply_to: int | None = None
    mentions: Sequence[str] = ()
    guest: str | None = None
    files: Sequence[str] = ()  # ids of uploads it carries
    plain: bool = False  # shown as typed, never formatted
    thread: int | None = None  # a reply in the thread of this root seq
    broadcast: bool = False  # a reply also sent to the timeline
    root_author: str | None = None  # a reply's root's author (a key; None for a guest)

    def to_json(self, n: int | None = None) -> dict[str, Any]:
        """Record.to_json's result, spelt out: the generic one costs a `say`
        1.5 us of its 6 (the journal's form is the same)."""
        out: dict[str, Any] = {"op": "say", "user": self.user, "room": self.room}
        out["text"], out["ts"] = self.text, self.ts
        if n is not None:
            out["n"] = n
        if self.action:
            out["action"] = True
        if self.reply_to is not None:
            out["reply_to"] = self.reply_to
        if self.mentions:
            out["mentions"] = list(self.mentions)
        if self.guest is not None:
            out["guest"] = self.guest
        if self.files:
            out["files"] = list(self.files)
        if self.plain:
            out["plain"] = True
        if self.thread is not None:
            out["thread"] = self.thread
            if self.broadcast:
                out["broadcast"] = True
            if self.root_author is not None:
                out["root_author"] = self.root_author
        return out

    def apply(self, model: Model) -> Message:
        room = model.rooms[self.room]
        history = room.history
        message = Message(
            history.last_seq + 1,
            _author(model, self),
            self.text,
            self.ts,
            room=self.room,
            action=self.action,
            reply_to=self.reply_to,
            mentions=tuple(self.mentions),
            guest=self.guest is not None,
            files=_share(model, self.files, self.room, history.last_seq + 1),
            plain=self.plain,
            thread=self.thread,
            broadcast=self.broadcast,
        )
        history.append(message)
        model.tell_new(self.room, message)
        if self.thread is not None:
            _followed(model, self.room, message, self, room.members)
        return message


@dataclass(slots=True, kw_only=True)
class Dm(Record):
    """A direct message from `user` to `to` (a key; oneself for notes)."""

    OP = "dm"
    ROLES = ("user", "to")
    to: str
    text: str
    ts: float
    action: bool = False
    reply_to: int | None = None
    mentions: Sequence[str] = ()
    guest: str | None = None
    files: Sequence[str] = ()  # ids of uploads it carries
    plain: bool = False
    thread: int | None = None  # a reply in the thread of this root seq
    broadcast: bool = False  # a reply also sent to the conversation
    root_author: str | None = None  # a reply's root's author (a key)

    def apply(self, model: Model) -> Message:
        sender, recipient = self.user, self.to
        assert sender is not None
        key = pair_key(sender, recipient)
        conv = model.conversations.get(key)
        if conv is None:
            first, second = sorted((sender, recipient))
            conv = Conversation((first, second), model.new_history(True))
            model.conversations[key] = conv
            model.users[sender].conversations.add(key)
            model.users[recipient].conversations.add(key)
        message = Message(
            conv.history.last_seq + 1,
            _author(model, self),
            self.text,
            self.ts,
            to=model.display(recipient),
            action=self.action,
            reply_to=self.reply_to,
            mentions=tuple(self.mentions),
            guest=self.guest is not None,
            files=_share(model, self.files, key, conv.history.last_seq + 1),
            plain=self.plain,
            thread=self.thread,
            broadcast=self.broadcast,
        )
        conv.history.append(message)
        model.tell_new(key, message)
        if self.thread is not None:
            _followed(model, key, message, self, conv.users)
        return message


def _followed(
    model: Model, scope: str, reply: Message, record: Say | Dm, readers: Iterable[str]
) -> None:
    """Who follows a thread after a reply (docs/protocol.md, "Threads"): the
    replier, always, read up to their reply; the root's author and those the
    reply mentions who may read it, unless they said `follow` off, read from
    the root and from just before the reply."""
    root = reply.thread
    assert root is not None
    users = model.users
    replier = users.get(record.user)  # type: ignore[arg-type]
    if replier is not None:
        _follow(replier, (scope, root), True, reply.seq, replied=True)
    readers = set(readers)
    starts = {user_key(name): reply.seq - 1 for name in record.mentions}
    if record.root_author is not None:
        starts[record.root_author] = root
    for key, start in starts.items():
        user = users.get(key)
        if user is not None and (key in readers or key == record.root_author):
            _follow(user, (scope, root), None, start)


def _follow(
    user: User, address: tuple[str, int], on: bool | None, read: int, replied: bool = False
) -> None:
    """Starts (`on` True; None: unless the user said off) or stops following
    a thread. Starting moves the marker to `read` unless it is further
    already; following already changes nothing, but a reply (`replied`)
    moves the marker to it."""
    follow = user.follows.get(address)
    if follow is None:
        user.follows[address] = Follow(on is not False, read)
    elif on is False:
        follow.on = False
    elif replied or follow.on is None or (on and not follow.on):
        follow.on = True
        follow.read = max(follow.read, read)


@dataclass(slots=True, kw_only=True)
class MessageChange(Record):
    """A change to one stored message, named by `room` + `seq`, or by
    `with_` (the other user's key) + `seq` for a DM of the record's `user`.

    `apply` changes the message if the model holds it; an engine that keeps
    older messages on disk gives the record the message it read (`alter`)."""

    ROLES = ("user", "with_")
    room: str | None = None
    with_: str | None = None
    seq: int

    @property
    def scope(self) -> str:
        """Where the message is kept: its room, or its conversation's pair key."""
        return self.room if self.room is not None else pair_key(self.user, self.with_)  # type: ignore[arg-type]

    def apply(self, model: Model) -> Message | None:
        message = _addressed(model, self.room, self.user, self.with_, self.seq)
        if message is not None:
            self.alter(model, message)
        return message

    def alter(self, model: Model, message: Message) -> None:
        raise NotImplementedError


@dataclass(slots=True, kw_only=True)
class Edit(MessageChange):
    """A new text for a message, with the mentions worked out for it."""

    OP = "edit"
    text: str
    ts: float
    mentions: Sequence[str] = ()

    def alter(self, model: Model, message: Message) -> None:
        message.text = self.text
        message.edited = self.ts
        message.mentions = tuple(self.mentions)
        model.tell_edited(self.scope, message)


@dataclass(slots=True, kw_only=True)
class Erase(MessageChange):
    """Erases a message: its text becomes "" and its extras go; a tombstone stays."""

    OP = "erase"

    def alter(self, model: Model, message: Message) -> None:
        message.text = ""
        message.action = False
        message.reply_to = None
        message.mentions = ()
        message.edited = None
        message.reactions = None
        message.erased = True
        for attachment in message.files:  # who could read it no longer gets its files
            file = model.files.get(attachment["id"])
            if file is not None:
                file.shared.discard((self.scope, self.seq))
        message.files = ()
        if message.thread is not None:  # counted out of its thread's summary
            history = model.history(self.scope)
            if history is not None:
                history.thread(message.thread).erase(self.seq)
        room = model.rooms.get(self.room) if self.room is not None else None
        if room is not None:  # an erased message is pinned no more
            room.unpin(self.seq)


@dataclass(slots=True, kw_only=True)
class React(MessageChange):
    """Adds (`on`) or takes back the user's reaction: sets it, so replay is safe."""

    OP = "react"
    emoji: str
    on: bool
    guest: str | None = None

    def alter(self, model: Model, message: Message) -> None:
        name = _author(model, self)
        reactions = message.reactions or {}
        users = reactions.get(self.emoji, [])
        if self.on and name not in users:
            reactions[self.emoji] = [*users, name]
            message.reactions = reactions
        elif not self.on and name in users:
            users.remove(name)
            if not users:  # the last one took it back: the key goes, and then the reactions
                del reactions[self.emoji]
                if not reactions:
                    message.reactions = None


@dataclass(slots=True, kw_only=True)
class Read(Record):
    """The user's read marker in a room or a DM conversation, or (`thread`)
    in the thread of that root there."""

    OP = "read"
    ROLES = ("user", "with_")
    room: str | None = None
    with_: str | None = None
    seq: int
    thread: int | None = None

    def apply(self, model: Model) -> None:
        if self.thread is not None:
            scope = self.room if self.room is not None else pair_key(self.user, self.with_)  # type: ignore[arg-type]
            user = model.users[self.user]  # type: ignore[index]
            follow = user.follows.get((scope, self.thread))
            if follow is None:
                user.follows[scope, self.thread] = Follow(None, self.seq)
            else:
                follow.read = self.seq
        elif self.room is not None:
            model.users[self.user].read[self.room] = self.seq  # type: ignore[index]
        else:
            key = pair_key(self.user, self.with_)  # type: ignore[arg-type]
            model.conversations[key].read[self.user] = self.seq  # type: ignore[index]


@dataclass(slots=True, kw_only=True)
class FollowThread(Record):
    """The user follows (`on`) the thread of root `seq` of a room or of
    their DM conversation with `with_`, or stops: sets it, so replay is safe."""

    OP = "follow"
    ROLES = ("user", "with_")
    room: str | None = None
    with_: str | None = None
    seq: int
    on: bool

    def apply(self, model: Model) -> None:
        scope = self.room if self.room is not None else pair_key(self.user, self.with_)  # type: ignore[arg-type]
        history = model.history(scope)
        thread = history.threads.get(self.seq) if history is not None else None
        newest = thread.newest(self.seq) if thread is not None else self.seq
        _follow(model.users[self.user], (scope, self.seq), self.on, newest)  # type: ignore[index]


_HISTORY = (Say, MessageChange)  # change a room's messages: written for a stored room


# -- moderation (`user` acts, `target` is acted on) ----------------------------------


@dataclass(slots=True, kw_only=True)
class Moderator(Record):
    OP = "moderator"
    ROLES = ("user", "target")
    room: str
    target: str
    on: bool

    def apply(self, model: Model) -> Room:
        room = model.rooms[self.room]
        if self.on:
            room.moderators.add(self.target)
        else:
            room.moderators.discard(self.target)
        return room


@dataclass(slots=True, kw_only=True)
class Kick(Record):
    OP = "kick"
    ROLES = ("user", "target")
    room: str
    target: str

    def apply(self, model: Model) -> None:
        room = model.rooms[self.room]
        if self.target in room.members:
            model.remove_member(self.target, room)


@dataclass(slots=True, kw_only=True)
class Ban(Record):
    """Bans a user (a member is removed); a ban already there stays as it was."""

    OP = "ban"
    ROLES = ("user", "target")
    room: str
    target: str
    reason: str
    ts: float

    def apply(self, model: Model) -> None:
        room, key = model.rooms[self.room], self.target
        if key in room.members:
            model.remove_member(key, room)
        room.invited.discard(key)
        if key not in room.bans:
            room.bans[key] = {
                "user": model.display(key),
                "by": model.display(self.user),  # type: ignore[arg-type]
                "reason": self.reason,
                "ts": self.ts,
            }


@dataclass(slots=True, kw_only=True)
class Unban(Record):
    OP = "unban"
    ROLES = ("user", "target")
    room: str
    target: str

    def apply(self, model: Model) -> None:
        model.rooms[self.room].bans.pop(self.target, None)


@dataclass(slots=True, kw_only=True)
class Mute(Record):
    OP = "mute"
    ROLES = ("user", "target")
    room: str
    target: str
    on: bool

    def apply(self, model: Model) -> None:
        muted = model.rooms[self.room].muted
        if self.on:
            muted.add(self.target)
        else:
            muted.discard(self.target)


@dataclass(slots=True, kw_only=True)
class Invite(Record):
    """An invitation to a private room, kept until used."""

    OP = "invite"
    ROLES = ("user", "target")
    room: str
    target: str

    def apply(self, model: Model) -> None:
        model.rooms[self.room].invited.add(self.target)


@dataclass(slots=True, kw_only=True)
class Admin(Record):
    OP = "admin"
    ROLES = ("user", "target")
    target: str
    on: bool

    def apply(self, model: Model) -> None:
        model.set_admin(self.target, self.on)


@dataclass(slots=True, kw_only=True)
class Suspend(Record):
    """Suspends (`on`) or restores an account; restoring drops every token
    it had, so none issued before the suspension works again."""

    OP = "suspend"
    ROLES = ("user", "target")
    target: str
    on: bool

    def apply(self, model: Model) -> None:
        user = model.users[self.target]
        user.suspended = self.on
        if not self.on:
            user.tokens.clear()


# -- files ---------------------------------------------------------------------------


def _share(model: Model, ids: Sequence[str], scope: str, seq: int) -> tuple[dict[str, Any], ...]:
    """The attachments of message `seq` of `scope`, each file now shared there
    (one removed meanwhile is left out: replay finds what the journal left)."""
    if not ids:
        return ()
    attachments = []
    for file_id in ids:
        file = model.files.get(file_id)
        if file is not None:
            file.shared.add((scope, seq))
            attachments.append(file.attachment())
    return tuple(attachments)


@dataclass(slots=True, kw_only=True)
class Upload(Record):
    """A file was received and stored; its uploader may now share it."""

    OP = "upload"
    id: str
    sha: str
    name: str
    size: int
    kind: str
    ts: float
    width: int | None = None
    height: int | None = None

    def apply(self, model: Model) -> StoredFile:
        assert self.user is not None
        file = model.files.get(self.id)
        if file is None:
            file = model.files[self.id] = StoredFile(
                self.id,
                self.sha,
                self.name,
                self.size,
                self.kind,
                self.user,
                self.ts,
                self.width,
                self.height,
            )
        return file


@dataclass(slots=True, kw_only=True)
class Discard(Record):
    """A file nobody may download any more is forgotten (its bytes go once
    no other record holds the same content)."""

    OP = "discard"
    id: str

    def apply(self, model: Model) -> None:
        model.files.pop(self.id, None)


# Each op -> its record class: the journal's vocabulary.
RECORDS: dict[str, type[Record]] = {
    cls.OP: cls
    for cls in (
        Guest,
        Depart,
        Register,
        Password,
        Token,
        Bio,
        Away,
        Seen,
        Join,
        Leave,
        Create,
        Delete,
        Topic,
        Pin,
        Say,
        Dm,
        Edit,
        Erase,
        React,
        Read,
        FollowThread,
        Moderator,
        Kick,
        Ban,
        Unban,
        Mute,
        Invite,
        Admin,
        Suspend,
        Upload,
        Discard,
    )
}
