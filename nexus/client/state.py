"""What the client knows and shows, without I/O: rooms, scrollback, people, unread counts.

`ChatState.apply(event)` folds a server event in; command handlers and the
session call the other methods. The UI only reads from here, so everything
the screen shows can be asserted on in tests without a terminal.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from rich.console import RenderableType

from nexus.client import render
from nexus.client.render import Fragments
from nexus.protocol import (
    DmEvent,
    Event,
    Joined,
    Left,
    MessageEvent,
    Presence,
    RoomCreated,
    RoomDeleted,
    RoomInfo,
    RoomMessage,
    TopicChanged,
)

SCROLLBACK_CAP = 2_000  # entries kept per room: bounds memory; /history brings older ones back


class Entry:
    """One thing in the scrollback, with its rendered rows cached for the last width used."""

    __slots__ = ("_rows", "_width", "day", "renderable")

    def __init__(self, renderable: RenderableType, day: date | None = None) -> None:
        self.renderable = renderable
        self.day = day  # set on day separators only
        self._width = -1
        self._rows: list[Fragments] = []

    def rows(self, width: int) -> list[Fragments]:
        if width != self._width:
            self._rows = render.rows(self.renderable, width)
            self._width = width
        return self._rows

    @property
    def plain(self) -> str:
        """The text of a line; empty for tables and panels."""
        return getattr(self.renderable, "plain", "")


class Scrollback:
    """A capped list of entries with day separators and a scroll offset.

    `scroll` counts screen rows above the newest one: 0 means pinned to the
    bottom. Only the rows needed for the current view are ever rendered.
    """

    def __init__(self, cap: int = SCROLLBACK_CAP) -> None:
        self.cap = cap
        self.entries: deque[Entry] = deque()
        self.scroll = 0
        self.newer = 0  # entries that arrived while scrolled up
        self._width = 0  # of the last view, to keep a scrolled view still as lines arrive
        self._last_day: date | None = None

    def add(self, renderable: RenderableType, ts: float | None = None) -> None:
        if ts is not None:
            day = render.day_of(ts)
            if day != self._last_day:
                self._append(Entry(render.day_separator(day), day))
                self._last_day = day
        self._append(Entry(renderable))

    def _append(self, entry: Entry) -> None:
        self.entries.append(entry)
        if len(self.entries) > self.cap:
            self.entries.popleft()
        if self.scroll:
            self.newer += 1
            if self._width:
                self.scroll += len(entry.rows(self._width))

    def prepend(self, items: Iterable[tuple[RenderableType, float]]) -> None:
        """Older entries (oldest first) go above the rest; the cap applies only to appends."""
        batch: list[Entry] = []
        day = None
        for renderable, ts in items:
            if (new_day := render.day_of(ts)) != day:
                day = new_day
                batch.append(Entry(render.day_separator(day), day))
            batch.append(Entry(renderable))
        if not batch:
            return
        first = next((e for e in self.entries if e.day is not None), None)
        if first is not None and first.day == day:
            self.entries.remove(first)
        if self._last_day is None:
            self._last_day = day
        self.entries.extendleft(reversed(batch))

    def clear(self) -> None:
        self.entries.clear()
        self.scroll = self.newer = 0
        self._last_day = None

    def scroll_by(self, rows: int) -> None:
        """Positive scrolls up (towards older); the top is clamped when the view is built."""
        self.scroll = max(0, self.scroll + rows)
        if not self.scroll:
            self.newer = 0

    def view(self, width: int, height: int) -> list[Fragments]:
        """The rows to show, oldest first, at most `height` of them."""
        self._width = width
        need = self.scroll + height
        backwards: list[Fragments] = []
        for entry in reversed(self.entries):
            backwards.extend(reversed(entry.rows(width)))
            if len(backwards) >= need:
                break
        else:
            self.scroll = max(0, min(self.scroll, len(backwards) - height))
        shown = backwards[self.scroll : self.scroll + height]
        shown.reverse()
        return shown


@dataclass
class Room:
    name: str
    topic: str = ""
    owner: str | None = None
    unread: int = 0
    mentioned: bool = False
    first_seq: int = 0  # oldest message shown, for /history
    last_seq: int = 0  # newest message shown, to drop repeats and find gaps
    lines: Scrollback = field(default_factory=Scrollback)


class ChatState:
    """The client's model of the chat; see the module docstring."""

    def __init__(self, me: str, server: str) -> None:
        self.me = me
        self.server = server
        self.rooms: dict[str, Room] = {}
        self.current: str | None = None
        self.home = Scrollback()  # shown while in no room
        self.online: set[str] = set()
        self.known_rooms: set[str] = set()
        self.known_users: set[str] = {me}
        self.connection = "connecting"
        self.connected = False
        self.mention = render.mention_pattern(me)

    # -- output --------------------------------------------------------

    @property
    def pane(self) -> Scrollback:
        room = self.rooms.get(self.current or "")
        return room.lines if room else self.home

    def show(self, renderable: RenderableType, room: str | None = None) -> None:
        """Adds a line or table to `room`'s pane, or to the current one."""
        target = self.rooms.get(room) if room else None
        (target.lines if target else self.pane).add(renderable)

    def note(self, *parts: str | tuple[str, str], room: str | None = None) -> None:
        self.show(render.notice(*parts), room)

    def error(self, text: str) -> None:
        self.show(render.error(text))

    # -- rooms -----------------------------------------------------------

    def add_room(self, info: RoomInfo, history: Iterable[RoomMessage] = ()) -> Room:
        """Records a room I am in (from a join, create or rejoin) and the messages given."""
        room = self._room(info["name"])
        room.topic, room.owner = info["topic"], info["owner"]
        self.add_messages(room, history)
        return room

    def _room(self, name: str) -> Room:
        """The room called `name`, added (without topic or owner yet) if I was not in it."""
        room = self.rooms.get(name)
        if room is None:
            room = self.rooms[name] = Room(name)
        self.known_rooms.add(name)
        return room

    def remove_room(self, name: str) -> None:
        if self.rooms.pop(name, None) is not None and self.current == name:
            self.current = None
            self.cycle(1)

    def switch(self, name: str) -> None:
        if name in self.rooms:
            self.current = name
            room = self.rooms[name]
            room.unread = 0
            room.mentioned = False

    def cycle(self, step: int) -> None:
        """Moves to the next (1) or previous (-1) room, by name, wrapping around."""
        names = sorted(self.rooms)
        if not names:
            return
        index = names.index(self.current) + step if self.current in names else 0
        self.switch(names[index % len(names)])

    def add_messages(self, room: Room, messages: Iterable[RoomMessage]) -> int:
        """Adds room messages: older than shown ones go on top, newer below; repeats are dropped.

        Returns how many were new.
        """
        older: list[RoomMessage] = []
        newer: list[RoomMessage] = []
        for msg in messages:
            seq = msg["seq"]
            if room.last_seq and seq < room.first_seq:
                older.append(msg)
            elif seq > room.last_seq:
                newer.append(msg)
        if older:
            room.lines.prepend((render.message(m, self.mention), m["ts"]) for m in older)
            room.first_seq = older[0]["seq"]
        for msg in newer:
            room.lines.add(render.message(msg, self.mention), msg["ts"])
            self.known_users.add(msg["from"])
        if newer:
            room.first_seq = room.first_seq or newer[0]["seq"]
            room.last_seq = newer[-1]["seq"]
        return len(older) + len(newer)

    # -- events ----------------------------------------------------------

    def apply(self, event: Event) -> bool:
        """Folds one server event in; True when it deserves the terminal bell."""
        if event["event"] == "message":
            return self._on_message(event)
        if event["event"] == "dm":
            return self._on_dm(event)
        if event["event"] == "joined":
            self._on_joined(event)
        elif event["event"] == "left":
            self._on_left(event)
        elif event["event"] == "presence":
            self._on_presence(event)
        elif event["event"] == "room_created":
            self._on_room_created(event)
        elif event["event"] == "room_deleted":
            self._on_room_deleted(event)
        elif event["event"] == "topic":
            self._on_topic(event)
        return False  # hello: connect() has used it already

    def _on_message(self, event: MessageEvent) -> bool:
        room = self.rooms.get(event["room"])
        if room is None or not self.add_messages(room, [event]):
            return False
        mine = self._is_me(event["from"])
        mentioned = not mine and bool(self.mention.search(event["text"]))
        if room.name != self.current and not mine:
            room.unread += 1
            room.mentioned = room.mentioned or mentioned
        return mentioned

    def _on_dm(self, event: DmEvent) -> bool:
        self.pane.add(render.direct(event, self.me), event["ts"])
        self.known_users.update((event["from"], event["to"]))
        return not self._is_me(event["from"])

    def _is_me(self, name: str) -> bool:
        return name.casefold() == self.me.casefold()

    def _on_joined(self, event: Joined) -> None:
        if self._is_me(event["user"]):
            # Mine: from this session's /join (its reply says more) or another session.
            self._room(event["room"])
            return
        self.known_users.add(event["user"])
        self.show(render.event_line(event), event["room"])

    def _on_left(self, event: Left) -> None:
        if self._is_me(event["user"]):
            self.remove_room(event["room"])
        else:
            self.show(render.event_line(event), event["room"])

    def _on_presence(self, event: Presence) -> None:
        user = event["user"]
        self.known_users.add(user)
        (self.online.add if event["online"] else self.online.discard)(user)
        self.show(render.event_line(event))

    def _on_room_created(self, event: RoomCreated) -> None:
        self.known_rooms.add(event["room"]["name"])
        self.show(render.event_line(event))

    def _on_room_deleted(self, event: RoomDeleted) -> None:
        self.known_rooms.discard(event["room"])
        self.remove_room(event["room"])
        self.show(render.event_line(event))

    def _on_topic(self, event: TopicChanged) -> None:
        room = self.rooms.get(event["room"])
        if room is not None:
            room.topic = event["topic"]
            room.lines.add(render.event_line(event))
