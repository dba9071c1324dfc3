"""What the server knows, in memory: typed state, changed only by records.

Users, rooms, memberships, DM conversations and each room's and
conversation's recent history live here as typed objects. Nothing here
changes them on its own: every change is a record (nexus/server/records.py)
whose `apply` is the only code that writes to the model, whether it comes
from a handler or from recovery. What the protocol sends is made from these
objects (`Message.wire()`), never kept as sent.

Guests (IRC clients without an account) are users who are never stored, and
a room a guest creates is ephemeral: it goes when its last member does.
`to_snapshot` leaves out every guest and ephemeral room, and every trace of
them in stored users and rooms.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import islice
from sys import intern
from typing import TYPE_CHECKING, Any, Protocol

from nexus.protocol import DEFAULT_ROOMS, MENTION_RE

if TYPE_CHECKING:
    from nexus.server.records import Record

Ban = dict[str, Any]  # {"user", "by", "reason", "ts"}, exactly as `bans` answers
TOKENS_PER_USER = 16  # devices a user may stay logged in on
# Messages a room's and a conversation's window holds, unless told otherwise
# (--history-limit, --dm-history-limit).
ROOM_WINDOW, DM_WINDOW = 500, 200


Attachment = dict[str, Any]  # {"id", "name", "size", "type", "width"?, "height"?}


@dataclass(slots=True, eq=False)
class StoredFile:
    """An uploaded file's record; its bytes are the blob store's, under
    `sha`, shared by every record of the same content.

    `shared` names the messages that carry it, by (scope, seq): who may
    read one of them may download it. A file no message carries any more
    is removed, and one never shared too, a day after its upload."""

    id: str  # random, so knowing a file's content or name does not find it
    sha: str  # SHA-256 of the bytes
    name: str
    size: int
    kind: str  # the MIME type, sniffed from the bytes
    owner: str  # the uploader's key
    ts: float
    width: int | None = None  # an image's, when it has a thumbnail
    height: int | None = None
    shared: set[tuple[str, int]] = field(default_factory=set)

    def attachment(self) -> Attachment:
        """What a message shows of it."""
        out: Attachment = {"id": self.id, "name": self.name, "size": self.size, "type": self.kind}
        if self.width is not None:
            out["width"], out["height"] = self.width, self.height
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "sha": self.sha,
            "name": self.name,
            "size": self.size,
            "type": self.kind,
            "owner": self.owner,
            "ts": self.ts,
            "width": self.width,
            "height": self.height,
            "shared": sorted([scope, seq] for scope, seq in self.shared),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StoredFile:
        return cls(
            data["id"],
            data["sha"],
            data["name"],
            data["size"],
            data["type"],
            data["owner"],
            data["ts"],
            data.get("width"),
            data.get("height"),
            {(scope, seq) for scope, seq in data.get("shared", ())},
        )


@dataclass(slots=True)
class Follow:
    """A user's state in one thread: `on` True while they follow it, False
    once they said `follow` off (until they reply again), None when they
    only read it; `read`, the seq read up to (never moved back)."""

    on: bool | None
    read: int


@dataclass(slots=True, eq=False)
class Thread:
    """The replies a root has, as the store keeps them (all of them, on
    every engine: a thread page, a summary and an unread count are answered
    from here without reading messages). In arrays, ~24 bytes a reply: the
    table engines keep every thread of the whole history here."""

    seqs: array[int] = field(default_factory=lambda: array("q"))  # every reply kept, oldest first
    times: array[float] = field(default_factory=lambda: array("d"))
    authors: list[str] = field(default_factory=list)  # interned: one string a name
    erased: set[int] | None = None  # seqs of those erased (still kept); made on the first

    def add(self, seq: int, author: str, ts: float, erased: bool = False) -> None:
        seqs = self.seqs
        if not seqs or seqs[-1] < seq:
            seqs.append(seq)
            self.times.append(ts)
            self.authors.append(intern(author))
        else:
            i = bisect_left(seqs, seq)
            if i == len(seqs) or seqs[i] != seq:
                seqs.insert(i, seq)
                self.times.insert(i, ts)
                self.authors.insert(i, intern(author))
            elif not erased:
                if self.erased:
                    self.erased.discard(seq)
                return
        if erased:
            self.erase(seq)

    def erase(self, seq: int) -> None:
        i = bisect_left(self.seqs, seq)
        if i < len(self.seqs) and self.seqs[i] == seq:
            if self.erased is None:
                self.erased = set()
            self.erased.add(seq)

    def drop(self, seq: int) -> None:
        """A reply no longer kept (trimmed)."""
        i = bisect_left(self.seqs, seq)
        if i < len(self.seqs) and self.seqs[i] == seq:
            del self.seqs[i], self.times[i], self.authors[i]
        if self.erased:
            self.erased.discard(seq)

    @property
    def replies(self) -> int:
        """Replies not erased."""
        return len(self.seqs) - (len(self.erased) if self.erased else 0)

    def last(self) -> float | None:
        """When the newest reply not erased was sent; None with none."""
        seqs, erased = self.seqs, self.erased
        for i in range(len(seqs) - 1, -1, -1):
            if not (erased and seqs[i] in erased):
                return self.times[i]
        return None

    def newest(self, root: int) -> int:
        """The newest reply's seq (the root's with none)."""
        return self.seqs[-1] if self.seqs else root

    def summary(self) -> dict[str, Any] | None:
        """`thread_summary`: replies not erased, the last one's time, and up
        to 5 of those who wrote them, most recent first; None with none."""
        replies = self.replies
        if not replies:
            return None
        seqs, erased, authors = self.seqs, self.erased, self.authors
        participants: list[str] = []
        for i in range(len(seqs) - 1, -1, -1):
            if erased and seqs[i] in erased:
                continue
            if authors[i] not in participants:
                participants.append(authors[i])
                if len(participants) == THREAD_PARTICIPANTS:
                    break
        return {"replies": replies, "last": self.last(), "participants": participants}

    def unread(self, after: int, reader: str) -> int:
        """Replies after seq `after`, not erased and not by `reader` (a name)."""
        seqs, erased, authors = self.seqs, self.erased, self.authors
        count = 0
        i = len(seqs) - 1
        while i >= 0 and seqs[i] > after:
            if authors[i] != reader and not (erased and seqs[i] in erased):
                count += 1
            i -= 1
        return count


THREAD_PARTICIPANTS = 5  # names a thread's summary shows


def on_timeline(message: Message) -> bool:
    """Whether a room's or conversation's timeline shows the message: one
    not in a thread, or a reply also sent to the timeline (`broadcast`)."""
    return message.thread is None or message.broadcast


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
    # Threads: (scope, root seq) -> whether the user follows it and how far
    # they read it; kept after `follow` off, so following again never moves
    # the marker back.
    follows: dict[tuple[str, int], Follow] = field(default_factory=dict)
    admin: bool = False  # a server admin: every owner's right in every room
    # Suspended: no login. Its tokens are kept but refused, and dropped on
    # unsuspend, so none issued before a suspension ever works again.
    suspended: bool = False
    guest: bool = False  # in memory only, for as long as its connection lasts


@dataclass(slots=True)
class Message:
    """A message of a room (`room`) or a DM (`to`), as the server keeps it;
    equal to another with the same fields."""

    seq: int
    author: str  # the name it was sent under (`from` on the wire)
    text: str  # "" once erased
    ts: float
    room: str | None = None
    to: str | None = None  # a DM's recipient, by name
    action: bool = False  # "* ana waves"
    reply_to: int | None = None  # the seq of the message it answers
    mentions: tuple[str, ...] = ()  # users named `@name`, as registered
    edited: float | None = None  # when last edited
    reactions: dict[str, list[str]] | None = None  # emoji -> names, in the order they reacted
    erased: bool = False
    guest: bool = False  # said by a guest: a name that is no account
    # The files it carries, each as `StoredFile.attachment()` made it when sent.
    files: tuple[Attachment, ...] = ()
    plain: bool = False  # its text is shown as typed, never formatted
    thread: int | None = None  # a reply in the thread of this root seq
    broadcast: bool = False  # a reply also shown in the timeline
    # A root's replies (its `thread_summary`): the History's, shared.
    summary: Thread | None = field(default=None, compare=False)

    def wire(self) -> dict[str, Any]:
        """The RoomMessage or DirectMessage the protocol shows (only the
        optional fields that apply)."""
        if self.room is not None:
            out: dict[str, Any] = {
                "room": self.room,
                "seq": self.seq,
                "from": self.author,
                "text": self.text,
                "ts": self.ts,
            }
        else:
            out = {"seq": self.seq, "from": self.author, "to": self.to, "text": self.text}
            out["ts"] = self.ts
        if self.action:
            out["action"] = True
        if self.reply_to is not None:
            out["reply_to"] = self.reply_to
        if self.mentions:
            out["mentions"] = list(self.mentions)
        if self.edited is not None:
            out["edited"] = self.edited
        if self.reactions:
            out["reactions"] = {emoji: list(names) for emoji, names in self.reactions.items()}
        if self.erased:
            out["erased"] = True
        if self.guest:
            out["guest"] = True
        if self.files:
            out["files"] = list(self.files)
        if self.plain:
            out["plain"] = True
        if self.thread is not None:
            out["thread"] = self.thread
            if self.broadcast:
                out["broadcast"] = True
        elif self.summary is not None and self.summary.replies:
            out["thread_summary"] = self.summary.summary()
        return out

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Message:
        """A message as `wire()` (and every snapshot) holds it. (Positional: a
        store of a million messages makes a million of these at start; most
        are plain, with none of the optional fields, and take 0.4 us, not 1.8.)"""
        get = data.get
        if len(data) == 5:  # seq, from, text, ts and room or to
            return cls(data["seq"], data["from"], data["text"], data["ts"], get("room"), get("to"))
        return cls(
            data["seq"],
            data["from"],
            data["text"],
            data["ts"],
            get("room"),
            get("to"),
            get("action", False),
            get("reply_to"),
            tuple(get("mentions", ())),
            get("edited"),
            get("reactions") or None,
            get("erased", False),
            get("guest", False),
            tuple(get("files", ())),
            get("plain", False),
            get("thread"),
            get("broadcast", False),
        )


class History:
    """A window on a room's or conversation's messages: the newest, at most
    `cap`, with consecutive `seq` values, and every thread's replies kept
    (`threads`, by root seq).

    `floor` says what the store keeps below the window: None when the window
    is all of it, else the oldest seq it keeps (on disk). With `spills`, the
    store keeps what the window lets go (the sqlite engine); without, a
    message the window lets go is gone (the json engine's cap). A read the
    window cannot answer returns None, or `covers` says so, and the store
    answers it instead.

    Pages (`page`, `newer`, `around`) are of the timeline: messages not in
    a thread and replies also sent to it; with `replies`, of every message
    (what a reader that missed some needs); `thread_page` is one thread's. A
    page around a seq holds (limit - 1) // 2 messages before it and the
    rest from it on, more before it near the newest and more after it near
    the oldest, so it stays full.
    """

    __slots__ = ("floor", "last_seq", "messages", "spills", "threads")

    def __init__(
        self,
        cap: int,
        last_seq: int = 0,
        messages: Iterable[Message] = (),
        floor: int | None = None,
        spills: bool = False,
    ) -> None:
        self.messages: deque[Message] = deque(messages, maxlen=cap)
        self.last_seq = last_seq
        self.floor = floor
        self.spills = spills
        self.threads: dict[int, Thread] = {}
        for message in self.messages:
            if message.thread is not None:
                self.thread(message.thread).add(
                    message.seq, message.author, message.ts, message.erased
                )

    def thread(self, root: int) -> Thread:
        """Root `root`'s replies, made empty on its first (and shown on the
        root from then on, if the window holds it)."""
        found = self.threads.get(root)
        if found is None:
            found = self.threads[root] = Thread()
            message = self.get(root)
            if message is not None:
                message.summary = found
        return found

    def append(self, message: Message) -> None:
        self.last_seq = message.seq
        stored = self.messages
        if len(stored) == stored.maxlen:
            if self.spills and self.floor is None:
                self.floor = stored[0].seq  # about to let it go: the store still has it
            elif not self.spills and stored[0].thread is not None:  # gone for good
                self.threads[stored[0].thread].drop(stored[0].seq)
        stored.append(message)
        if message.thread is not None:
            self.thread(message.thread).add(message.seq, message.author, message.ts, message.erased)

    def covers(self, seq: int) -> bool:
        """Whether the window holds every kept message from `seq` on."""
        if self.floor is None:
            return True
        stored = self.messages
        first = stored[0].seq if stored else self.last_seq + 1
        return seq >= first or self.floor >= first

    def _spilled(self) -> bool:
        """Whether the store keeps messages older than the window's."""
        stored = self.messages
        first = stored[0].seq if stored else self.last_seq + 1
        return self.floor is not None and self.floor < first

    def page(
        self, limit: int, before: int | None, replies: bool = False
    ) -> tuple[list[Message], bool] | None:
        """Up to `limit` timeline messages older than `before` (newest if
        None), oldest first, and whether older ones are still kept; None if
        the window cannot tell."""
        stored = self.messages
        end_seq = self.last_seq + 1 if before is None else min(before, self.last_seq + 1)
        first = stored[0].seq if stored else self.last_seq + 1
        found: list[Message] = []
        i = min(len(stored), end_seq - first) - 1
        while i >= 0 and len(found) <= limit:
            message = stored[i]
            if message.thread is None or message.broadcast or replies:
                found.append(message)
            i -= 1
        if len(found) > limit:
            return found[limit - 1 :: -1] if limit else [], True
        if self._spilled():
            return None
        return found[::-1], False

    def newer(
        self, after: int, limit: int, replies: bool = False
    ) -> tuple[list[Message], bool] | None:
        """Up to `limit` timeline messages newer than seq `after`, oldest
        first, and whether newer ones remain; None if the window cannot tell."""
        if not self.covers(after + 1):
            return None
        stored = self.messages
        first = stored[0].seq if stored else self.last_seq + 1
        if not self.spills and after + 1 < first:  # the messages just after it are gone
            return [], True
        found: list[Message] = []
        for message in islice(stored, max(0, after + 1 - first), None):
            if message.thread is None or message.broadcast or replies:
                if len(found) == limit:
                    return found, True
                found.append(message)
        return found, False

    def around(
        self, seq: int, limit: int, replies: bool = False
    ) -> tuple[list[Message], bool, bool] | None:
        """A timeline page of `limit` centred on `seq` (see `centred`), whether
        older ones remain and whether newer ones do; None if the window
        cannot tell."""
        newer = self.newer(seq - 1, limit - (limit - 1) // 2, replies)
        if newer is None:
            return None
        older = self.page(limit - len(newer[0]), seq, replies)
        if older is None:
            return None
        if len(older[0]) + len(newer[0]) < limit and newer[1]:  # near the oldest: more after
            newer = self.newer(seq - 1, limit - len(older[0]), replies)
            if newer is None:
                return None
        return older[0] + newer[0], older[1], newer[1]

    def thread_page(
        self, root: int, limit: int, before: int | None
    ) -> tuple[list[Message], bool] | None:
        """Up to `limit` replies to `root` older than `before` (the newest if
        None), oldest first, and whether older ones are kept; None if some
        of them are outside the window."""
        thread = self.threads.get(root)
        if thread is None:
            return [], False
        seqs = thread.seqs
        end = len(seqs) if before is None else bisect_left(seqs, before)
        start = max(0, end - limit)
        if start < end and not self.covers(seqs[start]):
            return None
        found = [self.get(seq) for seq in seqs[start:end]]
        return [message for message in found if message is not None], start > 0

    def get(self, seq: int) -> Message | None:
        """The stored message numbered `seq`, or None (never made, or trimmed)."""
        stored = self.messages
        if not stored:
            return None
        i = seq - stored[0].seq
        return stored[i] if 0 <= i < len(stored) else None

    def since(self, seq: int) -> Iterable[Message]:
        """Messages with a seq above `seq`."""
        stored = self.messages
        if not stored:
            return ()
        return islice(stored, max(0, seq + 1 - stored[0].seq), None)


@dataclass(slots=True, frozen=True)
class Pinned:
    """A message pinned in its room: which, by whom (a key), when."""

    seq: int
    by: str
    at: float

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "by": self.by, "at": self.at}


@dataclass(slots=True, eq=False)
class Room:
    name: str
    topic: str
    owner: str | None  # the owner's key; None for default rooms
    default: bool
    created: float
    history: History = field(default_factory=lambda: History(ROOM_WINDOW))
    members: set[str] = field(default_factory=set)
    roster: int = 0  # counts changes to `members`: a broadcast is valid for one roster
    private: bool = False  # listed, readable and joinable by members, invitees and admins only
    moderators: set[str] = field(default_factory=set)  # keys; always members
    muted: set[str] = field(default_factory=set)  # keys; kept over leaving and joining again
    bans: dict[str, Ban] = field(default_factory=dict)  # banned user's key -> the ban
    invited: set[str] = field(default_factory=set)  # keys invited (private rooms), until joining
    pins: list[Pinned] = field(default_factory=list)  # oldest pin first, at most PINS_MAX
    ephemeral: bool = False  # a guest made it: in memory only, gone when its last member goes

    def pinned(self, seq: int) -> bool:
        return any(pin.seq == seq for pin in self.pins)

    def unpin(self, seq: int) -> None:
        self.pins = [pin for pin in self.pins if pin.seq != seq]


@dataclass(slots=True, eq=False)
class Conversation:
    """The DMs between two users (or one user and themself)."""

    users: tuple[str, str]  # keys, sorted
    history: History = field(default_factory=lambda: History(DM_WINDOW))
    read: dict[str, int] = field(default_factory=dict)  # key -> last seq read


def user_key(name: str) -> str:
    return name.lower()


def pair_key(a: str, b: str) -> str:
    """The key of the conversation between two user keys.

    It holds a newline, so it never equals a room name: the search index
    uses room names and pair keys side by side as "scopes"."""
    return "\n".join(sorted((a, b)))


class TextListener(Protocol):
    """Told of every message made and every edit, by scope (a room name or
    a pair key) and seq: what keeps a search index current."""

    def new_text(self, scope: str, seq: int) -> None: ...

    def edited_text(self, scope: str, seq: int) -> None: ...


class Model:
    """Users, rooms, memberships and histories, changed only by records."""

    def __init__(
        self,
        room_window: int = ROOM_WINDOW,
        dm_window: int = DM_WINDOW,
        spills: bool = False,
        default_rooms: Sequence[str] = DEFAULT_ROOMS,
    ) -> None:
        self.room_window = room_window  # messages each room's history holds
        self.dm_window = dm_window  # and each conversation's
        self.spills = spills  # the store keeps what a window lets go
        self.users: dict[str, User] = {}
        self.rooms: dict[str, Room] = {}
        self.conversations: dict[str, Conversation] = {}
        self.admins: set[str] = set()  # keys of the users with `admin`
        self.files: dict[str, StoredFile] = {}  # uploads by id
        self.listeners: list[TextListener] = []
        # The rooms nobody owns or deletes; a new account joins the first. A
        # new store starts with them (--default-rooms); a loaded one names its own.
        self.default_rooms = tuple(default_rooms)
        for name in self.default_rooms:
            self.rooms[name] = Room(name, "", None, True, 0.0, self.new_history(False))

    # -- queries ---------------------------------------------------------

    def user(self, name: str) -> User | None:
        # Usernames are ASCII; "\u212aate".lower() would otherwise find kate.
        return self.users.get(user_key(name)) if name.isascii() else None

    def display(self, key: str) -> str:
        return self.users[key].username

    def history(self, scope: str) -> History | None:
        """A scope's window: a room's by name, a conversation's by pair key
        (it holds a newline, which no room name does)."""
        if "\n" in scope:
            conv = self.conversations.get(scope)
            return conv.history if conv is not None else None
        room = self.rooms.get(scope)
        return room.history if room is not None else None

    def history_of(self, room: str | None, user: str | None, other: str | None) -> History | None:
        """The history of `room`, or else of the DM conversation of `user`
        with `other` (keys); None if there is no such room or they never wrote."""
        if room is not None:
            found = self.rooms.get(room)
            return found.history if found is not None else None
        conv = self.conversations.get(pair_key(user, other))  # type: ignore[arg-type]
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

    def may_download(self, key: str, file: StoredFile) -> bool:
        """Whether user `key` may have `file`: its uploader, an admin, or
        someone who can read a message that carries it (a member of its
        room, one of the two of its DM)."""
        user = self.users.get(key)
        if user is None or user.guest:
            return False
        if file.owner == key or user.admin:
            return True
        return any(scope in user.rooms or scope in user.conversations for scope, _ in file.shared)

    def unread_in(self, scope: str, after: int, reader: str) -> tuple[int, int]:
        """In a room (`scope` its name): timeline messages after seq
        `after`, not erased and not by `reader` (a name), and how many of
        those mention them. In a DM conversation (a pair key): the other
        user's timeline messages after `after`, erased ones too, and no
        mentions. (Thread replies count in their threads.)"""
        if "\n" in scope:
            conv = self.conversations.get(scope)
            if conv is None:
                return 0, 0
            me = user_key(reader)
            return sum(
                1 for m in conv.history.since(after) if user_key(m.author) != me and on_timeline(m)
            ), 0
        room = self.rooms.get(scope)
        if room is None:
            return 0, 0
        unread = mentions = 0
        for m in room.history.since(after):
            if m.author != reader and not m.erased and on_timeline(m):
                unread += 1
                if reader in m.mentions:
                    mentions += 1
        return unread, mentions

    # -- what records use to change it -------------------------------------

    def new_history(self, dm: bool) -> History:
        """An empty window for a new room (or, `dm`, conversation)."""
        return History(self.dm_window if dm else self.room_window, spills=self.spills)

    def apply(self, record: Record) -> Any:
        """Applies one validated record; returns what it produced, if anything."""
        return record.apply(self)

    def add_member(self, key: str, room: Room) -> None:
        """Makes a user a member, with everything stored read; an invitation is used up."""
        user = self.users[key]
        user.rooms.add(room.name)
        user.read[room.name] = room.history.last_seq
        room.members.add(key)
        room.invited.discard(key)
        room.roster += 1

    def remove_member(self, key: str, room: Room) -> None:
        """Takes a member out of a room; a moderator who goes is one no more."""
        user = self.users[key]
        user.rooms.discard(room.name)
        user.read.pop(room.name, None)
        room.members.discard(key)
        room.moderators.discard(key)
        room.roster += 1

    def drop_follows(self, scope: str, keys: Iterable[str]) -> None:
        """Forgets the threads of a scope that is gone, for users `keys`."""
        for key in keys:
            user = self.users.get(key)
            if user is not None and user.follows:
                for address in [a for a in user.follows if a[0] == scope]:
                    del user.follows[address]

    def set_admin(self, key: str, on: bool) -> None:
        self.users[key].admin = on
        if on:
            self.admins.add(key)
        else:
            self.admins.discard(key)

    def tell_new(self, scope: str, message: Message) -> None:
        for listener in self.listeners:
            listener.new_text(scope, message.seq)

    def tell_edited(self, scope: str, message: Message) -> None:
        for listener in self.listeners:
            listener.edited_text(scope, message.seq)

    # -- snapshot --------------------------------------------------------

    def to_snapshot(self) -> dict[str, Any]:
        """Everything as plain JSON-able data (the store's readable snapshot),
        but messages, which stay `Message` objects (`Message.wire()` is their
        JSON form) so that a big store is not converted at once.

        A copy of the structure: the store writes it while the model moves
        on. Messages are shared, so one may be encoded with an edit, erasure
        or reaction made after the snapshot's journal position; replaying
        that record then finds its effect in place (see the module's note).
        Guests and ephemeral rooms are left out, and so is every trace of
        them in what is stored: the snapshot holds what the journal's
        records (which never name them) build."""
        guests = {key for key, u in self.users.items() if u.guest}
        ephemeral = {name for name, room in self.rooms.items() if room.ephemeral}
        stored = {name for name in self.rooms if name not in ephemeral}
        stored.update(k for k, c in self.conversations.items() if guests.isdisjoint(c.users))
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
                    "follows": [
                        [scope, root, follow.on, follow.read]
                        for (scope, root), follow in u.follows.items()
                        if scope in stored
                    ],
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
                    "pins": [pin.to_json() for pin in room.pins],
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
            "files": [file.to_json() for file in self.files.values()],
        }

    @classmethod
    def from_snapshot(
        cls, data: dict[str, Any], room_window: int = ROOM_WINDOW, dm_window: int = DM_WINDOW
    ) -> Model:
        model = cls(room_window, dm_window)
        model.rooms.clear()  # a snapshot holds every room, its default ones too
        model.default_rooms = tuple(r["name"] for r in data["rooms"] if r["default"])
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
                follows={(f[0], f[1]): Follow(f[2], f[3]) for f in u.get("follows", ())},
            )
            if u.get("admin"):
                model.set_admin(key, True)
        for r in data["rooms"]:
            # Stores before version 4 know no moderation: every room is
            # public, with no moderators, mutes, bans or invitations.
            model.rooms[r["name"]] = Room(
                r["name"],
                r["topic"],
                r["owner"],
                r["default"],
                r["created"],
                History(room_window, r["last_seq"], map(Message.from_wire, r["messages"])),
                private=r.get("private", False),
                moderators=set(r.get("moderators", ())),
                muted=set(r.get("muted", ())),
                bans={user_key(ban["user"]): ban for ban in r.get("bans", ())},
                invited=set(r.get("invited", ())),
                pins=[Pinned(**pin) for pin in r.get("pins", ())],
            )
        for u in data["users"]:
            key = user_key(u["username"])
            for name in u["rooms"]:
                model.add_member(key, model.rooms[name])
            # Stores written before read markers existed have none: each
            # member starts with everything stored read, as on joining.
            model.users[key].read.update(u.get("read", {}))
        for d in data["dms"]:
            users = (d["users"][0], d["users"][1])
            key = pair_key(*users)
            model.conversations[key] = Conversation(
                users,
                History(dm_window, d["last_seq"], map(Message.from_wire, d["messages"])),
                d["read"],
            )
            for user in users:
                model.users[user].conversations.add(key)
        for f in data.get("files", ()):
            model.files[f["id"]] = StoredFile.from_json(f)
        return model
