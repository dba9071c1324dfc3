"""One IRC connection's translation, sans I/O: IRC lines <-> the server's frames.

The translator decides nothing the server decides. Every line a client
sends becomes at least one request frame for the connection core (a line
with nothing to ask becomes a `ping`), so the core's rules hold for IRC as
for any carrier: the budget of frames before login, the login deadline,
flood control, answering in order, backpressure. What the core answers
(replies and events, as encoded frames) becomes IRC lines here.

The translator is built in layers, each a module: `state` (what it keeps
and how it asks and answers), `registration` (CAP, SASL, PASS, the
welcome), `commands` (one method a client command), `events` (one method a
server event), `guests` (what guests change); this module dispatches lines
and frames to them through two tables, and shares a room's translation
between clients.

Reference: https://modern.ircdocs.horse and https://ircv3.net/irc/.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from nexus.server.irc.guests import Guests
from nexus.server.irc.lines import CLIENT_TAGS_MAX, Line, parse
from nexus.server.irc.state import Label, Profile, Reply
from nexus.server.outbox import slice_start

# How a room's write starts (the server encodes "event" first): only such a
# write is worth a shared translation.
_ROOM_MESSAGE = b'{"event":"message",'

# Commands answered by the replies to their own requests alone (never by
# requests those replies ask), so, with no earlier answer still being
# collected, their lines go out as their replies come, with no Label.
_ANSWERED_AT_ONCE = frozenset({"PRIVMSG", "NOTICE", "TAGMSG", "PING", "PONG"})


# What a client may send before it is registered.
_BEFORE_WELCOME = frozenset({"CAP", "AUTHENTICATE", "PASS", "NICK", "USER", "PING", "PONG", "QUIT"})


@dataclass(slots=True)
class _Shared:
    """One room write's frames as lines, the same for every client with the same
    tags: each frame that is a message in the room, by its author. A client takes
    the lines of others' messages as they are and translates the rest itself
    (its own messages, and frames that are not messages)."""

    room: str
    ends: list[int]  # where each frame ends in the write
    at: dict[int, int]  # where each frame starts or the last ends -> its index (or their count)
    starts: dict[bytes, int]  # each frame (without its newline) -> where it first starts
    lines: bytes  # every message's lines, CRLF-ended, in the frames' order
    line_ends: list[int]  # where each frame's lines end in `lines`
    by: dict[str, list[int]]  # each author's messages (lower case), by frame index
    others: list[int]  # frames that are not messages

    def span(self, first: int, last: int) -> bytes | memoryview:
        """The lines of frames [first, last)."""
        if first == 0 and last == len(self.ends):
            return self.lines
        return memoryview(self.lines)[
            self.line_ends[first - 1] if first else 0 : self.line_ends[last - 1]
        ]


# Shared translations by (profile, the core's write). A room's frames between
# two flushes reach every member as one bytes object, whole or as slices of it
# (memoryviews, for members whose own replies split it), so only the latest
# few are kept, and a bytes object hashes once: the key then costs a lookup.
# None: a write that holds no room message.
_SHARED: dict[tuple[Profile, bytes], _Shared | None] = {}


_SHARED_MAX = 64  # writes remembered


_SHARED_BYTES_MAX = 8 << 20  # bytes of lines remembered (their writes, the keys, about as many)


_shared_bytes = 0


def _share(key: tuple[Profile, bytes], shared: _Shared | None) -> None:
    global _shared_bytes
    size = len(shared.lines) if shared is not None else 0
    if len(_SHARED) >= _SHARED_MAX or _shared_bytes + size > _SHARED_BYTES_MAX:
        _SHARED.clear()
        _shared_bytes = 0
    _SHARED[key] = shared
    _shared_bytes += size


class Translator(Guests):
    """A connection's IRC side. `client_line` takes a client's line and returns
    request frames for the core; `server_frame` takes a frame from the core and
    queues IRC lines; `take_output` and `take_requests` hand both over."""

    def server_write(self, part: bytes | bytearray | memoryview[Any]) -> None:
        """One write from the core: whole frames, each ending with a newline.

        A room's frames between two flushes reach its members as one bytes
        object, whole or in slices (around a member's own replies). Other
        people's messages there are the same lines for every client with the
        same tags, so they are made once per write (`_Shared`) and each member
        takes them as they are: a message to a room of 100 IRC clients is
        translated once, not 100 times, for the senders too.
        """
        found = self._shared_frames(part)
        if found is None:
            self._translate(bytes(part))
            return
        shared, whole, first, last = found
        ends = shared.ends
        self._encode_lines()
        # Its own messages and the frames that are not messages it translates itself.
        mine = shared.by.get(self.nick.lower(), ())
        for i in sorted(i for i in (*mine, *shared.others) if first <= i < last):
            if first < i:
                self.chunks.append(shared.span(first, i))
            self.server_frame(whole[ends[i - 1] if i else 0 : ends[i] - 1])
            self._encode_lines()
            first = i + 1
            if shared.room not in self.channels:  # that frame took it out of the room
                self._translate(whole[ends[i] : ends[last - 1]])
                return
        if first < last:
            self.chunks.append(shared.span(first, last))

    def _shared_frames(
        self, part: bytes | bytearray | memoryview[Any]
    ) -> tuple[_Shared, bytes, int, int] | None:
        """The shared translation of the room write `part` is or is a slice of,
        that write, and the frames [first, last) `part` holds; None when it is no
        room's write in a channel this client shows (it translates that itself)."""
        if type(part) is bytes:
            if not part.startswith(_ROOM_MESSAGE):
                return None
            whole = part
        elif type(part) is memoryview and type(part.obj) is bytes:
            whole = part.obj  # only a room's write is handed over in slices
        else:
            return None
        key = (self.profile, whole)
        shared = _SHARED.get(key)
        if shared is None and key not in _SHARED:
            shared = self._share_write(whole)
            _share(key, shared)
        if shared is None or shared.room not in self.channels:
            return None  # no room message in it, or a room it does not show
        if part is whole:
            return shared, whole, 0, len(shared.ends)
        start = slice_start(whole, part, shared.starts)
        if start is None:
            return None
        first, last = shared.at.get(start), shared.at.get(start + len(part))
        if first is None or last is None:  # not whole frames of it: not from the outbox
            return None
        return shared, whole, first, last

    def shared_lines(self, data: bytes) -> bytes | None:
        """The lines of a room's write for a member that takes them as they are
        (others' messages only, in a channel it shows, nothing of its own
        queued), once some member has translated it; None otherwise. The
        common case of a busy room, kept to a look-up (IrcLink._write)."""
        shared = _SHARED.get((self.profile, data))
        if (
            shared is None
            or shared.others
            or shared.room not in self.channels
            or self.nick.lower() in shared.by
            or self.out
            or self.chunks
        ):
            return None
        return shared.lines

    def _translate(self, data: bytes) -> None:
        for frame in data.split(b"\n"):
            if frame:
                self.server_frame(frame)

    def _share_write(self, whole: bytes) -> _Shared | None:
        """`whole`'s frames as lines to share, or None if none is a room message."""
        room: str | None = None
        ends: list[int] = []
        at = {0: 0}
        starts: dict[bytes, int] = {}
        lines: list[bytes] = []
        line_ends: list[int] = []
        by: dict[str, list[int]] = {}
        others: list[int] = []
        end = line_end = 0
        for i, frame in enumerate(whole.split(b"\n")[:-1]):
            starts.setdefault(frame, end)
            end += len(frame) + 1
            ends.append(end)
            at[end] = i + 1
            try:
                obj = orjson.loads(frame)
            except orjson.JSONDecodeError:
                obj = None
            if (
                type(obj) is dict
                and obj.get("event") == "message"
                and "room" in obj
                and obj["room"] == (room or obj["room"])
            ):
                room = obj["room"]
                data = ("\r\n".join(self._message_lines(obj)) + "\r\n").encode()
                lines.append(data)
                line_end += len(data)
                by.setdefault(obj["from"].lower(), []).append(i)
            else:  # translated by each client
                others.append(i)
            line_ends.append(line_end)
        if room is None:
            return None
        return _Shared(room, ends, at, starts, b"".join(lines), line_ends, by, others)

    def client_line(self, raw: bytes) -> None:
        """One line from the client (without its LF)."""
        line = parse(raw)
        if line is None:
            if not self.registered:
                self._local()  # blank lines are free only once logged in, as frames are
            return
        tag = line.tags.get("label") if "labeled-response" in self.caps else None
        if tag or self.answering or line.command not in _ANSWERED_AT_ONCE:
            self.label = label = Label(tag[:64] if tag else None)
        else:  # nothing to hold back, nor anything it could be held behind
            self.label = label = None
        asked = len(self.requests)
        handler = _COMMANDS.get(line.command)
        if handler is None:
            self._local(self._numeric("421", line.command[:32], "Unknown command"))
        elif not self.registered and line.command not in _BEFORE_WELCOME:
            self._local(self._numeric("451", "You have not registered"))
        elif line.tags_size > CLIENT_TAGS_MAX:  # never relayed, whatever it asks
            self._local(self._numeric("417", "Input line was too long"))
        elif len(line.params) < handler[1]:
            self._local(self._numeric("461", line.command, "Not enough parameters"))
        else:
            handler[0](self, line)
        if len(self.requests) == asked:
            self._local()  # every line is a frame the core counts and orders
        if label is not None:
            self.answering.append(label)
        self.label = None

    def server_frame(self, frame: bytes) -> None:
        """One frame from the core (without its newline)."""
        try:
            obj = orjson.loads(frame)
        except orjson.JSONDecodeError:
            return
        event = obj.get("event")
        if event is not None:
            handler = _EVENTS.get(event)
            if handler is not None:
                handler(self, obj)
            return
        pending = self.pending.pop(obj.get("id"), None) if "id" in obj else None
        if pending is None:
            if obj.get("ok") is False:  # a refusal outside any request: the end
                self._error(obj["error"]["message"])
            return
        outer, self.label = self.label, pending.label
        try:
            if obj.get("ok"):
                if pending.on_ok is not None:
                    pending.on_ok(obj)
            elif pending.on_error is not None:
                pending.on_error(obj)
            else:
                self._failed(obj)
            if pending.label is not None:
                self._answered(pending.label)
        finally:
            self.label = outer


_COMMANDS: dict[str, tuple[Callable[[Translator, Line], None], int]] = {
    "AUTHENTICATE": (Translator._authenticate, 1),
    "AWAY": (Translator._away, 0),
    "CAP": (Translator._cap, 1),
    "CHATHISTORY": (Translator._chathistory, 2),
    "INVITE": (Translator._invite, 2),
    "ISON": (Translator._ison, 1),
    "JOIN": (Translator._join, 1),
    "KICK": (Translator._kick, 2),
    "MARKREAD": (Translator._markread, 0),  # FAIL, not 461, without a target
    "LIST": (Translator._list, 0),
    "MODE": (Translator._mode, 1),
    "MOTD": (Translator._motd_cmd, 0),
    "NAMES": (Translator._names, 0),
    "NICK": (Translator._nick, 1),
    "NOTICE": (Translator._notice_cmd, 1),
    "PART": (Translator._part, 1),
    "PASS": (Translator._pass, 1),
    "PING": (Translator._ping, 1),
    "PONG": (Translator._pong, 0),
    "PRIVMSG": (Translator._privmsg, 1),
    "QUIT": (Translator._quit, 0),
    "REDACT": (Translator._redact, 2),
    "TAGMSG": (Translator._tagmsg, 1),
    "TOPIC": (Translator._topic, 1),
    "USER": (Translator._user, 4),
    "USERHOST": (Translator._userhost, 1),
    "VERSION": (Translator._version, 0),
    "WHO": (Translator._who_cmd, 1),
    "WHOIS": (Translator._whois, 1),
}


_EVENTS: dict[str, Callable[[Translator, Reply], None]] = {
    "dm": Translator._on_dm,
    "edited": Translator._on_edited,
    "erased": Translator._on_erased,
    "hello": Translator._on_hello,
    "joined": Translator._on_joined,
    "left": Translator._on_left,
    "message": Translator._on_message,
    "presence": Translator._on_presence,
    "read": Translator._on_read,
    "reaction": Translator._on_reaction,
    "room_deleted": Translator._on_room_deleted,
    "invited": Translator._on_invited,
    "kicked": Translator._on_kicked,
    "muted": Translator._on_muted,
    "room_updated": Translator._on_room_updated,
    "topic": Translator._on_topic,
}
