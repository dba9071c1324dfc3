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
from nexus.server.irc.members import Members, Rosters
from nexus.server.irc.state import DmLog, Reply, ignore, room_named

CAP = "draft/read-marker"


Markers = dict[str, float | None]  # room -> the time of the last message read there


def marker_text(ts: float | None) -> str:
    return "*" if ts is None else "timestamp=" + irc_time(ts)


def message_at(seq: int) -> Walk[Message | None]:
    """The stored message numbered `seq` (erased or not), or None."""
    found, _ = yield (1, seq + 1)
    return found[-1] if found and found[-1]["seq"] == seq else None


class ReadMarkers(Members):
    """MARKREAD both ways, and the DM conversations this connection has seen."""

    def _ask_join_view(self, rooms: list[str], then: Callable[[Rosters, Markers], None]) -> None:
        """What joining `rooms` shows: their members and, for a
        `draft/read-marker` client, first the account's read marker in each."""
        markers: Markers = {}
        if CAP not in self.caps or not rooms:
            self._members_of(rooms, lambda rosters: then(rosters, markers))
            return
        waiting = [len(rooms)]

        def got(room: str, ts: float | None) -> None:
            markers[room] = ts
            waiting[0] -= 1
            if not waiting[0]:
                self._members_of(rooms, lambda rosters: then(rosters, markers))

        for room in rooms:
            self._room_marker(room, partial(got, room))

    def _room_marker(self, room: str, then: Callable[[float | None], None]) -> None:
        """Calls `then` with the time of the last message the account has read
        in `room` (None: before every stored message, or not a member)."""

        def at(reply: Reply) -> None:
            walk = read_up_to(reply["seq"], self.nick.lower(), ROOM_HISTORY_CAP)
            self._walk(walk, then, lambda _: then(None), room=room)

        self._ask("read", at, lambda _: then(None), room=room, seq=0)

    def _show_channel(self, room: str, members: set[str], markers: Markers) -> None:
        """The client's own JOIN of `room`: the line, the topic, the read
        marker (`draft/read-marker`, before the end of NAMES) and NAMES."""
        self.channels[room] = set(members) | {self.nick}
        self.responses.emit(self._join_line(self.nick, room))
        self._show_topic(room)
        if CAP in self.caps:
            self.responses.emit(
                build(self.server, "MARKREAD", "#" + room, marker_text(markers.get(room)))
            )
        self._show_names(room)

    def _markread(self, line: Line) -> None:
        """MARKREAD <target> [timestamp=...]: sets or asks the account's marker."""
        if not line.params:
            self._local(self._fail("NEED_MORE_PARAMS", "Missing parameters"))
            return
        target = line.params[0]
        room = room_named(target)
        if room is None and not USERNAME_RE.fullmatch(target):
            self._local(self._fail("INVALID_PARAMS", target[:40], "Invalid target"))
            return
        until = None
        if len(line.params) > 1:
            until = parse_ms(line.params[1].removeprefix("timestamp="))
            if until is None:
                self._local(self._fail("INVALID_PARAMS", line.params[1][:40], "Invalid timestamp"))
                return
        if room is not None and room not in self.channels:
            self._local(self._fail("INVALID_PARAMS", target[:40], "You're not on that channel"))
        elif room is not None:
            self._room_markread(room, "#" + room, until)  # named as the channel is shown
        else:
            self._dm_markread(target, until)

    def _fail(self, code: str, *params: str) -> str:
        return build(self.server, "FAIL", "MARKREAD", code, *params)

    def _room_markread(self, room: str, target: str, until: int | None) -> None:
        """MARKREAD #room: moves the marker to the newest message said at or
        before `until` and tells where it is (it never moves back); without a
        time, or one before every stored message, tells where it is."""

        def failed(reply: Reply) -> None:
            self.responses.emit(self._fail("INTERNAL_ERROR", target, reply["error"]["message"]))

        def tell(ts: float | None) -> None:
            self.responses.emit(self._markread_line(target, ts))

        def told(message: Message | None) -> None:
            tell(None if message is None else message["ts"])

        def chosen(message: Message | None) -> None:
            if message is None:  # the marker as it is
                self._room_marker(room, tell)
                return

            def moved(answer: Reply) -> None:
                if answer["seq"] == message["seq"]:
                    tell(message["ts"])
                else:  # it was further on already
                    self._walk(message_at(answer["seq"]), told, failed, room=room)

            self._ask("read", moved, failed, room=room, seq=message["seq"])

        if until is None:
            self._room_marker(room, tell)
        else:
            self._walk(said_by(until, ROOM_HISTORY_CAP), chosen, failed, room=room)

    def _dm_markread(self, target: str, until: int | None) -> None:
        log = self.dm_logs.get(target.lower())
        if until is None or log is None:
            self._local(self._markread_line(target, self._dm_read_ts(log)))
            return
        seqs = [seq for seq, ts in log.times.items() if ms(ts) <= until]
        if not seqs:
            self._local(self._markread_line(target, self._dm_read_ts(log)))
            return

        def tell(answer: Reply) -> None:
            log.read = max(log.read or 0, answer["seq"])
            self.responses.emit(self._markread_line(target, self._dm_read_ts(log)))

        self._ask(
            "read",
            tell,
            lambda r: self.responses.emit(
                self._fail("INTERNAL_ERROR", target, r["error"]["message"])
            ),
            seq=max(seqs),
            **{"with": log.partner},
        )

    @staticmethod
    def _dm_read_ts(log: DmLog | None) -> float | None:
        if log is None or log.read is None:
            return None
        return log.times.get(log.read)

    def _markread_line(self, target: str, ts: float | None) -> str:
        return build(self.server, "MARKREAD", target, marker_text(ts))

    def _on_read(self, event: Reply) -> None:
        """The account's marker moved elsewhere (nexus-chat, the page, another
        IRC session): MARKREAD for `draft/read-marker` clients."""
        if "room" in event:
            room = event["room"]
            if CAP not in self.caps or room not in self.channels:
                return

            def tell(reply: Reply) -> None:
                messages = reply["messages"]
                self.responses.emit(
                    self._markread_line("#" + room, messages[-1]["ts"] if messages else None)
                )

            self._ask(
                "history",
                tell,
                ignore,
                room=room,
                limit=1,
                before=event["seq"] + 1,
            )
            return
        log = self.dm_logs.get(event["with"].lower())
        if log is None:
            return
        log.read = max(log.read or 0, event["seq"])
        if CAP in self.caps and log.read in log.times:
            self.responses.lines.append(self._markread_line(log.partner, log.times[log.read]))
