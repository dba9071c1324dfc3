"""Read markers (`draft/read-marker`, MARKREAD) and the conversations a
client has (CHATHISTORY TARGETS), mapped onto Nexus read markers and history.

IRC names a read position by a message's time, Nexus by its `seq`: a
MARKREAD time becomes the newest message at or before it (`read`), and a
marker becomes the time of the last message read. A room's marker is worked
out from its unread count (RoomInfo) and its history; a DM conversation's
from the DMs this connection has shown, because reading a conversation's
history (`dms`) marks it all read: the gateway never asks `dms` only to
look. For the same reason a DM partner is listed by TARGETS only once this
connection has seen their conversation (a DM that waited at login, one said
since, or CHATHISTORY of that nick).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from nexus.protocol import USERNAME_RE
from nexus.server.irc.history import irc_time, parse_time
from nexus.server.irc.lines import Line, build
from nexus.server.irc.members import Members, Rosters
from nexus.server.irc.numerics import HISTORY_MAX, SERVER
from nexus.server.irc.state import DmLog, Reply, ignore, room_named

CAP = "draft/read-marker"


def ms(ts: float) -> int:
    """A timestamp at `server-time` precision, to compare with what clients send."""
    return int(ts * 1000)


def marker_text(ts: float | None) -> str:
    return "*" if ts is None else "timestamp=" + irc_time(ts)


def room_marker(messages: list[Reply], unread: int, me: str) -> float | None:
    """The time of the last message read in a room with `unread` messages after
    the marker (not erased and not the reader's own, as the server counts
    them); None if the marker is before every stored message."""
    count = 0
    for i in range(len(messages) - 1, -1, -1):
        m = messages[i]
        if count == unread:
            return float(m["ts"])
        if m["from"].lower() != me and not m.get("erased"):
            count += 1
    return None


def newest_at(messages: list[Reply], until: int) -> Reply | None:
    """The newest of `messages` (oldest first) said at or before `until` (ms)."""
    found = None
    for m in messages:
        if ms(m["ts"]) <= until:
            found = m
    return found


class ReadMarkers(Members):
    """MARKREAD both ways, and the DM conversations this connection has seen."""

    def _ask_join_view(
        self,
        rooms: list[str],
        then: Callable[[Rosters, dict[str, list[Reply]]], None],
    ) -> None:
        """What joining `rooms` shows: their members and, for a
        `draft/read-marker` client, the history its join marker is found in."""
        histories: dict[str, list[Reply]] = {}

        def got_history(room: str, reply: Reply) -> None:
            histories[room] = reply["messages"]

        if CAP in self.caps:
            for room in rooms:
                self._ask(
                    "history", partial(got_history, room), ignore, room=room, limit=HISTORY_MAX
                )
        self._members_of(rooms, lambda rosters: then(rosters, histories))

    def _join_marker(self, room: str, messages: list[Reply] | None) -> str | None:
        """The MARKREAD value a `draft/read-marker` client gets as it joins `room`."""
        if CAP not in self.caps:
            return None
        unread = self.rooms.get(room, {}).get("unread", 0)
        return marker_text(room_marker(messages or [], unread, self.nick.lower()))

    def _show_channel(self, room: str, members: set[str], history: list[Reply] | None) -> None:
        """The client's own JOIN of `room`: the line, the topic, the read
        marker (`draft/read-marker`, before the end of NAMES) and NAMES."""
        self.channels[room] = set(members) | {self.nick}
        self._emit(self._join_line(self.nick, room))
        self._show_topic(room)
        marker = self._join_marker(room, history)
        if marker is not None:
            self._emit(build(SERVER, "MARKREAD", "#" + room, marker))
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
            ts = parse_time(line.params[1].removeprefix("timestamp="))
            if ts is None:
                self._local(self._fail("INVALID_PARAMS", line.params[1][:40], "Invalid timestamp"))
                return
            until = ms(ts)
        if room is not None and room not in self.channels:
            self._local(self._fail("INVALID_PARAMS", target[:40], "You're not on that channel"))
        elif room is not None:
            target = "#" + room  # as the channel is named to the client
            self._ask(
                "history",
                partial(self._room_markread, room, target, until),
                lambda r: self._emit(self._fail("INTERNAL_ERROR", target, r["error"]["message"])),
                room=room,
                limit=HISTORY_MAX,
            )
        else:
            self._dm_markread(target, until)

    def _fail(self, code: str, *params: str) -> str:
        return build(SERVER, "FAIL", "MARKREAD", code, *params)

    def _room_markread(self, room: str, target: str, until: int | None, reply: Reply) -> None:
        messages = reply["messages"]

        def tell(answer: Reply) -> None:
            moved = next((m for m in messages if m["seq"] == answer["seq"]), None)
            self._emit(self._markread_line(target, None if moved is None else moved["ts"]))

        def current(answer: Reply) -> None:
            self._got_rooms(answer)
            unread = self.rooms.get(room, {}).get("unread", 0)
            ts = room_marker(messages, unread, self.nick.lower())
            self._emit(self._markread_line(target, ts))

        chosen = newest_at(messages, until) if until is not None else None
        if chosen is not None:
            self._ask(
                "read",
                tell,
                lambda r: self._emit(self._fail("INTERNAL_ERROR", target, r["error"]["message"])),
                room=room,
                seq=chosen["seq"],
            )
        else:  # a question, or a time before every stored message: the marker as it is
            self._ask("rooms", current)

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
            self._emit(self._markread_line(target, self._dm_read_ts(log)))

        self._ask(
            "read",
            tell,
            lambda r: self._emit(self._fail("INTERNAL_ERROR", target, r["error"]["message"])),
            seq=max(seqs),
            **{"with": log.partner},
        )

    @staticmethod
    def _dm_read_ts(log: DmLog | None) -> float | None:
        if log is None or log.read is None:
            return None
        return log.times.get(log.read)

    def _markread_line(self, target: str, ts: float | None) -> str:
        return build(SERVER, "MARKREAD", target, marker_text(ts))

    def _on_read(self, event: Reply) -> None:
        """The account's marker moved elsewhere (nexus-chat, the page, another
        IRC session): MARKREAD for `draft/read-marker` clients."""
        if "room" in event:
            room = event["room"]
            if CAP not in self.caps or room not in self.channels:
                return

            def tell(reply: Reply) -> None:
                messages = reply["messages"]
                self._emit(
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
            self.out.append(self._markread_line(log.partner, log.times[log.read]))
