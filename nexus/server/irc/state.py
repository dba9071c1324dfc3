"""What an IRC connection keeps, and how it asks and answers: the state its handlers act on.

The state is the IRC view of the session only (nick, capabilities, the
channels and nicks shown, each room's RoomInfo as last heard) and the
requests in flight with what to say when each is answered. Lines go out in
order: an answer waits for its request's reply (`ask`, `local`), and a
labeled command's lines are collected until its last reply (responses.py).
"""

from __future__ import annotations

import datetime
import itertools
import re
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar
from urllib.parse import quote

from nexus.protocol import DM_HISTORY_CAP, ROOM_RE
from nexus.server.core import Request
from nexus.server.irc.directory import Directory, Registration, user_part
from nexus.server.irc.formatting import to_irc
from nexus.server.irc.history import Page, Walk, irc_time, msgid, pair
from nexus.server.irc.lines import LINE_MAX, build, split_text, strip_formatting
from nexus.server.irc.numerics import (
    HOST,
    NUMERICS,
    SERVER,
)
from nexus.server.irc.responses import Label, Responses

_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


Reply = Mapping[str, Any]  # a frame from the core: shared, never changed
Reaction = tuple[str, int, str, bool]  # a reaction asked: scope, seq, emoji, on
Profile = tuple[bool, bool, bool]  # server-time, message-tags, account-tag acknowledged


OnReply = Callable[[Reply], None]


T = TypeVar("T")


def client_text(text: str) -> str:
    """A client's message text as Nexus keeps it: no formatting or control codes."""
    if text.isprintable():  # formatting codes are control characters: none here
        return text
    return _CONTROL_RE.sub("", strip_formatting(text))


@dataclass(slots=True, eq=False)  # each one is a message of its own: found by identity
class Sent:
    """A message this connection said and has not seen come back yet (echo-message)."""

    target: str  # '#room' or the recipient's nick, lower case
    text: str
    label: Label | None


@dataclass(slots=True)
class DmLog:
    """What this connection knows of one DM conversation (docs in markers.py)."""

    partner: str  # their name as spelt
    times: dict[int, float] = field(default_factory=dict)  # seq -> ts of the DMs shown
    read: int | None = None  # the account's marker, once known


@dataclass(slots=True)
class Sight:
    """Whether the account may see a room this client does not show, once the
    server has answered (see IrcState.sight)."""

    hidden: bool = False  # a private room it is not in, or no room at all


@dataclass(slots=True)
class Pending:
    on_ok: OnReply | None
    on_error: OnReply | None
    label: Label | None


class IrcState:
    """A connection's IRC view, its requests in flight and its output."""

    def __init__(
        self,
        version: str,
        server: str = SERVER,
        directory: Directory | None = None,
        history_lines: int = 0,
    ) -> None:
        self.version = version
        self.server = server  # the server's name in its lines (--irc-server-name)
        self.directory = Directory() if directory is None else directory  # the server's
        self.history_lines = history_lines  # lines of a channel's history shown on JOIN
        self.profile: Profile = (False, False, False)  # which tags go on a message
        self.requests: list[Request] = []  # for the core, in order
        self.pending: dict[int, Pending] = {}
        self.ids = itertools.count(1)
        self.nick = "*"
        self.user_given = False
        self.username = ""  # from USER: `~` and what it sent
        self.realname = ""
        self.registration: Registration | None = None  # in the server's directory, once welcomed
        self.negotiating = False  # CAP LS/REQ seen, END not yet
        self.cap_version = 301
        self.caps: set[str] = set()
        self.responses = Responses(server, self.caps)  # what it says, in order
        self.sasl: str | None = None  # the mechanism under way
        self.sasl_data = ""
        self.password: tuple[str, str] | None = None  # from PASS: account, password
        self.account: str | None = None  # the account logged in as
        self.guest = False  # logged in as a guest (--irc-guests): no account
        self.guests = False  # it may log in as a guest (--irc-guests)
        self.logging_in = False  # a PASS login is on its way
        self.registered = False  # 001 went out
        self.motd = ""
        self.files_url: str | None = None  # where files are uploaded, when they can be
        self.member_rooms: list[str] = []  # from the login reply
        self.unread_dms: dict[str, int] = {}
        self.invitations: list[Reply] = []  # private rooms invited to while away (login reply)
        self.rooms: dict[str, Reply] = {}  # room name -> its RoomInfo, as last heard
        self.admins: set[str] = set()  # server admins seen (lower case): operators everywhere
        self.channels: dict[str, set[str]] = {}  # joined room -> members shown in it
        self.people: dict[str, dict[str, Any]] = {}  # lower-case name -> their Profile, as heard
        self.people_kept = 64  # how many `people` may hold before those not shown go
        self.dm_logs: dict[str, DmLog] = {}  # lower-case partner -> their conversation
        # Rooms with a join request in flight -> the room's events heard before
        # its JOIN is told, which follow it (None: a channel shown already).
        self.joining: dict[str, list[Reply] | None] = {}
        self.leaving: dict[str, int] = {}  # rooms -> leave requests in flight
        self.sent: deque[Sent] = deque()
        self.reacting: deque[tuple[Reaction, Label | None]] = deque()  # reactions not echoed yet
        self.closing = False  # the connection is on its way out: register nothing
        self.ended = False  # ERROR went out

    def closed(self) -> None:
        """The connection is gone: its registration goes from the directory."""
        if self.registration is not None:
            self.directory.unregister(self.registration)
            self.registration = None

    def take_output(self) -> bytes:
        return self.responses.take()

    def take_requests(self) -> list[Request]:
        requests, self.requests = self.requests, []
        return requests

    def ask(
        self,
        cmd: str,
        on_ok: OnReply | None = None,
        on_error: OnReply | None = None,
        **args: Any,
    ) -> None:
        rid = next(self.ids)
        self.pending[rid] = Pending(on_ok, on_error, self.responses.label)
        if self.responses.label is not None:
            self.responses.label.pending += 1
        self.requests.append({"cmd": cmd, "id": rid, **args})

    def walk(
        self, walk: Walk[T], done: Callable[[T], None], refused: OnReply, **where: Any
    ) -> None:
        """Runs a history walk (history.py) over the room or DM conversation
        `where` names (`room=` or `with=`): each page it wants is one `history`
        or `dms` request, asked once the one before is answered; `done` gets
        what it found, `refused` the server's refusal if there is one."""
        cmd = "history" if "room" in where else "dms"

        def ask(page: Page) -> None:
            limit, before = page
            at = {"limit": limit} if before is None else {"limit": limit, "before": before}
            self.ask(cmd, step, refused, **where, **at)

        def step(reply: Reply) -> None:
            try:
                page = walk.send((reply["messages"], reply["more"]))
            except StopIteration as stop:
                done(stop.value)
            else:
                ask(page)

        try:
            first = next(walk)
        except StopIteration as stop:  # it needs no page
            found: T = stop.value
            self.local(then=lambda: done(found))
        else:
            ask(first)

    def local(self, *lines: str, then: Callable[[], None] | None = None) -> None:
        """Says `lines` (and runs `then`) once every earlier request is answered."""

        def done(_: Reply) -> None:
            for line in lines:
                self.responses.emit(line)
            if then is not None:
                then()

        self.ask("ping", done, done)

    def unreact(self, reaction: Reaction) -> tuple[Reaction, Label | None] | None:
        """A reaction this connection asked for has come back (or was refused,
        or answered without coming back): it and its label, if it was waiting."""
        for i, waiting in enumerate(self.reacting):
            if waiting[0] == reaction:
                del self.reacting[i]
                return waiting
        return None

    def numeric(self, code: str, *params: str) -> str:
        return build(self.server, code, self.nick, *params)

    def mask(self, nick: str) -> str:
        username = self.directory.usernames.get(nick.lower())
        return f"{nick}!{username or user_part(nick)}@{HOST}"

    def realname_of(self, nick: str) -> str:
        """`nick`'s real name as IRC shows it: their Nexus bio, else what their
        IRC client said at registration, else the nick."""
        profile = self.people.get(nick.lower())
        if profile is not None and profile.get("bio"):
            return str(profile["bio"])
        entry = self.directory.registration(nick)
        return entry.realname if entry is not None and entry.realname else nick

    def tags(
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

    def notice(self, text: str) -> None:
        self.responses.emit(build(self.server, "NOTICE", self.nick, text))

    def failed(self, reply: Reply, target: str | None = None) -> None:
        """A refused request, told as the numeric IRC clients know, else as a notice."""
        err = reply["error"]
        numeric = NUMERICS.get(err["code"])
        if numeric is not None and target is not None:
            self.responses.emit(self.numeric(numeric[0], target, f"{numeric[1]}: {err['message']}"))
        else:
            self.notice(f"{err['message']} ({err['code']})")

    def error(self, text: str) -> None:
        """Ends the connection with ERROR (the core closes it), after the
        answers collected so far: nothing more will come for them."""
        if not self.ended:
            self.ended = self.closing = True
            self.responses.tell_all()
            self.responses.lines.append(build(None, "ERROR", f"Closing link: {text}"))

    def is_op(self, room: str, nick: str) -> bool:
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

    def got_rooms(self, reply: Reply) -> None:
        """A `rooms` reply lists every room the account may see: one it does
        not list (a private room it was taken out of) is forgotten."""
        self.rooms = {room["name"]: room for room in reply["rooms"]}

    def forget(self, room: str) -> bool:
        """The account is no longer in `room` (it left, was kicked or banned,
        the room was deleted): the channel and its RoomInfo go, as only a
        member is told of its changes; True if the channel was shown."""
        self.rooms.pop(room, None)
        return self.channels.pop(room, None) is not None

    def with_room(self, room: str, then: Callable[[Reply | None], None]) -> None:
        """Calls `then` with `room`'s RoomInfo once every earlier request is
        answered, None if the account may not see it (a private room it is not
        in, or no room by that name). A channel shown is kept current by the
        server's events, so it is answered as shown. Any other is looked up in
        the list of rooms, as a native client would, once a one-message read
        (the cheapest question a missing or private room refuses) says there
        is one to find: the list costs what every room does."""

        def listed(reply: Reply) -> None:
            self.got_rooms(reply)
            then(self.rooms.get(room))

        def shown() -> None:
            if room in self.channels and room in self.rooms:
                then(self.rooms[room])
            else:  # taken out of it since
                self.ask("history", look_up, hidden, room=room, limit=1)

        def look_up(_: Reply) -> None:
            self.ask("rooms", listed)

        def hidden(_: Reply) -> None:
            self.rooms.pop(room, None)
            then(None)

        if room in self.channels:
            self.local(then=shown)
        else:
            self.ask("history", look_up, hidden, room=room, limit=1)

    def sight(self, room: str) -> Sight | None:
        """For a command about a room this client does not show: asks whether
        the account may see it at all (one message of its history, the least a
        private room refuses an outsider), asked before the command so it is
        known when the command's answer comes. None for a channel shown."""
        if room in self.channels:
            return None
        sight = Sight()

        def hidden(_: Reply) -> None:
            sight.hidden = True

        self.ask("history", None, hidden, room=room, limit=1)
        return sight

    def room_refused(
        self, target: str, sight: Sight | None, reply: Reply, told: OnReply | None = None
    ) -> None:
        """A refused command about the channel `target`: about a room the
        account may not see (a private room it is not in) exactly as about one
        that does not exist (403), else as `told` says (the usual numeric)."""
        if reply["error"]["code"] == "no_such_room" or (sight is not None and sight.hidden):
            self.responses.emit(self.numeric("403", target, "No such channel"))
        elif told is not None:
            told(reply)
        else:
            self.failed(reply, target)

    def account_of(self, nick: str) -> str | None:
        """The account `nick` is logged in to, as account-tag and extended-join
        tell it: none for a guest."""
        key = nick.lower()
        if key == self.nick.lower():
            return None if self.guest else self.account
        return None if self.people.get(key, {}).get("guest") else nick

    def join_line(self, nick: str, room: str, ts: float | None = None) -> str:
        source = self.mask(nick)
        account = self.account_of(nick)
        tags = self.tags(ts, account)
        if "extended-join" in self.caps:
            realname = self.realname_of(nick)
            return build(source, "JOIN", "#" + room, account or "*", realname, tags=tags)
        return build(source, "JOIN", "#" + room, tags=tags)

    def show_topic(self, room: str, asked: bool = False) -> None:
        """The topic (332, and 333 where it is known who set it): on JOIN only
        when there is one, to TOPIC 331 when there is none."""
        topic = self.rooms.get(room, {}).get("topic", "")
        if topic:
            self.responses.emit(self.numeric("332", "#" + room, topic))
            setter = self.directory.topic_setter(room, topic)
            if setter is not None:
                by, ts = setter
                self.responses.emit(self.numeric("333", "#" + room, self.mask(by), str(int(ts))))
        elif asked:
            self.responses.emit(self.numeric("331", "#" + room, "No topic is set"))

    def part_line(self, nick: str, room: str, reason: str | None) -> str:
        params = ("#" + room, reason) if reason else ("#" + room,)
        return build(
            self.mask(nick), "PART", *params, tags=self.tags(account=self.account_of(nick))
        )

    def replays(self) -> bool:
        """Whether a channel's latest lines are shown on JOIN: to a client that
        does not fetch history itself, as Ergo does."""
        return self.history_lines > 0 and not self.caps & _FETCHES_HISTORY

    def show_said(self, room: str, messages: list[Reply]) -> None:
        """After a JOIN: the channel's latest `history_lines` lines, with their
        times (server-time, else in front of their text), in a chathistory
        batch where the client has `batch`."""
        if not self.replays():
            return
        shown = [m for m in messages if not m.get("erased")][-self.history_lines :]
        lines: list[str] = []
        for message in shown:
            lines += self.message_lines(message, live=False, stamp=True)
        if lines:
            self.responses.batched(lines, "chathistory", "#" + room)

    def server_event(self, obj: Reply) -> None:
        """One frame's body from the core: the translator's."""
        raise NotImplementedError

    def held(self, obj: Reply) -> bool:
        """Holds `obj` if it is about a room whose JOIN is not told yet: a
        message said between the join and its NAMES comes after the JOIN."""
        room = obj.get("room")
        waiting = None if room is None else self.joining.get(room)
        if waiting is None:
            return False
        waiting.append(obj)
        return True

    def release(self, room: str, said: list[Reply]) -> None:
        """Once the JOIN of `room` is told, what the room heard meanwhile, but
        for the messages the JOIN showed already (`said`)."""
        label = self.responses.label
        if label is not None and not label.told:
            label.then.append(partial(self.release, room, said))
            return
        shown = {m["seq"] for m in said}
        self.responses.label = None  # events: no line's answer
        try:
            for obj in self.joining.pop(room, None) or ():
                if obj.get("event") != "message" or obj["seq"] not in shown:
                    self.server_event(obj)
        finally:
            self.responses.label = label

    def show_names(self, room: str, nicks: set[str] | None = None) -> None:
        """NAMES of `room`: `nicks`, or who the client was shown in it."""
        names = []
        shown_nicks = self.channels.get(room, set()) if nicks is None else nicks
        for nick in sorted(shown_nicks, key=str.lower):
            shown = self.mask(nick) if "userhost-in-names" in self.caps else nick
            names.append(("@" if self.is_op(room, nick) else "") + shown)
        symbol = "@" if self.rooms.get(room, {}).get("private") else "="  # secret: unlisted
        head = f":{self.server} 353 {self.nick} {symbol} #{room} :"
        room_left = LINE_MAX - 2 - len(head.encode())
        line: list[str] = []
        for name in names:
            if line and len(" ".join([*line, name])) > room_left:
                self.responses.emit(self.numeric("353", symbol, "#" + room, " ".join(line)))
                line = []
            line.append(name)
        if line:
            self.responses.emit(self.numeric("353", symbol, "#" + room, " ".join(line)))
        self.responses.emit(self.numeric("366", "#" + room, "End of /NAMES list."))

    def message_lines(self, m: Reply, live: bool = True, stamp: bool = False) -> list[str]:
        """A room message or DM as PRIVMSG lines (NOTICE, with its client-only
        tags, where its line said so and it is `live`: not read from
        history), split to fit; with `stamp`, its time in front of its text
        for a client without server-time."""
        author = m["from"]
        if "room" in m:
            target, scope = "#" + m["room"], m["room"]
        else:
            scope = pair(m["from"], m["to"])
            target = m["to"] if author.lower() == self.nick.lower() else self.nick
        account = None if m.get("guest") else author  # a guest has no account
        tags = self.tags(m["ts"], account, msgid(scope, m["seq"]))
        directory = self.directory
        command = "PRIVMSG"
        # Most messages' lines said nothing more: then nothing is looked up.
        noted = directory.pending or directory.messages
        extras = directory.extras(scope, m) if live and noted else None
        if extras is not None and extras.notice:
            command = "NOTICE"
        thread = m.get("thread")
        tagged = "message-tags" in self.caps
        if tagged:
            if extras is not None:
                tags.update(extras.tags)
            # A thread reply names its root; a quoted reply what it answers.
            if thread is not None:
                tags["+draft/reply"] = msgid(scope, thread)
            elif "reply_to" in m:
                tags["+draft/reply"] = msgid(scope, m["reply_to"])
        text = self.with_links(m)
        if thread is None:
            directory.seen(scope, m["seq"], author, m["text"], m.get("plain", False))
        elif not tagged:
            link = target + f"/{thread}" if "room" in m else f"{thread}"
            text = directory.quote(scope, thread, link) + text
        source = self.mask(author)
        prefix = f"[{_stamp(m['ts'])}] " if stamp and "server-time" not in self.caps else ""
        head = len(f":{source} {command} {target} :{prefix}".encode()) + 2
        action = m.get("action")
        room_left = LINE_MAX - head - (9 if action else 0)
        lines = []
        for piece in split_text(text, room_left):
            text = f"\x01ACTION {prefix}{piece}\x01" if action else prefix + piece
            lines.append(build(source, command, target, text, tags=tags))
        return lines

    def with_links(self, m: Reply) -> str:
        """A message's text as IRC shows it (formatting.py), and the link of
        each file it carries that the text does not already name (an IRC
        client sends its upload's link)."""
        text: str = m["text"] if m.get("plain") else to_irc(m["text"])
        if "files" not in m or self.files_url is None:
            return text
        links = [
            f"{self.files_url}/{f['id']}/{quote(f['name'], safe='')}"
            for f in m["files"]
            if f["id"] not in text
        ]
        return " ".join([text, *links]) if text else " ".join(links)

    def replay(
        self, messages: list[Reply], partner: str | None, batch_target: str | None = None
    ) -> None:
        """Messages from history as the lines they were, inside a chathistory
        batch when asked with CHATHISTORY (`batch_target`)."""
        lines = []
        for message in messages:
            if partner is not None:
                self.log_dm(message)
            lines += self.message_lines(message, live=False)
        if batch_target is None:
            for line in lines:
                self.responses.emit(line)
        else:
            self.responses.batched(lines, "chathistory", batch_target)

    def replay_dms(self, partner: str, reply: Reply, batch_target: str | None = None) -> None:
        """DMs read with `dms`, which marks the conversation read up to its newest."""
        self.replay(reply["messages"], partner, batch_target)
        self.read_all_dms(reply["messages"])

    def read_all_dms(self, messages: list[Reply]) -> None:
        """Notes the marker a `dms` reply moved: to the newest of its `messages`."""
        if messages:
            log = self.log_dm(messages[-1])
            log.read = max(log.read or 0, messages[-1]["seq"])

    def log_dm(self, m: Reply) -> DmLog:
        """Notes a DM this connection shows (for MARKREAD and TARGETS)."""
        partner = m["to"] if m["from"].lower() == self.nick.lower() else m["from"]
        log = self.dm_logs.get(partner.lower())
        if log is None:
            log = self.dm_logs[partner.lower()] = DmLog(partner)
        log.times[m["seq"]] = m["ts"]
        if len(log.times) > DM_HISTORY_CAP:
            del log.times[min(log.times)]
        return log


# Capabilities of a client that reads history itself: shown none on JOIN.
_FETCHES_HISTORY = frozenset({"draft/chathistory"})


def _stamp(ts: float) -> str:
    """A message's time in front of its text, for a client without server-time:
    the time (UTC) for one of today, the date too for an older one."""
    moment = datetime.datetime.fromtimestamp(ts, datetime.UTC)
    today = datetime.datetime.now(datetime.UTC).date()
    return moment.strftime("%H:%M:%S" if moment.date() == today else "%Y-%m-%d %H:%M")


def ignore(_: Reply) -> None:
    """For a request whose refusal needs no words (the client did not ask it)."""


def room_named(target: str) -> str | None:
    """'#General' -> 'general'; None if it cannot name a room."""
    if not target.startswith("#"):
        return None
    name = target[1:].lower()
    return name if ROOM_RE.fullmatch(name) else None
