"""One IRC connection's translation, sans I/O: IRC lines <-> the server's frames.

The translator decides nothing the server decides. Every line a client
sends becomes at least one request frame for the connection core (a line
with nothing to ask becomes a `ping`), so the core's rules hold for IRC as
for any carrier: the budget of frames before login, the login deadline,
flood control, answering in order, backpressure. What the core answers
(replies and events, as encoded frames) becomes IRC lines here.

What the translator keeps is the IRC view of the session only: the nick and
capabilities, the channels the client was shown and who it was shown in
them (so JOIN, PART, QUIT and AWAY lines match what the client believes),
and for each request in flight what to say when its reply comes.

Reference: https://modern.ircdocs.horse and https://ircv3.net/irc/.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import orjson

from nexus.protocol import DM_HISTORY_CAP, ROOM_RE, USERNAME_RE
from nexus.server.irc.history import history_window, irc_time, msgid, pair, seq_of
from nexus.server.irc.lines import LINE_MAX, Line, build, parse, split_text, strip_formatting
from nexus.server.irc.numerics import (
    CAPS,
    CHANNELLEN,
    HISTORY_MAX,
    HOST,
    ISUPPORT,
    NUMERICS,
    SERVER,
    TOPICLEN,
)

# What a client may send before it is registered.
_BEFORE_WELCOME = frozenset({"CAP", "AUTHENTICATE", "PASS", "NICK", "USER", "PING", "PONG", "QUIT"})
# Any nick an IRC client may offer before registering; the account's name
# replaces it at the welcome.
_NICK_RE = re.compile(r"[A-Za-z\[\]\\`_^{|}][A-Za-z0-9\[\]\\`_^{|}-]{0,31}")
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_LOGIN_HELP = (
    "this server needs a Nexus account: log in with SASL PLAIN, or PASS <account>:<password>"
)

Reply = dict[str, Any]
OnReply = Callable[[Reply], None]


def client_text(text: str) -> str:
    """A client's message text as Nexus keeps it: no formatting or control codes."""
    return _CONTROL_RE.sub("", strip_formatting(text))


@dataclass(frozen=True, slots=True)
class _Shared:
    """Lines made for one write of room messages, for every client with the same tags."""

    rooms: frozenset[str]  # the rooms they are in: the client must show each
    authors: frozenset[str]  # who wrote them (lower case): never the client itself
    data: bytes


Profile = tuple[bool, bool, bool]  # server-time, message-tags, account-tag acknowledged

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


@dataclass(slots=True)
class Label:
    """A labeled request's answer, collected until every frame it asked is answered."""

    tag: str
    pending: int = 0
    lines: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Sent:
    """A message this connection said and has not seen come back yet (echo-message)."""

    target: str  # '#room' or the recipient's nick, lower case
    text: str
    label: Label | None


@dataclass(slots=True)
class Pending:
    on_ok: OnReply | None
    on_error: OnReply | None
    label: Label | None


class Translator:
    """A connection's IRC side. `client_line` takes a client's line and returns
    request frames for the core; `server_frame` takes a frame from the core and
    queues IRC lines; `take_output` and `take_requests` hand both over."""

    def __init__(self, version: str) -> None:
        self.version = version
        self.out: list[str] = []  # lines for the client, in order
        self.chunks: list[bytes] = []  # lines encoded, before those in `out`
        self.profile: Profile = (False, False, False)  # which tags go on a message
        self.requests: list[bytes] = []  # frames for the core
        self.pending: dict[int, Pending] = {}
        self.ids = itertools.count(1)
        self.label: Label | None = None  # the labeled line being answered
        self.nick = "*"
        self.user_given = False
        self.negotiating = False  # CAP LS/REQ seen, END not yet
        self.cap_version = 301
        self.caps: set[str] = set()
        self.sasl: str | None = None  # the mechanism under way
        self.sasl_data = ""
        self.password: tuple[str, str] | None = None  # from PASS: account, password
        self.account: str | None = None  # the account logged in as
        self.logging_in = False  # a PASS login is on its way
        self.registered = False  # 001 went out
        self.motd = ""
        self.member_rooms: list[str] = []  # from the login reply
        self.unread_dms: dict[str, int] = {}
        self.rooms: dict[str, Reply] = {}  # room name -> its RoomInfo, as last heard
        self.admins: set[str] = set()  # server admins seen online (lower case): operators
        self.channels: dict[str, set[str]] = {}  # joined room -> nicks shown in it
        self.joining: set[str] = set()  # rooms with a join request in flight
        self.sent: deque[Sent] = deque()
        self.batches = itertools.count(1)
        self.closing = False  # the connection is on its way out: register nothing
        self.ended = False  # ERROR went out

    # -- the glue's side --------------------------------------------------------

    def take_output(self) -> bytes:
        self._encode_lines()
        data = b"".join(self.chunks)
        self.chunks.clear()
        return data

    def _encode_lines(self) -> None:
        if self.out:
            self.chunks.append("\r\n".join(self.out).encode() + b"\r\n")
            self.out.clear()

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

    def take_requests(self) -> list[bytes]:
        requests, self.requests = self.requests, []
        return requests

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

    # -- asking the core -------------------------------------------------------

    def _ask(
        self,
        cmd: str,
        on_ok: OnReply | None = None,
        on_error: OnReply | None = None,
        **args: Any,
    ) -> None:
        rid = next(self.ids)
        self.pending[rid] = Pending(on_ok, on_error, self.label)
        if self.label is not None:
            self.label.pending += 1
        self.requests.append(orjson.dumps({"cmd": cmd, "id": rid, **args}))

    def _local(self, *lines: str, then: Callable[[], None] | None = None) -> None:
        """Says `lines` (and runs `then`) once every earlier request is answered."""

        def done(_: Reply) -> None:
            for line in lines:
                self._emit(line)
            if then is not None:
                then()

        self._ask("ping", done, done)

    # -- building lines ----------------------------------------------------------

    def _emit(self, line: str) -> None:
        if self.label is not None:
            self.label.lines.append(line)
        else:
            self.out.append(line)

    def _finish_label(self, label: Label) -> None:
        if not label.lines:
            self.out.append(build(SERVER, "ACK", tags={"label": label.tag}))
        elif len(label.lines) == 1:
            self.out.append(_tagged(label.lines[0], "label", label.tag))
        elif "batch" in self.caps:
            ref = f"L{next(self.batches)}"
            self.out.append(
                build(SERVER, "BATCH", "+" + ref, "labeled-response", tags={"label": label.tag})
            )
            self.out.extend(_tagged(line, "batch", ref) for line in label.lines)
            self.out.append(build(SERVER, "BATCH", "-" + ref))
        else:
            self.out.extend(label.lines)

    def _numeric(self, code: str, *params: str) -> str:
        return build(SERVER, code, self.nick, *params)

    def _mask(self, nick: str) -> str:
        return f"{nick}!{nick}@{HOST}"

    def _tags(
        self, ts: float | None = None, account: str | None = None, mid: str | None = None
    ) -> dict[str, str]:
        caps, tags = self.caps, {}
        if ts is not None and "server-time" in caps:
            tags["time"] = irc_time(ts)
        if mid is not None and "message-tags" in caps:
            tags["msgid"] = mid
        if account is not None and "account-tag" in caps:
            tags["account"] = account
        return tags

    def _notice(self, text: str) -> None:
        self._emit(build(SERVER, "NOTICE", self.nick, text))

    def _failed(self, reply: Reply, target: str | None = None) -> None:
        """A refused request, told as the numeric IRC clients know, else as a notice."""
        err = reply["error"]
        numeric = NUMERICS.get(err["code"])
        if numeric is not None and target is not None:
            self._emit(self._numeric(numeric[0], target, f"{numeric[1]}: {err['message']}"))
        else:
            self._notice(f"{err['message']} ({err['code']})")

    def _error(self, text: str) -> None:
        """Ends the connection with ERROR (the core closes it)."""
        if not self.ended:
            self.ended = self.closing = True
            self.out.append(build(None, "ERROR", f"Closing link: {text}"))

    # -- registration -----------------------------------------------------------

    def _cap(self, line: Line) -> None:
        sub = line.params[0].upper()
        if sub == "LS":
            if not self.registered:
                self.negotiating = True
            if len(line.params) > 1 and line.params[1].isdigit():
                self.cap_version = max(self.cap_version, int(line.params[1]))
            if self.cap_version >= 302:
                self.caps.add("cap-notify")
                offered = [f"{k}={v}" if v else k for k, v in CAPS.items()]
            else:
                offered = list(CAPS)
            self._local(build(SERVER, "CAP", self.nick, "LS", " ".join(offered)))
        elif sub == "LIST":
            self._local(build(SERVER, "CAP", self.nick, "LIST", " ".join(sorted(self.caps))))
        elif sub == "REQ":
            if not self.registered:
                self.negotiating = True
            wanted = line.params[1].split() if len(line.params) > 1 else []
            if wanted and all(name.lstrip("-") in CAPS for name in wanted):
                for name in wanted:
                    if name.startswith("-"):
                        self.caps.discard(name[1:])
                    else:
                        self.caps.add(name)
                caps = self.caps
                self.profile = (
                    "server-time" in caps,
                    "message-tags" in caps,
                    "account-tag" in caps,
                )
                reply = "ACK"
            else:
                reply = "NAK"
            self._local(build(SERVER, "CAP", self.nick, reply, " ".join(wanted)))
        elif sub == "END":
            self._local(then=self._cap_end)
        else:
            self._local(self._numeric("410", sub[:20], "Invalid CAP command"))

    def _cap_end(self) -> None:
        # At reply time, not line time: NICK and USER sent before END must
        # not register the client while its SASL login is still on its way.
        self.negotiating = False
        self._maybe_register()

    def _authenticate(self, line: Line) -> None:
        arg = line.params[0]
        if self.account is not None:
            self._local(self._numeric("907", "You have already authenticated"))
        elif arg == "*":
            self.sasl, self.sasl_data = None, ""
            self._local(self._numeric("906", "SASL authentication aborted"))
        elif self.sasl is None:
            if arg.upper() == "PLAIN":
                self.sasl = "PLAIN"
                self._local(build(None, "AUTHENTICATE", "+"))
            else:
                self._local(
                    self._numeric("908", "PLAIN", "are available SASL mechanisms"),
                    self._numeric("904", "SASL authentication failed"),
                )
        elif arg != "+" and len(arg) == 400 and len(self.sasl_data) < 1600:
            self.sasl_data += arg  # more chunks follow
        else:
            data = self.sasl_data + ("" if arg == "+" else arg)
            self.sasl, self.sasl_data = None, ""
            self._sasl_plain(data)

    def _sasl_plain(self, data: str) -> None:
        failed = self._numeric("904", "SASL authentication failed")
        try:
            _authzid, account, password = base64.b64decode(data, validate=True).split(b"\0")
            credentials = (account.decode(), password.decode())
        except (binascii.Error, ValueError):
            self._local(failed)
            return

        def welcome(reply: Reply) -> None:
            self.logged_in(reply)
            name = self.account or "*"
            self._emit(
                self._numeric("900", self._mask(name), name, f"You are now logged in as {name}")
            )
            self._emit(self._numeric("903", "SASL authentication successful"))

        def refused(reply: Reply) -> None:
            self._emit(
                self._numeric("904", f"SASL authentication failed: {reply['error']['message']}")
            )

        self._ask("login", welcome, refused, username=credentials[0], password=credentials[1])

    def logged_in(self, reply: Reply) -> None:
        self.account = reply["user"]["username"]
        self.member_rooms = list(reply["rooms"])
        self.unread_dms = dict(reply["unread"]["dms"])

    def _pass(self, line: Line) -> None:
        if self.registered:
            self._local(self._numeric("462", "You may not reregister"))
            return
        account, sep, password = line.params[0].partition(":")
        self.password = (
            (account, password)
            if sep and USERNAME_RE.fullmatch(account)
            else (
                "",
                line.params[0],
            )
        )
        self._local()

    def _nick(self, line: Line) -> None:
        nick = line.params[0]
        if self.registered:
            if nick.lower() != self.nick.lower():
                self._local(
                    self._numeric("447", "Cannot change nickname: a nick is its account's name")
                )
            else:
                self._local()
        elif not _NICK_RE.fullmatch(nick):
            self._local(build(SERVER, "432", self.nick, nick[:40], "Erroneous nickname"))
        else:
            self.nick = nick
            self._local(then=self._maybe_register)

    def _user(self, line: Line) -> None:
        if self.registered:
            self._local(self._numeric("462", "You may not reregister"))
            return
        self.user_given = True
        self._local(then=self._maybe_register)

    def _maybe_register(self) -> None:
        """Registers once NICK, USER and the end of CAP are in, logging in with
        PASS first if SASL did not."""
        if (
            self.registered
            or self.negotiating
            or self.closing
            or self.logging_in
            or self.nick == "*"
            or not self.user_given
        ):
            return
        if self.account is not None:
            self._welcome()
        elif self.password is not None:
            account, password = self.password
            self.password = None
            self.logging_in = True

            def welcome(reply: Reply) -> None:
                self.logging_in = False
                self.logged_in(reply)
                self._welcome()

            def refused(reply: Reply) -> None:
                self.logging_in = False
                self._emit(self._numeric("464", f"Password incorrect: {reply['error']['message']}"))
                self._quit_now("bad password")

            self._ask("login", welcome, refused, username=account or self.nick, password=password)
        else:
            self._emit(build(SERVER, "NOTICE", self.nick, _LOGIN_HELP))
            self._emit(self._numeric("464", "Password required: " + _LOGIN_HELP))
            self._quit_now("authentication required")

    def _quit_now(self, why: str) -> None:
        self.closing = True  # nothing more is asked for this connection
        self._ask("quit", lambda _: self._error(why), lambda _: self._error(why))

    def _welcome(self) -> None:
        assert self.account is not None
        self.registered = True
        self.nick = nick = self.account
        for line in (
            self._numeric("001", f"Welcome to the Nexus IRC gateway, {self._mask(nick)}"),
            self._numeric("002", f"Your host is {SERVER}, running version nexus-{self.version}"),
            self._numeric("003", "This server speaks for a Nexus chat server"),
            build(SERVER, "004", nick, SERVER, f"nexus-{self.version}", "i", "ont"),
        ):
            self._emit(line)
        self._isupport()
        self._send_motd()
        self._ask("rooms", self._got_rooms)
        self._ask("online", self._burst)
        for name, count in sorted(self.unread_dms.items()):
            self._ask(
                "dms",
                partial(self._replay_dms, name),
                _ignore,
                limit=min(count, DM_HISTORY_CAP),
                **{"with": name},
            )

    def _isupport(self) -> None:
        tokens = list(ISUPPORT)
        while tokens:
            chunk, tokens = tokens[:12], tokens[12:]
            self._emit(self._numeric("005", *chunk, "are supported by this server"))

    def _send_motd(self) -> None:
        if not self.motd.strip():
            self._emit(self._numeric("422", "MOTD File is missing"))
            return
        self._emit(self._numeric("375", f"- {SERVER} Message of the day -"))
        for piece in split_text(self.motd, 400):
            self._emit(self._numeric("372", f"- {piece}"))
        self._emit(self._numeric("376", "End of /MOTD command."))

    def _got_rooms(self, reply: Reply) -> None:
        for room in reply["rooms"]:
            self.rooms[room["name"]] = room

    def _burst(self, reply: Reply) -> None:
        """After the welcome: the rooms the account is a member of, as joined channels."""
        present = _present(reply["users"], self.admins)
        for room in self.member_rooms:
            self._show_join(room, present.get(room, set()))

    def _show_join(self, room: str, nicks: set[str]) -> None:
        """The client's own JOIN of `room`, its topic and NAMES."""
        self.channels[room] = set(nicks) | {self.nick}
        self._emit(self._join_line(self.nick, room))
        self._show_topic(room)
        self._show_names(room)

    def _join_line(self, nick: str, room: str, ts: float | None = None) -> str:
        source = self._mask(nick)
        tags = self._tags(ts, nick)
        if "extended-join" in self.caps:
            return build(source, "JOIN", "#" + room, nick, nick, tags=tags)
        return build(source, "JOIN", "#" + room, tags=tags)

    def _show_topic(self, room: str) -> None:
        topic = self.rooms.get(room, {}).get("topic", "")
        if topic:
            self._emit(self._numeric("332", "#" + room, topic))
        else:
            self._emit(self._numeric("331", "#" + room, "No topic is set"))

    def _show_names(self, room: str, nicks: set[str] | None = None) -> None:
        """NAMES of `room`: `nicks`, or who the client was shown in it."""
        names = []
        shown_nicks = self.channels.get(room, set()) if nicks is None else nicks
        for nick in sorted(shown_nicks, key=str.lower):
            shown = self._mask(nick) if "userhost-in-names" in self.caps else nick
            names.append(("@" if self._is_op(room, nick) else "") + shown)
        head = f":{SERVER} 353 {self.nick} = #{room} :"
        room_left = LINE_MAX - 2 - len(head.encode())
        line: list[str] = []
        for name in names:
            if line and len(" ".join([*line, name])) > room_left:
                self._emit(self._numeric("353", "=", "#" + room, " ".join(line)))
                line = []
            line.append(name)
        if line:
            self._emit(self._numeric("353", "=", "#" + room, " ".join(line)))
        self._emit(self._numeric("366", "#" + room, "End of /NAMES list."))

    # -- channels -----------------------------------------------------------------

    def _join(self, line: Line) -> None:
        if line.params[0] == "0":
            for joined in list(self.channels):
                self._ask("leave", partial(self._parted, joined, "leaving"), room=joined)
            return
        for target in line.params[0].split(",")[:10]:
            room = _room(target)
            if room is None:
                self._local(self._numeric("403", target[: CHANNELLEN + 8], "No such channel"))
            else:
                self._join_room(room, create=True)

    def _join_room(self, room: str, create: bool) -> None:
        self.joining.add(room)

        def joined(reply: Reply) -> None:
            info = reply["room"]
            self.rooms[room] = info

        def missing(reply: Reply) -> None:
            self.joining.discard(room)
            if reply["error"]["code"] == "no_such_room" and create:
                self._ask(
                    "create",
                    lambda _: self._join_room(room, create=False),
                    lambda r: self._failed(r, "#" + room),
                    room=room,
                )
            else:
                self._failed(reply, "#" + room)

        def names(reply: Reply) -> None:
            if room not in self.joining:
                return  # the join failed
            self.joining.discard(room)
            nicks = _present(reply["users"], self.admins).get(room, set())
            if room in self.channels:
                self.channels[room] = nicks | {self.nick}
                self._show_names(room)
            else:
                self._show_join(room, nicks)

        self._ask("join", joined, missing, room=room)
        self._ask("online", names)

    def _part(self, line: Line) -> None:
        reason = line.params[1] if len(line.params) > 1 else "leaving"
        for target in line.params[0].split(",")[:10]:
            room = _room(target)
            if room is None:
                self._local(self._numeric("403", target[:40], "No such channel"))
                continue
            self._ask(
                "leave",
                partial(self._parted, room, reason),
                partial(self._failed_at, target),
                room=room,
            )

    def _failed_at(self, target: str, reply: Reply) -> None:
        self._failed(reply, target)

    def _parted(self, room: str, reason: str, _: Reply) -> None:
        if self.channels.pop(room, None) is not None:
            self._emit(build(self._mask(self.nick), "PART", "#" + room, reason))

    def _topic(self, line: Line) -> None:
        target = line.params[0]
        room = _room(target)
        if room is None:
            self._local(self._numeric("403", target[:40], "No such channel"))
        elif len(line.params) > 1:
            text = client_text(line.params[1])
            self._ask("topic", None, lambda r: self._failed(r, target), room=room, topic=text)
        else:

            def show(reply: Reply) -> None:
                self._got_rooms(reply)
                if room in self.rooms:
                    self._show_topic(room)
                else:
                    self._emit(self._numeric("403", target, "No such channel"))

            self._ask("rooms", show)

    def _names(self, line: Line) -> None:
        if not line.params:
            self._local(self._numeric("366", "*", "End of /NAMES list."))
            return
        room = _room(line.params[0].split(",")[0])
        if room is None:
            self._local(self._numeric("366", line.params[0][:40], "End of /NAMES list."))
            return

        def show(reply: Reply) -> None:
            nicks = _present(reply["users"], self.admins).get(room, set())
            if room in self.channels:
                self.channels[room] = nicks | {self.nick}
            self._show_names(room, nicks)

        self._ask("online", show)

    def _list(self, line: Line) -> None:
        wanted = {r for t in line.params[0].split(",") if (r := _room(t))} if line.params else None

        def show(reply: Reply) -> None:
            self._got_rooms(reply)
            self._emit(self._numeric("321", "Channel", "Users  Name"))
            for room in reply["rooms"]:
                if wanted is None or room["name"] in wanted:
                    self._emit(
                        self._numeric(
                            "322", "#" + room["name"], str(room["online"]), f"[+nt] {room['topic']}"
                        )
                    )
            self._emit(self._numeric("323", "End of /LIST"))

        self._ask("rooms", show)

    def _who(self, line: Line) -> None:
        mask = line.params[0]
        room = _room(mask)

        def row(profile: Reply, channel: str) -> str:
            nick = profile["username"]
            flags = ("G" if profile.get("away") else "H") + (
                "@" if room and self._is_op(room, nick) else ""
            )
            return self._numeric(
                "352", channel, nick, HOST, SERVER, nick, flags, f"0 {profile['bio'] or nick}"
            )

        def by_room(reply: Reply) -> None:
            for profile in reply["users"]:
                if room in profile["rooms"]:
                    self._emit(row(profile, "#" + str(room)))
            self._emit(self._numeric("315", mask, "End of /WHO list."))

        def by_nick(reply: Reply) -> None:
            profile = reply["user"]
            if profile["online"]:
                self._emit(row(profile, "*"))
            self._emit(self._numeric("315", mask, "End of /WHO list."))

        if room is not None:
            self._ask("online", by_room)
        elif USERNAME_RE.fullmatch(mask):
            self._ask(
                "whois",
                by_nick,
                lambda _: self._emit(self._numeric("315", mask, "End of /WHO list.")),
                username=mask,
            )
        else:
            self._local(self._numeric("315", mask[:40], "End of /WHO list."))

    def _is_op(self, room: str, nick: str) -> bool:
        """Whether `nick` is shown as a channel operator of `room`: its owner,
        one of its moderators, or a server admin."""
        info = self.rooms.get(room, {})
        lower = nick.lower()
        owner = info.get("owner")
        return (
            (owner is not None and owner.lower() == lower)
            or lower in (m.lower() for m in info.get("moderators", ()))
            or lower in self.admins
        )

    def _whois(self, line: Line) -> None:
        name = line.params[-1].split(",")[0]
        if not USERNAME_RE.fullmatch(name):
            self._local(
                self._numeric("401", name[:40], "No such nick/channel"),
                self._numeric("318", name[:40], "End of /WHOIS list."),
            )
            return

        def show(reply: Reply) -> None:
            p = reply["user"]
            nick = p["username"]
            self._emit(self._numeric("311", nick, nick, HOST, "*", p["bio"] or nick))
            if p["rooms"]:
                rooms = " ".join(
                    ("@" if self._is_op(r, nick) else "") + "#" + r for r in p["rooms"]
                )
                self._emit(self._numeric("319", nick, rooms))
            self._emit(self._numeric("312", nick, SERVER, "Nexus"))
            if p["bio"]:
                self._emit(self._numeric("320", nick, f"bio: {p['bio']}"))
            if p.get("away"):
                self._emit(self._numeric("301", nick, p["away"]))
            if not p["online"] and p["last_seen"]:
                seen = irc_time(p["last_seen"])
                self._emit(self._numeric("320", nick, f"is offline, last seen {seen}; DMs wait"))
            self._emit(self._numeric("330", nick, nick, "is logged in as"))
            self._emit(self._numeric("318", nick, "End of /WHOIS list."))

        def missing(reply: Reply) -> None:
            self._emit(self._numeric("401", name, "No such nick/channel"))
            self._emit(self._numeric("318", name, "End of /WHOIS list."))

        self._ask("whois", show, missing, username=name)

    def _mode(self, line: Line) -> None:
        target = line.params[0]
        room = _room(target)
        if room is None:
            if target.lower() == self.nick.lower():
                self._local(self._numeric("221", "+"))
            else:
                self._local(self._numeric("502", "Can't change mode for other users"))
            return
        if len(line.params) == 1:

            def show(reply: Reply) -> None:
                self._got_rooms(reply)
                if room in self.rooms:
                    self._emit(self._numeric("324", target, "+nt"))
                else:
                    self._emit(self._numeric("403", target, "No such channel"))

            self._ask("rooms", show)
        elif line.params[1].lstrip("+") in ("b", "e", "I"):
            end = {"b": ("368", "ban"), "e": ("349", "exception"), "I": ("347", "invite")}
            code, kind = end[line.params[1].lstrip("+")]
            self._local(self._numeric(code, target, f"End of channel {kind} list"))
        else:
            self._local(
                self._numeric("472", line.params[1][:20], "is not a mode this server changes")
            )

    def _away(self, line: Line) -> None:
        text = client_text(line.params[0]) if line.params else ""

        def done(_: Reply) -> None:
            if text:
                self._emit(self._numeric("306", "You have been marked as being away"))
            else:
                self._emit(self._numeric("305", "You are no longer marked as being away"))

        self._ask("away", done, text=text[:TOPICLEN])

    # -- messages ------------------------------------------------------------------

    def _privmsg(self, line: Line, notice: bool = False) -> None:
        if len(line.params) < 2 or not line.params[1]:
            if not notice:
                self._local(self._numeric("412", "No text to send"))
            return
        text, action = line.params[1], False
        if text.startswith("\x01"):
            body = text.strip("\x01")
            if not body.upper().startswith("ACTION"):
                return  # CTCP queries (VERSION, PING...) are not messages
            text, action = body[6:].lstrip(" "), True
        text = client_text(text)
        for target in line.params[0].split(",")[:4]:
            self._send_to(target, text, action, line.tags.get("+draft/reply"), notice)

    def _send_to(
        self, target: str, text: str, action: bool, reply_to: str | None, quiet: bool
    ) -> None:
        fields: dict[str, Any] = {"text": text}
        if action:
            fields["action"] = True
        seq = seq_of(reply_to)
        if seq is not None:
            fields["reply_to"] = seq
        sent = Sent(target.lower(), text, self.label)
        self.sent.append(sent)

        def failed(reply: Reply) -> None:
            if sent in self.sent:
                self.sent.remove(sent)
            if quiet:
                return
            code = reply["error"]["code"]
            if target.startswith("#") and code in ("not_member", "rate_limited", "too_long"):
                why = f"Cannot send to channel: {reply['error']['message']}"
                self._emit(self._numeric("404", target, why))
            else:
                self._failed(reply, target)

        def done(_: Reply) -> None:
            if sent in self.sent:  # the message never came back (not a member any more?)
                self.sent.remove(sent)

        room = _room(target)
        if target.startswith("#"):
            if room is None:
                self.sent.remove(sent)
                self._local(self._numeric("403", target[:40], "No such channel"))
                return
            self._ask("say", done, failed, room=room, **fields)
        elif USERNAME_RE.fullmatch(target):
            self._ask("dm", done, failed, to=target, **fields)
        else:
            self.sent.remove(sent)
            self._local(self._numeric("401", target[:40], "No such nick/channel"))

    def _notice_cmd(self, line: Line) -> None:
        self._privmsg(line, notice=True)

    def _tagmsg(self, line: Line) -> None:
        """A reaction (`+draft/react` or `+draft/unreact` with `+draft/reply`)."""
        emoji = line.tags.get("+draft/react") or line.tags.get("+draft/unreact")
        seq = seq_of(line.tags.get("+draft/reply"))
        if not emoji or seq is None:
            self._local()
            return
        on = "+draft/react" in line.tags
        self._ask(
            "react",
            None,
            lambda r: self._failed(r),
            seq=seq,
            emoji=emoji,
            on=on,
            **self._address(line.params[0]),
        )

    def _redact(self, line: Line) -> None:
        seq = seq_of(line.params[1])
        if seq is None:
            self._local(
                build(
                    SERVER,
                    "FAIL",
                    "REDACT",
                    "UNKNOWN_MSGID",
                    line.params[1][:80],
                    "No such message",
                )
            )
            return

        def refused(reply: Reply) -> None:
            code = (
                "REDACT_FORBIDDEN" if reply["error"]["code"] == "not_allowed" else "UNKNOWN_MSGID"
            )
            self._emit(
                build(
                    SERVER,
                    "FAIL",
                    "REDACT",
                    code,
                    line.params[0],
                    line.params[1],
                    reply["error"]["message"],
                )
            )

        self._ask("erase", None, refused, seq=seq, **self._address(line.params[0]))

    def _address(self, target: str) -> dict[str, str]:
        room = _room(target)
        return {"room": room} if room is not None else {"with": target}

    # -- history ---------------------------------------------------------------------

    def _chathistory(self, line: Line) -> None:
        sub, target = line.params[0].upper(), line.params[1]
        if sub == "TARGETS":
            ref = f"T{next(self.batches)}"
            self._local(
                build(SERVER, "BATCH", "+" + ref, "draft/chathistory-targets"),
                build(SERVER, "BATCH", "-" + ref),
            )
            return
        args = line.params[2:]
        try:
            limit = min(int(args[-1]), HISTORY_MAX)
        except (ValueError, IndexError):
            limit = -1
        refs = args[:-1]
        if (
            sub not in ("LATEST", "BEFORE", "AFTER", "AROUND", "BETWEEN")
            or limit < 0
            or len(refs) != (2 if sub == "BETWEEN" else 1)
        ):
            self._local(
                build(
                    SERVER, "FAIL", "CHATHISTORY", "INVALID_PARAMS", sub[:20], "Invalid parameters"
                )
            )
            return
        room = _room(target)

        def answer(reply: Reply) -> None:
            messages = [m for m in reply["messages"] if not m.get("erased")]
            chosen = history_window(sub, refs, limit, messages)
            self._replay(chosen, None if room is not None else target, batch_target=target)

        def refused(reply: Reply) -> None:
            self._emit(
                build(
                    SERVER,
                    "FAIL",
                    "CHATHISTORY",
                    "INVALID_TARGET",
                    sub,
                    target,
                    reply["error"]["message"],
                )
            )

        if room is not None:
            self._ask("history", answer, refused, room=room, limit=HISTORY_MAX)
        elif USERNAME_RE.fullmatch(target):
            self._ask("dms", answer, refused, limit=DM_HISTORY_CAP, **{"with": target})
        else:
            self._local(
                build(
                    SERVER,
                    "FAIL",
                    "CHATHISTORY",
                    "INVALID_TARGET",
                    sub,
                    target[:40],
                    "No such target",
                )
            )

    def _replay_dms(self, partner: str, reply: Reply) -> None:
        self._replay(reply["messages"], partner)

    def _replay(
        self, messages: list[Reply], partner: str | None, batch_target: str | None = None
    ) -> None:
        """Messages from history as the lines they were, inside a chathistory
        batch where the client has `batch`."""
        batch = None
        if "batch" in self.caps and batch_target is not None:
            batch = f"H{next(self.batches)}"
            self._emit(build(SERVER, "BATCH", "+" + batch, "chathistory", batch_target))
        for message in messages:
            for line in self._message_lines(message, own_echo=True):
                self._emit(_tagged(line, "batch", batch) if batch else line)
        if batch:
            self._emit(build(SERVER, "BATCH", "-" + batch))

    # -- simple commands -----------------------------------------------------------------

    def _ping(self, line: Line) -> None:
        self._local(build(SERVER, "PONG", SERVER, line.params[0] if line.params else SERVER))

    def _pong(self, line: Line) -> None:
        self._local()

    def _quit(self, line: Line) -> None:
        reason = line.params[0] if line.params else "Client quit"
        self._ask("quit", lambda _: self._error(f"Quit: {reason}"[:200]))

    def _motd_cmd(self, line: Line) -> None:
        self._local(then=self._send_motd)

    def _version(self, line: Line) -> None:
        self._local(
            self._numeric("351", f"nexus-{self.version}", SERVER, "IRC gateway"),
            then=self._isupport,
        )

    def _ison(self, line: Line) -> None:
        asked = " ".join(line.params).split()

        def show(reply: Reply) -> None:
            online = {p["username"].lower(): p["username"] for p in reply["users"]}
            found = [online[n.lower()] for n in asked if n.lower() in online]
            self._emit(self._numeric("303", " ".join(found)))

        self._ask("online", show)

    def _userhost(self, line: Line) -> None:
        replies = [f"{n}=+{n}@{HOST}" for n in line.params[:5] if USERNAME_RE.fullmatch(n)]
        self._local(self._numeric("302", " ".join(replies)))

    def _unsupported(self, line: Line) -> None:
        self._local(self._numeric("481", f"{line.command} is not supported by this server"))

    # -- events from the server ------------------------------------------------------------

    def _on_hello(self, event: Reply) -> None:
        self.motd = event["motd"]

    def _message_lines(self, m: Reply, own_echo: bool = False) -> list[str]:
        """A room message or DM as PRIVMSG lines, split to fit."""
        author = m["from"]
        if "room" in m:
            target, scope = "#" + m["room"], m["room"]
        else:
            scope = pair(m["from"], m["to"])
            target = m["to"] if author.lower() == self.nick.lower() else self.nick
        tags = self._tags(m["ts"], author, msgid(scope, m["seq"]))
        if "reply_to" in m and "message-tags" in self.caps:
            tags["+draft/reply"] = msgid(scope, m["reply_to"])
        source = self._mask(author)
        head = len(f":{source} PRIVMSG {target} :".encode()) + 2
        room_left = LINE_MAX - head - (9 if m.get("action") else 0)
        lines = []
        for piece in split_text(m["text"], room_left):
            text = f"\x01ACTION {piece}\x01" if m.get("action") else piece
            lines.append(build(source, "PRIVMSG", target, text, tags=tags))
        return lines

    def _own(self, target: str, text: str) -> Sent | None:
        """The message this connection sent that `target`/`text` is coming back as."""
        for sent in self.sent:
            if sent.target == target and sent.text == text:
                self.sent.remove(sent)
                return sent
        return None

    def _deliver(self, m: Reply) -> None:
        if m["from"].lower() == self.nick.lower():
            target = "#" + m["room"] if "room" in m else m["to"].lower()
            sent = self._own(target, m["text"])
            if sent is not None:
                if "echo-message" not in self.caps:
                    return
                outer, self.label = self.label, sent.label
                for line in self._message_lines(m):
                    self._emit(line)
                self.label = outer
                return
        for line in self._message_lines(m):
            self.out.append(line)

    def _on_message(self, event: Reply) -> None:
        if event["room"] in self.channels or event["from"].lower() == self.nick.lower():
            self._deliver(event)

    def _on_dm(self, event: Reply) -> None:
        self._deliver(event)

    def _on_joined(self, event: Reply) -> None:
        room, nick = event["room"], event["user"]
        if nick.lower() == self.nick.lower():
            if room not in self.channels and room not in self.joining:
                self._join_room(room, create=False)  # joined from another connection
            return
        if room in self.channels and nick not in self.channels[room]:
            self.channels[room].add(nick)
            self.out.append(self._join_line(nick, room))

    def _on_left(self, event: Reply) -> None:
        room, nick = event["room"], event["user"]
        if nick.lower() == self.nick.lower():
            if self.channels.pop(room, None) is not None:
                self.out.append(build(self._mask(self.nick), "PART", "#" + room, "left"))
        elif room in self.channels and nick in self.channels[room]:
            self.channels[room].discard(nick)
            self.out.append(
                build(self._mask(nick), "PART", "#" + room, "left", tags=self._tags(account=nick))
            )

    def _on_topic(self, event: Reply) -> None:
        room = event["room"]
        if room in self.rooms:
            self.rooms[room] = {**self.rooms[room], "topic": event["topic"]}
        if room in self.channels:
            self.out.append(build(self._mask(event["by"]), "TOPIC", "#" + room, event["topic"]))

    def _on_presence(self, event: Reply) -> None:
        nick = event["user"]
        if nick.lower() == self.nick.lower():
            return
        shown = [room for room, nicks in self.channels.items() if nick in nicks]
        if not event["online"]:
            for room in shown:
                self.channels[room].discard(nick)
            if shown:
                self.out.append(build(self._mask(nick), "QUIT", "Offline"))
        elif shown:
            if "away-notify" in self.caps:
                away = event.get("away")
                params = (away,) if away else ()
                self.out.append(
                    build(self._mask(nick), "AWAY", *params, tags=self._tags(account=nick))
                )
        else:
            self._ask("whois", self._came_online, _ignore, username=nick)

    def _came_online(self, reply: Reply) -> None:
        profile = reply["user"]
        nick = profile["username"]
        if not profile["online"]:
            return
        for room in profile["rooms"]:
            if room in self.channels and nick not in self.channels[room]:
                self.channels[room].add(nick)
                self._emit(self._join_line(nick, room))
                if profile.get("away") and "away-notify" in self.caps:
                    self._emit(build(self._mask(nick), "AWAY", profile["away"]))

    def _on_room_deleted(self, event: Reply) -> None:
        room = event["room"]
        self.rooms.pop(room, None)
        if self.channels.pop(room, None) is not None:
            self.out.append(
                build(self._mask(self.nick), "PART", "#" + room, f"deleted by {event['by']}")
            )

    def _where(self, m: Reply) -> tuple[str, str] | None:
        """Where lines about message `m` go: (target, msgid scope); None if the
        client does not see that room."""
        if "room" in m:
            if m["room"] not in self.channels:
                return None
            return "#" + m["room"], m["room"]
        other = m["to"] if m["from"].lower() == self.nick.lower() else m["from"]
        return other, pair(m["from"], m["to"])

    def _on_edited(self, event: Reply) -> None:
        m = event["message"]
        where = self._where(m)
        if where is None:
            return
        target = where[0] if "room" in m or m["from"].lower() != self.nick.lower() else m["to"]
        if "room" not in m and m["from"].lower() != self.nick.lower():
            target = self.nick
        tags = self._tags(m.get("edited"), m["from"])
        if "message-tags" in self.caps:
            tags["+draft/reply"] = msgid(where[1], m["seq"])
        for piece in split_text("(edited) " + m["text"], 400):
            self.out.append(build(self._mask(m["from"]), "NOTICE", target, piece, tags=tags))

    def _on_erased(self, event: Reply) -> None:
        m = event["message"]
        where = self._where(m)
        if where is None:
            return
        mid = msgid(where[1], m["seq"])
        if "draft/message-redaction" in self.caps:
            target = (
                where[0]
                if "room" in m
                else (m["to"] if m["from"].lower() == self.nick.lower() else self.nick)
            )
            self.out.append(build(self._mask(m["from"]), "REDACT", target, mid))
        else:
            target = where[0] if "room" in m else self.nick
            self.out.append(
                build(SERVER, "NOTICE", target, f"a message from {m['from']} was erased")
            )

    def _on_reaction(self, event: Reply) -> None:
        m = event["message"]
        where = self._where(m)
        if where is None:
            return
        who = event["user"]
        if "room" in m:
            target = where[0]
        else:
            target = self.nick if who.lower() != self.nick.lower() else where[0]
        if "message-tags" in self.caps:
            tags = self._tags(None, who)
            tags["+draft/react" if event["on"] else "+draft/unreact"] = event["emoji"]
            tags["+draft/reply"] = msgid(where[1], m["seq"])
            self.out.append(build(self._mask(who), "TAGMSG", target, tags=tags))
            return
        quoted = m["text"] if len(m["text"]) <= 60 else m["text"][:57] + "..."
        verb = "reacted" if event["on"] else "took back"
        text = f"{verb} {event['emoji']} to {m['from']}: {quoted}"
        self.out.append(build(self._mask(who), "NOTICE", target, text))


def _ignore(_: Reply) -> None:
    """For a request whose refusal needs no words (the client did not ask it)."""


def _tagged(line: str, key: str, value: str) -> str:
    """`line` with one more tag."""
    if line.startswith("@"):
        return f"@{key}={value};{line[1:]}"
    return f"@{key}={value} {line}"


def _room(target: str) -> str | None:
    """'#General' -> 'general'; None if it cannot name a room."""
    if not target.startswith("#"):
        return None
    name = target[1:].lower()
    return name if ROOM_RE.fullmatch(name) else None


def _present(users: list[Reply], admins: set[str] | None = None) -> dict[str, set[str]]:
    """Online users' names by room (and the admins among them added to `admins`)."""
    rooms: dict[str, set[str]] = {}
    for profile in users:
        if admins is not None and profile.get("admin"):
            admins.add(profile["username"].lower())
        for room in profile["rooms"]:
            rooms.setdefault(room, set()).add(profile["username"])
    return rooms


_COMMANDS: dict[str, tuple[Callable[[Translator, Line], None], int]] = {
    "AUTHENTICATE": (Translator._authenticate, 1),
    "AWAY": (Translator._away, 0),
    "CAP": (Translator._cap, 1),
    "CHATHISTORY": (Translator._chathistory, 2),
    "INVITE": (Translator._unsupported, 2),
    "ISON": (Translator._ison, 1),
    "JOIN": (Translator._join, 1),
    "KICK": (Translator._unsupported, 2),
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
    "WHO": (Translator._who, 1),
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
    "reaction": Translator._on_reaction,
    "room_deleted": Translator._on_room_deleted,
    "topic": Translator._on_topic,
}
