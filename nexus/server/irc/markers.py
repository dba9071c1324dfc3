"""Read markers (`draft/read-marker`, MARKREAD) and the conversations a
client has (CHATHISTORY TARGETS), mapped onto Nexus read markers and history.

IRC names a read position by a message's time, Nexus by its `seq`: a
MARKREAD time becomes the newest message at or before it (`read`), and a
marker becomes the time of the last message read. A room's marker is asked
of the server (`read` with seq 0, which never moves a marker back, answers
it as it is) and its time read from the few messages after it (history.py:
`read_up_to`); a DM conversation's from the DMs this connection has shown,
because reading a conversation's history (`dms`) marks it all read: the
gateway never asks `dms` only to look. For the same reason a DM partner is
listed by TARGETS only once this connection has seen their conversation (a
DM that waited at login, one said since, or CHATHISTORY of that nick).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from nexus.protocol import ROOM_HISTORY_CAP, USERNAME_RE
from nexus.server.irc.history import Message, Walk, irc_time, ms, parse_ms, read_up_to, said_by
from nexus.server.irc.lines import Line, build
from nexus.server.irc.members import Rosters, members_of
from nexus.server.irc.state import DmLog, IrcState, Reply, ignore, room_named

CAP = "draft/read-marker"


Markers = dict[str, float | None]  # room -> the time of the last message read there


def marker_text(ts: float | None) -> str:
    return "*" if ts is None else "timestamp=" + irc_time(ts)


def message_at(seq: int) -> Walk[Message | None]:
    """The stored message numbered `seq` (erased or not), or None."""
    found, _ = yield (1, seq + 1)
    return found[-1] if found and found[-1]["seq"] == seq else None


def ask_join_view(c: IrcState, rooms: list[str], then: Callable[[Rosters, Markers], None]) -> None:
    """What joining `rooms` shows: their members and, for a
    `draft/read-marker` client, first the account's read marker in each."""
    markers: Markers = {}
    if CAP not in c.caps or not rooms:
        members_of(c, rooms, lambda rosters: then(rosters, markers))
        return
    waiting = [len(rooms)]

    def got(room: str, ts: float | None) -> None:
        markers[room] = ts
        waiting[0] -= 1
        if not waiting[0]:
            members_of(c, rooms, lambda rosters: then(rosters, markers))

    for room in rooms:
        room_marker(c, room, partial(got, room))


def room_marker(c: IrcState, room: str, then: Callable[[float | None], None]) -> None:
    """Calls `then` with the time of the last message the account has read
    in `room` (None: before every stored message, or not a member)."""

    def at(reply: Reply) -> None:
        walk = read_up_to(reply["seq"], c.nick.lower(), ROOM_HISTORY_CAP)
        c.walk(walk, then, lambda _: then(None), room=room)

    c.ask("read", at, lambda _: then(None), room=room, seq=0)


def show_channel(c: IrcState, room: str, members: set[str], markers: Markers) -> None:
    """The client's own JOIN of `room`: the line, the topic, the read
    marker (`draft/read-marker`, before the end of NAMES) and NAMES."""
    c.channels[room] = set(members) | {c.nick}
    c.responses.emit(c.join_line(c.nick, room))
    c.show_topic(room)
    if CAP in c.caps:
        c.responses.emit(build(c.server, "MARKREAD", "#" + room, marker_text(markers.get(room))))
    c.show_names(room)


def handle_markread(c: IrcState, line: Line) -> None:
    """MARKREAD <target> [timestamp=...]: sets or asks the account's marker."""
    if not line.params:
        c.local(fail_line(c, "NEED_MORE_PARAMS", "Missing parameters"))
        return
    target = line.params[0]
    room = room_named(target)
    if room is None and not USERNAME_RE.fullmatch(target):
        c.local(fail_line(c, "INVALID_PARAMS", target[:40], "Invalid target"))
        return
    until = None
    if len(line.params) > 1:
        until = parse_ms(line.params[1].removeprefix("timestamp="))
        if until is None:
            c.local(fail_line(c, "INVALID_PARAMS", line.params[1][:40], "Invalid timestamp"))
            return
    if room is not None and room not in c.channels:
        c.local(fail_line(c, "INVALID_PARAMS", target[:40], "You're not on that channel"))
    elif room is not None:
        room_markread(c, room, "#" + room, until)  # named as the channel is shown
    else:
        dm_markread(c, target, until)


def fail_line(c: IrcState, code: str, *params: str) -> str:
    return build(c.server, "FAIL", "MARKREAD", code, *params)


def room_markread(c: IrcState, room: str, target: str, until: int | None) -> None:
    """MARKREAD #room: moves the marker to the newest message said at or
    before `until` and tells where it is (it never moves back); without a
    time, or one before every stored message, tells where it is."""

    def failed(reply: Reply) -> None:
        c.responses.emit(fail_line(c, "INTERNAL_ERROR", target, reply["error"]["message"]))

    def tell(ts: float | None) -> None:
        c.responses.emit(markread_line(c, target, ts))

    def told(message: Message | None) -> None:
        tell(None if message is None else message["ts"])

    def chosen(message: Message | None) -> None:
        if message is None:  # the marker as it is
            room_marker(c, room, tell)
            return

        def moved(answer: Reply) -> None:
            if answer["seq"] == message["seq"]:
                tell(message["ts"])
            else:  # it was further on already
                c.walk(message_at(answer["seq"]), told, failed, room=room)

        c.ask("read", moved, failed, room=room, seq=message["seq"])

    if until is None:
        room_marker(c, room, tell)
    else:
        c.walk(said_by(until, ROOM_HISTORY_CAP), chosen, failed, room=room)


def dm_markread(c: IrcState, target: str, until: int | None) -> None:
    log = c.dm_logs.get(target.lower())
    if until is None or log is None:
        c.local(markread_line(c, target, dm_read_ts(log)))
        return
    seqs = [seq for seq, ts in log.times.items() if ms(ts) <= until]
    if not seqs:
        c.local(markread_line(c, target, dm_read_ts(log)))
        return

    def tell(answer: Reply) -> None:
        log.read = max(log.read or 0, answer["seq"])
        c.responses.emit(markread_line(c, target, dm_read_ts(log)))

    c.ask(
        "read",
        tell,
        lambda r: c.responses.emit(fail_line(c, "INTERNAL_ERROR", target, r["error"]["message"])),
        seq=max(seqs),
        **{"with": log.partner},
    )


def dm_read_ts(log: DmLog | None) -> float | None:
    if log is None or log.read is None:
        return None
    return log.times.get(log.read)


def markread_line(c: IrcState, target: str, ts: float | None) -> str:
    return build(c.server, "MARKREAD", target, marker_text(ts))


def on_read(c: IrcState, event: Reply) -> None:
    """The account's marker moved elsewhere (nexus-chat, the page, another
    IRC session): MARKREAD for `draft/read-marker` clients. A thread's
    marker is not the room's: IRC has none to move."""
    if "thread" in event:
        return
    if "room" in event:
        room = event["room"]
        if CAP not in c.caps or room not in c.channels:
            return

        def tell(reply: Reply) -> None:
            messages = reply["messages"]
            c.responses.emit(markread_line(c, "#" + room, messages[-1]["ts"] if messages else None))

        c.ask(
            "history",
            tell,
            ignore,
            room=room,
            limit=1,
            before=event["seq"] + 1,
        )
        return
    log = c.dm_logs.get(event["with"].lower())
    if log is None:
        return
    log.read = max(log.read or 0, event["seq"])
    if CAP in c.caps and log.read in log.times:
        c.responses.lines.append(markread_line(c, log.partner, log.times[log.read]))
