"""One IRC connection's translation, sans I/O: IRC lines <-> the server's frames.

The translator decides nothing the server decides. Every line a client
sends becomes at least one request for the connection core, handed over
as it is made, not encoded (a line with nothing to ask becomes a `ping`),
so the core's rules hold for IRC as for any carrier: the budget of frames
before login, the login deadline, flood control, answering in order,
backpressure. What the core answers (replies and events, read in their
typed form) becomes IRC lines here.

A connection's IRC side is its state (`state.IrcState`: what it keeps and
how it asks and answers) and the handlers that act on it, functions of that
state: `registration` (CAP, SASL, PASS, NICK, USER, the welcome), `commands`
(one `handle_<command>` a client command), `events` and `guests` (one
`on_<event>` a server event), with `members` and `markers` for what several
of them show. What it says goes through its response buffer (`responses`:
labels, batches, order). This module dispatches lines and frames through
two tables, from command and event names to handlers, and shares a room's
translation between clients.

Reference: https://modern.ircdocs.horse and https://ircv3.net/irc/.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from nexus.server.frames import Frame
from nexus.server.irc.commands import (
    handle_away,
    handle_chathistory,
    handle_invite,
    handle_ison,
    handle_join,
    handle_kick,
    handle_list,
    handle_mode,
    handle_motd,
    handle_names,
    handle_notice,
    handle_part,
    handle_ping,
    handle_pong,
    handle_privmsg,
    handle_quit,
    handle_redact,
    handle_tagmsg,
    handle_topic,
    handle_userhost,
    handle_version,
    handle_who,
    handle_whois,
)
from nexus.server.irc.events import (
    on_dm,
    on_edited,
    on_erased,
    on_hello,
    on_invited,
    on_joined,
    on_kicked,
    on_left,
    on_message,
    on_muted,
    on_pinned,
    on_reaction,
    on_room_deleted,
    on_room_updated,
    on_topic,
    on_typing,
)
from nexus.server.irc.guests import on_presence
from nexus.server.irc.lines import CLIENT_TAGS_MAX, Line, parse
from nexus.server.irc.markers import handle_markread, on_read
from nexus.server.irc.registration import (
    handle_authenticate,
    handle_cap,
    handle_nick,
    handle_pass,
    handle_user,
)
from nexus.server.irc.responses import Label
from nexus.server.irc.state import IrcState, Reply
from nexus.server.outbox import View

# What a broadcast's encodings hold for a capability set not seen yet (None
# is made: a broadcast with no room message).
_UNMADE = object()


# Commands answered by the replies to their own requests alone (never by
# requests those replies ask), so, with no earlier answer still being
# collected, their lines go out as their replies come, with no Label.
_ANSWERED_AT_ONCE = frozenset({"PRIVMSG", "NOTICE", "TAGMSG", "PING", "PONG"})


# What a client may send before it is registered.
_BEFORE_WELCOME = frozenset({"CAP", "AUTHENTICATE", "PASS", "NICK", "USER", "PING", "PONG", "QUIT"})


@dataclass(slots=True)
class _Shared:
    """A room broadcast's frames as lines, the same for every client with the
    same tags: each frame that is a message in the room, by its author. A
    client takes the lines of others' messages as they are and translates the
    rest itself (its own messages, and frames that are not messages)."""

    room: str
    lines: bytes  # every message's lines, CRLF-ended, in the frames' order
    line_ends: list[int]  # where each frame's lines end in `lines`
    by: dict[str, list[int]]  # each author's messages (lower case), by frame index
    others: list[int]  # frames that are not messages

    def span(self, first: int, last: int) -> bytes | memoryview:
        """The lines of frames [first, last)."""
        if first == 0 and last == len(self.line_ends):
            return self.lines
        return memoryview(self.lines)[
            self.line_ends[first - 1] if first else 0 : self.line_ends[last - 1]
        ]


class Translator(IrcState):
    """A connection's IRC side. `client_line` takes a client's line and makes
    requests for the core; `server_event` takes a frame's body from the core
    and `server_view` a room broadcast's, and both queue IRC lines;
    `take_output` and `take_requests` hand both over."""

    def server_view(self, view: View) -> None:
        """A member's view of a room broadcast (outbox.py): frames [start, end).

        Other people's messages there are the same lines for every client with
        the same tags, so they are made once per broadcast and tag profile
        (`_Shared`, kept by the broadcast) and each member takes them as they
        are: a message to a room of 100 IRC clients is translated once, not
        100 times, for the senders too.
        """
        broadcast = view.broadcast
        frames = broadcast.frames
        first = view.start
        last = len(frames) if view.end is None else view.end
        # Once made, a look-up: this runs for every member of the room.
        shared = broadcast.encodings.get(self.profile, _UNMADE)
        if shared is _UNMADE:
            shared = broadcast.encoded(self.profile, self._share)
        if (
            shared is None
            or shared.room not in self.channels
            or self.joining.get(shared.room) is not None  # held until its JOIN is told
        ):
            for frame in frames[first:last]:  # no room message, or a room it does not show
                self.server_event(frame.body)
            return
        responses = self.responses
        if responses.lines:
            responses.encode_lines()
        # Its own messages and the frames that are not messages it translates itself.
        mine = shared.by.get(self.nick.lower()) if shared.by else None
        if mine is not None or shared.others:
            for i in sorted(i for i in (*(mine or ()), *shared.others) if first <= i < last):
                if first < i:
                    self.responses.chunks.append(shared.span(first, i))
                self.server_event(frames[i].body)
                self.responses.encode_lines()
                first = i + 1
                if shared.room not in self.channels:  # that frame took it out of the room
                    for frame in frames[first:last]:
                        self.server_event(frame.body)
                    return
        if first < last:
            self.responses.chunks.append(shared.span(first, last))

    def _share(self, frames: list[Frame]) -> _Shared | None:
        """A broadcast's frames as lines to share, or None if none is a room message."""
        room: str | None = None
        lines: list[bytes] = []
        line_ends: list[int] = []
        by: dict[str, list[int]] = {}
        others: list[int] = []
        line_end = 0
        for i, frame in enumerate(frames):
            obj = frame.body
            if (
                obj.get("event") == "message"
                and "room" in obj
                and obj["room"] == (room or obj["room"])
            ):
                room = obj["room"]
                data = ("\r\n".join(self.message_lines(obj)) + "\r\n").encode()
                lines.append(data)
                line_end += len(data)
                by.setdefault(obj["from"].lower(), []).append(i)
            else:  # translated by each client
                others.append(i)
            line_ends.append(line_end)
        if room is None:
            return None
        return _Shared(room, b"".join(lines), line_ends, by, others)

    def client_line(self, raw: bytes) -> None:
        """One line from the client (without its LF)."""
        line = parse(raw)
        if line is None:
            if not self.registered:
                self.local()  # blank lines are free only once logged in, as frames are
            return
        tag = line.tags.get("label") if "labeled-response" in self.caps else None
        if tag or self.responses.answering or line.command not in _ANSWERED_AT_ONCE:
            self.responses.label = label = Label(tag[:64] if tag else None)
        else:  # nothing to hold back, nor anything it could be held behind
            self.responses.label = label = None
        asked = len(self.requests)
        handler = _COMMANDS.get(line.command)
        if handler is None:
            self.local(self.numeric("421", line.command[:32], "Unknown command"))
        elif not self.registered and line.command not in _BEFORE_WELCOME:
            self.local(self.numeric("451", "You have not registered"))
        elif line.tags_size > CLIENT_TAGS_MAX:  # never relayed, whatever it asks
            self.local(self.numeric("417", "Input line was too long"))
        elif len(line.params) < handler[1]:
            self.local(self.numeric("461", line.command, "Not enough parameters"))
        else:
            handler[0](self, line)
        if len(self.requests) == asked:
            self.local()  # every line is a frame the core counts and orders
        if label is not None:
            self.responses.answering.append(label)
        self.responses.label = None

    def server_event(self, obj: Reply) -> None:
        """One frame's body from the core: a reply or an event."""
        event = obj.get("event")
        if event is not None:
            if self.joining and self.held(obj):
                return
            handler = _EVENTS.get(event)
            if handler is not None:
                handler(self, obj)
            return
        pending = self.pending.pop(obj["id"], None) if "id" in obj else None
        if pending is None:
            if obj.get("ok") is False:  # a refusal outside any request: the end
                self.error(obj["error"]["message"])
            return
        outer, self.responses.label = self.responses.label, pending.label
        try:
            if obj.get("ok"):
                if pending.on_ok is not None:
                    pending.on_ok(obj)
            elif pending.on_error is not None:
                pending.on_error(obj)
            else:
                self.failed(obj)
            if pending.label is not None:
                self.responses.answered(pending.label)
        finally:
            self.responses.label = outer


_COMMANDS: dict[str, tuple[Callable[[IrcState, Line], None], int]] = {
    "AUTHENTICATE": (handle_authenticate, 1),
    "AWAY": (handle_away, 0),
    "CAP": (handle_cap, 1),
    "CHATHISTORY": (handle_chathistory, 2),
    "INVITE": (handle_invite, 2),
    "ISON": (handle_ison, 1),
    "JOIN": (handle_join, 1),
    "KICK": (handle_kick, 2),
    "MARKREAD": (handle_markread, 0),  # FAIL, not 461, without a target
    "LIST": (handle_list, 0),
    "MODE": (handle_mode, 1),
    "MOTD": (handle_motd, 0),
    "NAMES": (handle_names, 0),
    "NICK": (handle_nick, 1),
    "NOTICE": (handle_notice, 1),
    "PART": (handle_part, 1),
    "PASS": (handle_pass, 1),
    "PING": (handle_ping, 1),
    "PONG": (handle_pong, 0),
    "PRIVMSG": (handle_privmsg, 1),
    "QUIT": (handle_quit, 0),
    "REDACT": (handle_redact, 2),
    "TAGMSG": (handle_tagmsg, 1),
    "TOPIC": (handle_topic, 1),
    "USER": (handle_user, 4),
    "USERHOST": (handle_userhost, 1),
    "VERSION": (handle_version, 0),
    "WHO": (handle_who, 1),
    "WHOIS": (handle_whois, 1),
}


_EVENTS: dict[str, Callable[[IrcState, Reply], None]] = {
    "dm": on_dm,
    "edited": on_edited,
    "erased": on_erased,
    "hello": on_hello,
    "joined": on_joined,
    "left": on_left,
    "message": on_message,
    "pinned": on_pinned,
    "presence": on_presence,
    "read": on_read,
    "reaction": on_reaction,
    "room_deleted": on_room_deleted,
    "invited": on_invited,
    "kicked": on_kicked,
    "muted": on_muted,
    "room_updated": on_room_updated,
    "topic": on_topic,
    "typing": on_typing,
}
