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
from nexus.server.irc.lines import Line, parse
from nexus.server.irc.state import Label, Profile, Reply

# What a client may send before it is registered.
_BEFORE_WELCOME = frozenset({"CAP", "AUTHENTICATE", "PASS", "NICK", "USER", "PING", "PONG", "QUIT"})


@dataclass(frozen=True, slots=True)
class _Shared:
    """Lines made for one write of room messages, for every client with the same tags."""

    rooms: frozenset[str]  # the rooms they are in: the client must show each
    authors: frozenset[str]  # who wrote them (lower case): never the client itself
    data: bytes


# Shared translations by (profile, the core's write): a room's writes reach all
# its members one after another within one flush, so only the latest few are
# kept (a bytes object hashes once; the key then costs a lookup).
_SHARED: dict[tuple[Profile, bytes], _Shared] = {}


_SHARED_MAX = 64  # writes remembered


_SHARED_BYTES_MAX = 8 << 20  # bytes of writes remembered: bounds what bursts keep alive


_shared_bytes = 0


# The same for single frames (a room message), for the writes that are not
# shared whole: a sender's own, split around its replies.
_LINES: dict[tuple[Profile, bytes], tuple[str, str, str]] = {}


_LINES_MAX = 4096


def _share(profile: Profile, part: bytes, shared: _Shared) -> None:
    global _shared_bytes
    if len(_SHARED) >= _SHARED_MAX or _shared_bytes + len(part) > _SHARED_BYTES_MAX:
        _SHARED.clear()
        _shared_bytes = 0
    _SHARED[profile, part] = shared
    _shared_bytes += len(part)


class Translator(Guests):
    """A connection's IRC side. `client_line` takes a client's line and returns
    request frames for the core; `server_frame` takes a frame from the core and
    queues IRC lines; `take_output` and `take_requests` hand both over."""

    def server_write(self, part: bytes | bytearray | memoryview[Any]) -> None:
        """One write from the core: whole frames, each ending with a newline.

        A room's frames between two flushes reach every member as the same
        bytes object. When all of them are other people's messages in
        channels this client shows, its lines are the same for every client
        with the same tags, so they are made once and shared (`_Shared`): a
        message to a room of 100 IRC clients is translated once, not 100 times.
        """
        shared = _SHARED.get((self.profile, part)) if type(part) is bytes else None
        if shared is not None and self._sees(shared):
            self._encode_lines()
            self.chunks.append(shared.data)
            return
        start = len(self.out)
        rooms: set[str] | None = set() if type(part) is bytes and self.label is None else None
        authors: set[str] = set()
        for frame in bytes(part).split(b"\n"):
            if frame:
                plain = self.server_frame(frame)
                if rooms is not None:
                    if plain is None:
                        rooms = None
                    else:
                        rooms.add(plain[0])
                        authors.add(plain[1])
        if rooms is not None and len(self.out) > start:
            data = ("\r\n".join(self.out[start:]) + "\r\n").encode()
            _share(self.profile, part, _Shared(frozenset(rooms), frozenset(authors), data))  # type: ignore[arg-type]

    def _sees(self, shared: _Shared) -> bool:
        """Whether a shared translation is what this client would make itself."""
        channels = self.channels
        return self.nick.lower() not in shared.authors and all(
            room in channels for room in shared.rooms
        )

    def client_line(self, raw: bytes) -> None:
        """One line from the client (without its LF)."""
        line = parse(raw)
        if line is None:
            if not self.registered:
                self._local()  # blank lines are free only once logged in, as frames are
            return
        self.label = None
        if "labeled-response" in self.caps and line.tags.get("label"):
            self.label = Label(line.tags["label"][:64])
        asked = len(self.requests)
        handler = _COMMANDS.get(line.command)
        if handler is None:
            self._local(self._numeric("421", line.command[:32], "Unknown command"))
        elif not self.registered and line.command not in _BEFORE_WELCOME:
            self._local(self._numeric("451", "You have not registered"))
        elif len(line.params) < handler[1]:
            self._local(self._numeric("461", line.command, "Not enough parameters"))
        else:
            handler[0](self, line)
        if len(self.requests) == asked:
            self._local()  # every line is a frame the core counts and orders
        self.label = None

    def server_frame(self, frame: bytes) -> tuple[str, str] | None:
        """One frame from the core (without its newline). For another user's
        message in a channel the client shows, returns (room, author), since
        its lines are the same for every client with the same tags."""
        known = _LINES.get((self.profile, frame))
        if known is not None:
            room, author, text = known
            if room in self.channels and author != self.nick.lower():
                self.out.append(text)
                return room, author
        try:
            obj = orjson.loads(frame)
        except orjson.JSONDecodeError:
            return None
        event = obj.get("event")
        if event == "message":
            room, author = obj["room"], obj["from"].lower()
            if room in self.channels and author != self.nick.lower():
                text = "\r\n".join(self._message_lines(obj))
                self.out.append(text)
                if len(_LINES) >= _LINES_MAX:
                    _LINES.clear()
                _LINES[self.profile, frame] = (room, author, text)
                return room, author
        if event is not None:
            handler = _EVENTS.get(event)
            if handler is not None:
                handler(self, obj)
            return None
        pending = self.pending.pop(obj.get("id"), None) if "id" in obj else None
        if pending is None:
            if obj.get("ok") is False:  # a refusal outside any request: the end
                self._error(obj["error"]["message"])
            return None
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
                pending.label.pending -= 1
                if pending.label.pending == 0:
                    self._finish_label(pending.label)
        finally:
            self.label = outer
        return None


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
    "PING": (Translator._ping, 0),
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
