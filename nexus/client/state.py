"""What the client knows and shows, without I/O: buffers, scrollback, people, unread counts.

A buffer is one conversation: a room, the direct messages with one
person, or the thread of one message of either (protocol 3: its root on
top, its replies below; replies stay out of the room's buffer unless
broadcast, and count on the root's summary there instead).
`ChatState.apply(event)` folds a server event into the buffer it
belongs to; command handlers and the session call the other methods. The UI
only reads from here, so everything the screen shows can be asserted on in
tests without a terminal.

Unread and highlight counts derive from a read position per buffer
(`read_seq`, the newest message seen): the counts grow as messages arrive in
a buffer not on screen, and `Buffer.set_read(seq)` recounts them from the
scrollback, so a read marker kept by the server can later set the position
the same way. `synced_seq` is the position the server has been told about.
With protocol 2 the server keeps that position per account: a room's
`unread` count at login seeds it (`Buffer.seed_unread`), and `read` events
from the account's other terminals move it (`set_read`).

A message entry keeps the message it shows, so an `edited`, `erased` or
`reaction` event replaces it and renders that entry again in place.
"""

from __future__ import annotations

import re
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from functools import partial
from typing import Literal

from rich.cells import cell_len
from rich.console import RenderableType

from nexus.client import images, render
from nexus.client.render import Fragments, Line
from nexus.client.typists import Typists
from nexus.protocol import (
    AnyMessage,
    Attachment,
    Banned,
    ConversationInfo,
    DirectMessage,
    DmEvent,
    Event,
    Invited,
    Joined,
    Kicked,
    Left,
    Member,
    MessageEvent,
    Muted,
    PinnedEvent,
    Presence,
    Profile,
    ReadMoved,
    RoomCreated,
    RoomDeleted,
    RoomInfo,
    RoomMessage,
    RoomUpdated,
    TopicChanged,
    TypingEvent,
    markup,
)

_ALL = re.compile(".+", re.S)  # all of a line's text
SCROLLBACK_CAP = 2_000  # entries kept per buffer: bounds memory; older ones come back on demand
SMART_DELAY = 300.0  # presence lines of people silent this long are folded (WeeChat: 5 min)
UNMASK_DELAY = 1_800.0  # a folded join is shown again if the person speaks within this
# A visit this short (a bot's `nexus-chat send`: log in, say, log out) folds its coming and
# going lines, whoever it is: a script run every few minutes would fill a room with them.
SHORT_VISIT = 30.0
THUMBNAILS_KEPT = 200  # in memory, ~30 KB each
PREVIEW_COLUMNS, PREVIEW_ROWS = 40, 8  # the most a picture under a message takes


class Entry:
    """One thing in the scrollback, with its rendered rows cached for the last width used."""

    __slots__ = (
        "_key",
        "_rows",
        "day",
        "folded",
        "highlight",
        "message",
        "mine",
        "quoted",
        "renderable",
        "sender",
        "seq",
    )

    def __init__(
        self,
        renderable: RenderableType | Line,
        day: date | None = None,
        *,
        seq: int = 0,
        sender: str | None = None,
        mine: bool = False,
        highlight: bool = False,
        folded: bool = False,
        quoted: bool = False,
        message: AnyMessage | None = None,
    ) -> None:
        self.renderable = renderable
        self.message = message  # the message shown, as the server last described it
        self.day = day  # set on day separators only
        self.seq = seq  # of a message; 0 for anything else
        self.sender = sender  # of a message, as the server spelled it
        self.mine = mine  # a message I sent (never unread)
        self.highlight = highlight  # a message naming me, or a direct message to me
        self.folded = folded  # a presence line hidden by the smart filter
        self.quoted = quoted  # a copy of another line (/lastlog shows them): never searched
        self._key: tuple[int, int, str] = (-1, -1, "")
        self._rows: list[Fragments] = []

    def rows(
        self, width: int, nick_width: int = render.NICK_MIN, fmt: str = render.CLOCK
    ) -> list[Fragments]:
        if (width, nick_width, fmt) != self._key:
            self._rows = render.rows(self.renderable, width, nick_width, fmt)
            self._key = (width, nick_width, fmt)
        return self._rows

    def redraw(self, renderable: RenderableType | Line) -> None:
        """Shows `renderable` instead, rendered again at the next view."""
        self.renderable = renderable
        self._key = (-1, -1, "")

    @property
    def erased(self) -> bool:
        return self.message is not None and bool(self.message.get("erased"))

    @property
    def plain(self) -> str:
        """The text of a line (`12:04 <ana> hi`); empty for tables and panels."""
        return getattr(self.renderable, "plain", "")

    @property
    def gist(self) -> str:
        """A message as drawn, on one line, to quote it (a reply's first row, a pin)."""
        if self.message is None:
            return self.text
        return render.ERASED if self.erased else render.gist(self.message)

    @property
    def text(self) -> str:
        """What a message or notice says (a message's source, as typed), without time or
        name."""
        if self.message is not None:
            return self.message["text"]
        if isinstance(self.renderable, Line):
            return self.renderable.body.plain
        return self.plain


class Scrollback:
    """A capped list of entries with day separators, markers and a scroll offset.

    `scroll` counts screen rows above the newest one: 0 means pinned to the
    bottom. Only the rows needed for the current view are ever rendered.
    Folded entries are skipped unless the view is asked to show them.
    """

    def __init__(self, cap: int = SCROLLBACK_CAP) -> None:
        self.cap = cap
        self.entries: deque[Entry] = deque()
        self.scroll = 0
        self.newer = 0  # entries that arrived while scrolled up
        self.at_top = False  # the last view reached the oldest entry
        self.nick_width = render.NICK_MIN  # the prefix column: as wide as the names shown
        self._width = 0  # of the last view, to keep a scrolled view still as lines arrive
        self._height = 20  # of the last view, to put a message /goto finds mid-screen
        self._clock = render.CLOCK  # the time format of the last view
        self._last_day: date | None = None
        self._unread_marker: Entry | None = None
        self.cleared = False  # emptied by /clear: older pages wait until asked for

    def add(
        self, renderable: RenderableType | Line, ts: float | None = None, *, folded: bool = False
    ) -> Entry:
        return self.add_entry(Entry(renderable, folded=folded), ts)

    def add_entry(self, entry: Entry, ts: float | None = None) -> Entry:
        """Appends `entry`, after a day separator if `ts` starts a new day."""
        if ts is not None:
            day = render.day_of(ts)
            if day != self._last_day:
                marker = self._unread_marker
                if marker is not None and self.entries and self.entries[-1] is marker:
                    self.entries.pop()  # the rule goes after the date, next to the message
                    self._append(Entry(render.day_separator(day), day))
                    self.entries.append(marker)
                else:
                    self._append(Entry(render.day_separator(day), day))
                self._last_day = day
        self._append(entry)
        return entry

    def _widen(self, entry: Entry) -> None:
        if isinstance(entry.renderable, Line):
            wanted = min(cell_len(entry.renderable.prefix), render.NICK_MAX)
            self.nick_width = max(self.nick_width, wanted)

    def _append(self, entry: Entry) -> None:
        self._widen(entry)
        self.entries.append(entry)
        if len(self.entries) > self.cap:
            dropped = self.entries.popleft()
            if dropped is self._unread_marker:
                self._unread_marker = None
        if self.scroll and not entry.folded:
            self.newer += 1
            if self._width:
                self.scroll += len(entry.rows(self._width, self.nick_width, self._clock))

    def prepend(self, items: Iterable[tuple[Entry, float]]) -> None:
        """Older entries (oldest first) go above the rest; the cap applies only to appends."""
        batch, day = self._dated(items, None)
        if not batch:
            return
        first = next((e for e in self.entries if e.day is not None), None)
        if first is not None and first.day == day:
            self.entries.remove(first)
        if self._last_day is None:
            self._last_day = day
        self.entries.extendleft(reversed(batch))

    def insert_below(self, anchor: Entry, items: Iterable[tuple[Entry, float]]) -> None:
        """Entries (oldest first) right below `anchor`, with a day separator
        where the day changes: a thread's older replies, under its root."""
        entries = self.entries
        at = entries.index(anchor) + 1
        above = next((entries[i].day for i in range(at - 1, -1, -1) if entries[i].day), None)
        batch, day = self._dated(items, above)
        if at < len(entries) and entries[at].day is not None and entries[at].day == day:
            del entries[at]  # what follows is on the batch's last day: one separator
        for offset, entry in enumerate(batch):
            entries.insert(at + offset, entry)

    def _dated(
        self, items: Iterable[tuple[Entry, float]], day: date | None
    ) -> tuple[list[Entry], date | None]:
        """`items`' entries, each day's after its separator but `day`'s (the
        day they follow on), and the day of the last."""
        batch: list[Entry] = []
        for entry, ts in items:
            if (new_day := render.day_of(ts)) != day:
                day = new_day
                batch.append(Entry(render.day_separator(day), day))
            self._widen(entry)
            batch.append(entry)
        return batch, day

    def mark_unread(self, before: Entry | None = None) -> None:
        """Puts the `unread` rule above `before`, or at the end, where the first unread
        line will follow it."""
        if self._unread_marker is not None:
            self.entries.remove(self._unread_marker)
            self._unread_marker = None
        if not self.entries:
            return
        marker = Entry(render.separator("unread", "yellow"))
        if before is None:
            self.entries.append(marker)
        else:
            self.entries.insert(self.entries.index(before), marker)
        self._unread_marker = marker

    def redraw(self, target: Entry, renderable: RenderableType | Line) -> None:
        """Shows `renderable` in `target`'s place; a view scrolled up above it stays still
        when it takes more or fewer rows than before (a reaction row added, an edit)."""
        if not self.scroll or not self._width:
            target.redraw(renderable)
            return
        fit = (self._width, self.nick_width, self._clock)
        before = len(target.rows(*fit))
        target.redraw(renderable)
        below = 0
        for entry in reversed(self.entries):
            if entry is target:
                if below + before <= self.scroll:  # wholly under the view
                    self.scroll += len(target.rows(*fit)) - before
                return
            if not entry.folded:
                below += len(entry.rows(*fit))
            if below >= self.scroll:
                return

    def scroll_to(self, target: Entry) -> None:
        """Scrolls so that `target` shows about the middle of the last view's height."""
        width = self._width or 80
        below = 0
        for entry in reversed(self.entries):
            if entry is target:
                break
            if not entry.folded:
                below += len(entry.rows(width, self.nick_width, self._clock))
        self.scroll = max(0, below - self._height // 2)
        self.newer = 0

    def clear(self) -> None:
        """Empties the screen (/clear); scrolling up afterwards fetches older pages again."""
        self.entries.clear()
        self.scroll = self.newer = 0
        self._last_day = self._unread_marker = None
        self.cleared = True

    def scroll_by(self, rows: int) -> None:
        """Positive scrolls up (towards older); the top is clamped when the view is built."""
        if rows > 0:
            self.cleared = False  # asking for older lines: they may be fetched again
        self.scroll = max(0, self.scroll + rows)
        if not self.scroll:
            self.newer = 0

    def view(
        self, width: int, height: int, folded: bool = False, fmt: str = render.CLOCK
    ) -> list[Fragments]:
        """The rows to show, oldest first, at most `height` of them (`folded`: all entries;
        `fmt`: the time column's format)."""
        self._width, self._clock, self._height = width, fmt, height
        need = self.scroll + height
        backwards: list[Fragments] = []
        self.at_top = False
        for entry in reversed(self.entries):
            if entry.folded and not folded:
                continue
            backwards.extend(reversed(entry.rows(width, self.nick_width, fmt)))
            if len(backwards) >= need:
                break
        else:
            self.scroll = max(0, min(self.scroll, len(backwards) - height))
            self.at_top = self.scroll + height >= len(backwards)
        shown = backwards[self.scroll : self.scroll + height]
        shown.reverse()
        return shown


Scope = Literal["room", "dm"]  # where messages live: a room, or a pair's conversation
Kind = Literal["room", "dm", "thread"]


def thread_key(scope: Scope, name: str, root: int) -> str:
    """A thread buffer's key, its root's link: `#room/12`, or `bob/12` (case-folded)."""
    return f"#{name}/{root}" if scope == "room" else f"{name.casefold()}/{root}"


@dataclass(eq=False)
class Buffer:
    """A room, the direct messages with one person, or the thread of one message of
    either, with its scrollback and counts."""

    kind: Kind
    name: str  # the room's name, or the other person's name as the server spells it
    root: int = 0  # a thread's: the seq of its root message
    oldest_reply: int = 0  # a thread's: its oldest reply shown, to page back from
    scope: Scope = "room"  # a thread's: whether its root is in a room or a conversation
    topic: str = ""
    owner: str | None = None
    private: bool = False  # members, invitees and admins only
    moderators: set[str] = field(default_factory=set)  # case-folded names
    muted: set[str] = field(default_factory=set)  # case-folded names
    pins: int = 0  # messages pinned in the room
    unread: int = 0
    highlights: int = 0
    first_seq: int = 0  # oldest message shown, to page back from (after /clear: last_seq + 1)
    last_seq: int = 0  # newest message shown, to drop repeats and find gaps
    last_ts: float = 0.0  # when the newest message was sent, loaded or not (`conversations`)
    read_seq: int = 0  # newest message seen on screen
    synced_seq: int = 0  # newest message the server knows as read
    said: int = 0  # seq of my newest message sent from this terminal (from the server's reply)
    more: bool = True  # the server may hold older messages than first_seq
    # Newer messages than last_seq are not loaded (a page around a linked message):
    # live ones wait for the pages after it, which load as the view reaches the end.
    more_after: bool = False
    fetching: bool = False  # an older page is on its way
    members: dict[str, str] = field(default_factory=dict)  # case-folded -> name (rooms)
    spoke: dict[str, float] = field(default_factory=dict)  # case-folded -> when they last spoke
    joins: dict[str, Entry] = field(default_factory=dict)  # folded join lines, by person
    # The newest `online` or `joined` line of each person, to fold with its own leaving.
    came: dict[tuple[str, str], Entry] = field(default_factory=dict)
    lines: Scrollback = field(default_factory=Scrollback)

    @property
    def place(self) -> dict[str, str]:
        """The request argument naming where its messages are: `room`, or
        `with` for a conversation."""
        return {"room": self.name} if self.where == "room" else {"with_": self.name}

    @property
    def where(self) -> Scope:
        """Where its messages are: a room, or a conversation (a thread's, its root's)."""
        if self.kind == "thread":
            return self.scope
        return "room" if self.kind == "room" else "dm"

    @property
    def label(self) -> str:
        place = f"#{self.name}" if self.where == "room" else self.name
        return f"{place}/{self.root}" if self.kind == "thread" else place

    @property
    def key(self) -> str:
        """Its place in `ChatState.order`: `#room`, the person's case-folded name, or a
        thread's root as a link (`#room/12`, `bob/12`)."""
        if self.kind == "thread":
            return thread_key(self.scope, self.name, self.root)
        return f"#{self.name}" if self.kind == "room" else self.name.casefold()

    def set_read(self, seq: int) -> None:
        """Moves the read position and recounts what lies past it in the scrollback."""
        self.read_seq = max(self.read_seq, seq)
        past = [
            e for e in self.lines.entries if e.seq > self.read_seq and not e.mine and not e.erased
        ]
        self.unread = len(past)
        self.highlights = sum(e.highlight for e in past)

    def mark_read(self) -> None:
        self.set_read(self.last_seq)

    def clear(self) -> None:
        """/clear: the screen empties, what the client knows stays. The newest seq, the
        read position and the counts are kept; paging back (/history, /goto, scrolling
        up) starts after the newest message, so the cleared ones come back on demand."""
        self.lines.clear()
        self.joins.clear()
        self.came.clear()
        if self.last_seq:
            self.first_seq = self.last_seq + 1
            self.more = True

    def seed_unread(self, count: int) -> None:
        """Takes the server's count of unread messages here (its marker, kept per
        account): the read position moves to before the newest `count` messages of
        others that are loaded, with the `unread` rule there; it never moves back."""
        theirs = [e for e in self.messages() if not e.mine and not e.erased]
        if count <= 0 or not theirs:
            self.set_read(self.last_seq)
        else:
            first = theirs[-min(count, len(theirs))]
            if first.seq > self.read_seq:
                self.lines.mark_unread(before=first)
            self.set_read(first.seq - 1)
            if count > len(theirs) and first.seq > self.read_seq:
                self.unread = count  # more than is loaded: the server's count stands
        self.synced_seq = max(self.synced_seq, self.read_seq)

    def messages(self) -> Iterator[Entry]:
        """The message entries loaded, oldest first (not /lastlog's copies)."""
        return (e for e in self.lines.entries if e.message is not None and not e.quoted)

    def find(self, seq: int) -> Entry | None:
        """The loaded message `seq`, if it is loaded."""
        if not self.first_seq <= seq <= self.last_seq:
            return None
        return next((e for e in reversed(self.lines.entries) if e.seq == seq and e.message), None)

    def newest(self, mine: bool = False) -> Entry | None:
        """The newest loaded message that is not erased (`mine`: of mine)."""
        for entry in reversed(self.lines.entries):
            if entry.message is not None and not entry.erased and (entry.mine or not mine):
                return entry
        return None

    def newest_seq(self, mine: bool = False) -> int | None:
        """As `newest`, counting also my message the server has acknowledged but not yet
        echoed back (typed just before)."""
        entry = self.newest(mine)
        seq = entry.seq if entry is not None else 0
        if self.said > seq:
            said = self.find(self.said)
            if said is None or not said.erased:
                seq = self.said
        return seq or None


@dataclass(frozen=True, slots=True)
class Alert:
    """A message that deserves attention: it names me, or it is a direct message to me."""

    where: str  # "#tech", or the other person of a conversation
    sender: str
    text: str
    seen: bool  # it arrived in the buffer on screen


class ChatState:
    """The client's model of the chat; see the module docstring."""

    def __init__(
        self,
        me: str,
        server: str,
        *,
        highlight: Iterable[str] = (),
        clock_format: str = render.CLOCK,
        previews: bool = True,
        kitty: bool = False,
    ) -> None:
        self.me = me
        self.server = server
        self.rooms: dict[str, Buffer] = {}
        self.dms: dict[str, Buffer] = {}  # by the other person's case-folded name, oldest first
        self.threads: dict[str, Buffer] = {}  # thread buffers open, by key (`#room/12`)
        self.threads_unread = 0  # followed threads with unread replies (the `threads` inbox)
        self.current: Buffer | None = None
        # Buffer keys (Buffer.key) in number order: as they opened, as /buffer move left
        # them, or as an earlier run kept them (keys of buffers not open yet hold their
        # place until `settled`). `order_changed` says it is to be kept again.
        self.order: list[str] = []
        self.order_changed = False
        self.home = Scrollback()  # shown while no buffer is open
        self.online: set[str] = set()
        self.known_rooms: set[str] = set()
        self.deleted: set[str] = set()  # rooms whose `room_deleted` was shown
        self.came_online: dict[str, float] = {}  # case-folded name -> when it last came online
        self.known_users: set[str] = {me}
        self.connection = "connecting"
        self.connected = False
        self.show_folded = False  # Alt-=: show the lines the smart filter folded
        self.panel: bool | None = None  # the side panel: None follows the width; Alt-Shift-N
        # Rooms whose member list the session should ask for (`members`): new
        # buffers, and all of them when someone unknown comes online.
        self.members_stale: set[str] = set()
        self.away: dict[str, str] = {}  # case-folded name -> away text, of people away
        self.admins: set[str] = set()  # case-folded names of the server's admins seen online
        self.highlight = tuple(highlight)  # words that count as naming me (client.toml)
        self.mention = render.mention_pattern(me, self.highlight)
        self.clock_format = clock_format  # the time column's strftime format (client.toml)
        self.previews = previews  # pictures of image files under their rows (client.toml)
        self.kitty = kitty  # the terminal draws pictures itself (images.kitty_terminal)
        # Thumbnails by file id, the newest THUMBNAILS_KEPT, fetched once each; the
        # session fetches the `thumbnails_wanted` (new image files shown) and forgets
        # none it asked for, so one that failed is not asked for again and again.
        self.thumbnails: dict[str, bytes] = {}
        self.thumbnails_wanted: dict[str, Attachment] = {}
        self.thumbnails_asked: set[str] = set()
        self.transfers: dict[object, str] = {}  # uploads and downloads under way, as shown
        self.typists = Typists()  # others composing, by buffer key (status bar)
        self.last_pinned: tuple[str, int, bool] | None = None  # the last `pinned`: room, seq, on

    # -- buffers ---------------------------------------------------------

    @property
    def buffers(self) -> list[Buffer]:
        """In side-panel order (Alt-1 is the first): `order`, so a buffer keeps its number
        while others open and close after it, as in WeeChat."""
        shown = {f"#{name}": room for name, room in self.rooms.items()} | self.dms | self.threads
        return [shown[key] for key in self.order if key in shown]

    def _opened(self, buffer: Buffer) -> None:
        if buffer.key not in self.order:
            self.order.append(buffer.key)
            self.order_changed = True

    def move(self, buffer: Buffer, number: int) -> None:
        """/buffer move: `buffer` becomes number `number` (kept within 1 and the last);
        the ones between move by one."""
        shown = self.buffers
        shown.remove(buffer)
        shown.insert(min(max(number, 1), len(shown) + 1) - 1, buffer)
        placed = [b.key for b in shown]
        self.order = placed + [key for key in self.order if key not in placed]
        self.order_changed = True

    def settled(self) -> None:
        """Logged in and every buffer of the login opened: the places kept for buffers
        that did not come back (a room left elsewhere) go."""
        shown = {b.key for b in self.buffers}
        if any(key not in shown for key in self.order):
            self.order = [key for key in self.order if key in shown]
            self.order_changed = True

    @property
    def room(self) -> str | None:
        """The current buffer's room name; None in a conversation or no buffer."""
        current = self.current
        return current.name if current is not None and current.kind == "room" else None

    @property
    def pane(self) -> Scrollback:
        return self.current.lines if self.current is not None else self.home

    def switch(self, target: str | Buffer | None) -> None:
        """Shows a buffer (a room by name) and counts its messages as read."""
        buffer = self.rooms.get(target) if isinstance(target, str) else target
        if buffer is None or buffer is self.current:
            return
        if self.current is not None:
            self.current.lines.scroll_by(-self.current.lines.scroll)
        self.current = buffer
        buffer.mark_read()

    def switch_number(self, number: int) -> None:
        """Alt-number: the buffer at that place in the side panel (1-based), if any."""
        buffers = self.buffers
        if 1 <= number <= len(buffers):
            self.switch(buffers[number - 1])

    def cycle(self, step: int) -> None:
        """Moves to the next (1) or previous (-1) buffer, wrapping around."""
        buffers = self.buffers
        if not buffers:
            return
        index = buffers.index(self.current) + step if self.current in buffers else 0
        self.switch(buffers[index % len(buffers)])

    def next_active(self) -> None:
        """Alt-A: the buffer with highlights first, else the first with unread messages."""
        buffers = self.buffers
        target = next((b for b in buffers if b.highlights), None) or next(
            (b for b in buffers if b.unread), None
        )
        self.switch(target)

    def number(self, buffer: Buffer) -> int:
        return self.buffers.index(buffer) + 1

    def dm_buffer(self, peer: str) -> Buffer:
        """The conversation with `peer`, opened at the end of the list if new."""
        key = peer.casefold()
        buffer = self.dms.get(key)
        if buffer is None:
            buffer = self.dms[key] = Buffer("dm", peer)
            self.known_users.add(peer)
            self._opened(buffer)
        return buffer

    def thread_buffer(self, scope: Scope, name: str, root: int) -> Buffer:
        """The thread of message `root` of room or person `name`, opened at the end of the
        list if new (its root and replies come with `add_thread`)."""
        key = thread_key(scope, name, root)
        buffer = self.threads.get(key)
        if buffer is None:
            buffer = self.threads[key] = Buffer("thread", name, root=root, scope=scope, more=False)
            self._opened(buffer)
        return buffer

    def thread_of(self, msg: AnyMessage) -> Buffer | None:
        """The open thread buffer `msg` is the root of, or a reply in."""
        if "room" in msg:
            room: str = msg["room"]  # type: ignore[typeddict-item]
            key = thread_key("room", room, msg.get("thread") or msg["seq"])
        else:
            peer = msg["to"] if self.is_me(msg["from"]) else msg["from"]
            key = thread_key("dm", peer, msg.get("thread") or msg["seq"])
        return self.threads.get(key)

    def add_thread(
        self, buffer: Buffer, root: AnyMessage, replies: list[AnyMessage], more: bool
    ) -> None:
        """A thread's root (on top, apart) and its newest replies, oldest first,
        from `thread`; `more`: older replies remain, loaded as the view reaches
        the root (`add_older_replies`)."""
        if buffer.find(root["seq"]) is None:  # a new buffer, or one emptied by /clear
            buffer.lines.clear()
            buffer.lines.cleared = False
            buffer.first_seq = buffer.last_seq = 0
            self.add_messages(buffer, [root])
            buffer.lines.add(render.separator("thread: replies below, /broadcast to the room too"))
            buffer.set_read(root["seq"])  # only replies are news in a thread
            buffer.synced_seq = buffer.read_seq
            buffer.more, buffer.oldest_reply = more, 0
        else:
            self.update_message(root)
        self.add_messages(buffer, replies)
        if replies and not buffer.oldest_reply:
            buffer.oldest_reply = replies[0]["seq"]

    def add_older_replies(self, buffer: Buffer, replies: list[AnyMessage], more: bool) -> None:
        """A page of a thread's replies before the oldest shown: right under
        its root, the view kept where it is."""
        older = [m for m in replies if buffer.root < m["seq"] < buffer.oldest_reply]
        buffer.more = more and bool(older)
        root = buffer.find(buffer.root)
        if not older or root is None:
            return
        entries = buffer.lines.entries
        rule = entries[entries.index(root) + 1]  # "thread: replies below"
        buffer.lines.insert_below(rule, ((self._entry(buffer, m), m["ts"]) for m in older))
        buffer.oldest_reply = older[0]["seq"]
        self._requote(buffer, {m["seq"] for m in older})

    def close(self, buffer: Buffer) -> None:
        """Removes a buffer; the view moves to a neighbour."""
        buffers = self.buffers
        held = {"room": self.rooms, "dm": self.dms, "thread": self.threads}[buffer.kind]
        key = {"room": buffer.name, "dm": buffer.name.casefold()}.get(buffer.kind, buffer.key)
        if held.pop(key, None) is None:
            return
        if buffer.key in self.order:
            self.order.remove(buffer.key)
            self.order_changed = True
        if self.current is buffer:
            self.current = None
            rest = [b for b in buffers if b is not buffer]
            if rest:
                index = min(buffers.index(buffer), len(rest) - 1)
                self.switch(rest[index])

    # -- output --------------------------------------------------------

    def show(self, renderable: RenderableType | Line, room: str | None = None) -> None:
        """Adds a line or table to `room`'s buffer, or to the current one, after the day's
        separator if it starts a day there (a table is shown now: today's)."""
        target = self.rooms.get(room) if room else None
        ts = renderable.ts if isinstance(renderable, Line) else time.time()
        (target.lines if target else self.pane).add(renderable, ts)

    def note(self, *parts: str | tuple[str, str], room: str | None = None) -> None:
        self.show(render.notice(*parts), room)

    def error(self, text: str) -> None:
        self.show(render.error(text))

    # -- rooms -----------------------------------------------------------

    def add_room(
        self, info: RoomInfo, history: Iterable[RoomMessage] = (), *, backlog: bool = True
    ) -> Buffer:
        """Records a room I am in (from a join, create or rejoin) and the messages given.

        With `backlog`, history loaded into an empty buffer is what was said
        before I came: a rule separates it from the live messages that follow,
        and it counts as read. (Messages missed while offline are not backlog.)
        """
        room = self._room(info["name"])
        self.members_stale.add(room.name)
        empty = not room.last_seq
        room.topic, room.owner = info["topic"], info["owner"]
        room.pins = info.get("pins", 0)
        self._roles(room, info)
        self.add_messages(room, history)
        unread = info.get("unread", 0)
        if backlog and empty and unread:
            room.seed_unread(unread)  # the server's marker: the rule goes there
        elif backlog and empty and room.last_seq:
            room.lines.add(render.separator("backlog above, live below"))
            room.set_read(room.last_seq)
            if "unread" in info:  # nothing unread: the server's marker is there already
                room.synced_seq = room.read_seq
        return room

    @staticmethod
    def _roles(room: Buffer, info: RoomInfo) -> None:
        room.private = info.get("private", False)
        room.moderators = {name.casefold() for name in info.get("moderators", ())}
        room.muted = {name.casefold() for name in info.get("muted", ())}

    def _room(self, name: str) -> Buffer:
        """The room called `name`, added (without topic or owner yet) if I was not in it."""
        room = self.rooms.get(name)
        if room is None:
            room = self.rooms[name] = Buffer("room", name)
            room.members[self.me.casefold()] = self.me
            self._opened(room)
        self.known_rooms.add(name)
        return room

    def remove_room(self, name: str) -> None:
        """Closes a room's buffer, and the buffers of its threads."""
        room = self.rooms.get(name)
        if room is not None:
            for thread in [t for t in self.threads.values() if t.where == "room"]:
                if thread.name == name:
                    self.close(thread)
            self.close(room)

    def add_messages(self, room: Buffer, messages: Iterable[RoomMessage | DirectMessage]) -> int:
        """Adds messages: older than shown ones go on top, newer below; repeats are dropped.

        Returns how many were new.
        """
        older: list[RoomMessage | DirectMessage] = []
        newer: list[RoomMessage | DirectMessage] = []
        for msg in messages:
            seq = msg["seq"]
            if room.last_seq and seq < room.first_seq:
                older.append(msg)
            elif seq > room.last_seq:
                newer.append(msg)
        if older:
            room.lines.prepend((self._entry(room, m), m["ts"]) for m in older)
            room.first_seq = older[0]["seq"]
            self._requote(room, {m["seq"] for m in older})
        for msg in newer:
            room.lines.add_entry(self._entry(room, msg), msg["ts"])
            self._spoke(room, msg["from"], msg["ts"])
        if newer:
            room.first_seq = room.first_seq or newer[0]["seq"]
            room.last_seq = newer[-1]["seq"]
            room.last_ts = max(room.last_ts, newer[-1]["ts"])
        return len(older) + len(newer)

    def jump(
        self,
        buffer: Buffer,
        messages: list[RoomMessage] | list[DirectMessage],
        more: bool,
        more_after: bool,
    ) -> None:
        """Shows `messages`, a page around a linked message, instead of what `buffer`
        held; `more` and `more_after` say whether older and newer ones remain."""
        buffer.lines.clear()
        buffer.lines.cleared = False
        buffer.joins.clear()
        buffer.came.clear()
        buffer.first_seq = buffer.last_seq = 0
        self.add_messages(buffer, messages)
        buffer.more, buffer.more_after = more, more_after

    def add_newer(self, buffer: Buffer, messages: Iterable[RoomMessage | DirectMessage]) -> None:
        """A page after the newest loaded (`more_after`): added below, and the view stays
        where it is, so scrolling on shows it."""
        pane = buffer.lines
        held = not pane.scroll
        pane.scroll += held  # a view scrolled up keeps still as entries come below it
        self.add_messages(buffer, messages)
        pane.scroll -= held
        if not pane.scroll:
            pane.newer = 0

    def spotlight(self, buffer: Buffer, entry: Entry) -> None:
        """Marks the message `entry` (/goto went to it) until it is drawn again."""
        if isinstance(entry.renderable, Line):
            buffer.lines.redraw(entry, entry.renderable.marked(_ALL, render.FOUND))

    def _entry(self, buffer: Buffer, msg: AnyMessage) -> Entry:
        mine = self.is_me(msg["from"])
        entry = Entry(
            self._render(buffer, msg, mine),
            seq=msg["seq"],
            sender=msg["from"],
            mine=mine,
            highlight=self._names_me(buffer, msg, mine),
            message=msg,
        )
        self.known_users.add(msg["from"])
        return entry

    def _names_me(self, buffer: Buffer, msg: AnyMessage, mine: bool) -> bool:
        """A DM to me, or a message whose `mentions` (worked out by the server) name me,
        or whose text has my name or a highlight word of client.toml (outside code,
        as the server looks for mentions)."""
        if mine or msg.get("erased"):
            return False
        named = any(self.is_me(user) for user in msg.get("mentions", ()))
        text = msg["text"] if msg.get("plain") else markup.code_free(msg["text"])
        return buffer.where == "dm" or named or bool(self.mention.search(text))

    def _render(self, buffer: Buffer, msg: AnyMessage, mine: bool) -> Line:
        answered = None
        in_thread = buffer.kind == "thread"
        seq = msg.get("reply_to") if in_thread or "thread" not in msg else msg["thread"]
        if seq is not None and (quoted := buffer.find(seq)):
            answered = (quoted.sender or "?", quoted.gist)
        mention = None if mine else self.mention
        pictures = self._pictures(msg.get("files", ()))
        return render.message(
            msg,
            mention,
            me=self.me,
            answered=answered,
            ref=True,
            pictures=pictures,
            in_thread=in_thread,
        )

    def _pictures(self, files: Iterable[Attachment]) -> dict[str, render.Picture]:
        """The previews of the images among `files` whose thumbnails are here; the others
        are wanted (when previews are on)."""
        pictures = {}
        for file in files:
            if not self.previews or "width" not in file:
                continue
            data = self.thumbnails.get(file["id"])
            if data is not None:
                pictures[file["id"]] = render.Picture(partial(self._draw, data, file["id"]))
            elif file["id"] not in self.thumbnails_asked:
                self.thumbnails_wanted[file["id"]] = file
        return pictures

    def _draw(self, data: bytes, key: str, columns: int) -> list[Fragments]:
        size = (min(columns, PREVIEW_COLUMNS), PREVIEW_ROWS)
        return images.preview(data, *size, key, kitty=self.kitty)

    def add_thumbnail(self, file_id: str, data: bytes) -> None:
        """A thumbnail came: the loaded messages carrying its file show it."""
        self.thumbnails[file_id] = data
        if len(self.thumbnails) > THUMBNAILS_KEPT:
            del self.thumbnails[next(iter(self.thumbnails))]  # the oldest
        for buffer in self.buffers:
            for entry in buffer.messages():
                carried = entry.message.get("files", ()) if entry.message else ()
                if entry.message is not None and any(f["id"] == file_id for f in carried):
                    buffer.lines.redraw(entry, self._render(buffer, entry.message, entry.mine))

    def buffer_of(self, msg: AnyMessage) -> Buffer | None:
        """The open buffer `msg` belongs to: its room, or the conversation it is part of."""
        if "room" in msg:
            return self.rooms.get(msg["room"])  # type: ignore[typeddict-item]
        peer = msg["to"] if self.is_me(msg["from"]) else msg["from"]
        return self.dms.get(peer.casefold())

    def update_message(self, msg: AnyMessage) -> Entry | None:
        """Shows the new state of a message already loaded (edited, erased, reacted to),
        and of the loaded replies quoting it; returns its entry, if loaded (in its room
        or conversation, else in its thread)."""
        shown = None
        for buffer in (self.thread_of(msg), self.buffer_of(msg)):
            if buffer is not None:
                shown = self._update_in(buffer, msg) or shown
        return shown

    def _update_in(self, buffer: Buffer, msg: AnyMessage) -> Entry | None:
        entry = buffer.find(msg["seq"])
        if entry is None:
            return None
        entry.message = msg
        entry.highlight = self._names_me(buffer, msg, entry.mine)
        buffer.lines.redraw(entry, self._render(buffer, msg, entry.mine))
        if msg["seq"] > buffer.read_seq:
            buffer.set_read(buffer.read_seq)  # unread: an erasure or a new mention counts
        self._requote(buffer, {msg["seq"]})
        return entry

    def _requote(self, buffer: Buffer, answered: set[int]) -> None:
        """Draws again the replies to the messages `answered` (changed, or just loaded)."""
        for reply in buffer.messages():
            msg = reply.message
            if msg is not None and (msg.get("reply_to") or msg.get("thread")) in answered:
                buffer.lines.redraw(reply, self._render(buffer, msg, reply.mine))

    def _spoke(self, buffer: Buffer, user: str, ts: float) -> None:
        """Remembers when `user` last spoke here, and shows their folded join if it is recent."""
        key = user.casefold()
        buffer.spoke[key] = max(ts, buffer.spoke.get(key, 0.0))
        join = buffer.joins.pop(key, None)
        if join is not None and isinstance(join.renderable, Line):
            join.folded = ts - join.renderable.ts > UNMASK_DELAY

    # -- people ----------------------------------------------------------

    def people(self, buffer: Buffer) -> list[tuple[str, bool]]:
        """The room's members as (name, online), online first, then by name."""
        online = {name.casefold() for name in self.online} | {self.me.casefold()}
        people = [(name, key in online) for key, name in buffer.members.items()]
        return sorted(people, key=lambda p: (not p[1], p[0].casefold()))

    def mark(self, buffer: Buffer, name: str) -> str:
        """The role mark of `name` in room `buffer` (render.role_mark)."""
        key = name.casefold()
        owner = buffer.owner is not None and key == buffer.owner.casefold()
        return render.role_mark(owner, key in self.admins, key in buffer.moderators)

    def set_members(self, name: str, members: Iterable[Member]) -> None:
        """Room `name`'s members as the server lists them (the `members` reply):
        the whole list, with who is online, away, an admin, a moderator, muted."""
        self.members_stale.discard(name)
        room = self.rooms.get(name)
        if room is None:
            return
        room.members = {}
        room.moderators, room.muted = set(), set()
        for member in members:
            user = member["username"]
            key = user.casefold()
            room.members[key] = user
            self.known_users.add(user)
            if member["online"]:
                self.online.add(user)
            else:
                self.online = {u for u in self.online if u.casefold() != key}
            self.set_away(user, member["away"])
            if member["admin"]:
                self.admins.add(key)
            else:
                self.admins.discard(key)
            if member["role"] == "owner":
                room.owner = user
            elif member["role"] == "moderator":
                room.moderators.add(key)
            if member["muted"]:
                room.muted.add(key)

    def set_online(self, users: Iterable[Profile]) -> None:
        """Who is online, in which rooms, and who of them is away (the `online` reply;
        the rooms' member lists come from `members`, this only adds to them)."""
        self.online = set()
        for user in users:
            name = user["username"]
            self.online.add(name)
            self.known_users.add(name)
            self.set_away(name, user.get("away"))
            if user.get("admin"):
                self.admins.add(name.casefold())
            else:
                self.admins.discard(name.casefold())
            for room_name in user["rooms"]:
                room = self.rooms.get(room_name)
                if room is not None:
                    room.members[name.casefold()] = name

    def set_away(self, user: str, text: str | None) -> None:
        if text:
            self.away[user.casefold()] = text
        else:
            self.away.pop(user.casefold(), None)

    def is_away(self, user: str) -> bool:
        return user.casefold() in self.away

    # -- search ------------------------------------------------------------

    def lastlog(self, words: str) -> int:
        """Shows again, below, the loaded lines of the current buffer containing `words`
        (any case) with the matches marked; returns how many."""
        pattern = re.compile(re.escape(words), re.IGNORECASE)
        pane = self.pane
        found = [
            entry.renderable.marked(pattern, render.FOUND)
            for entry in pane.entries
            if isinstance(entry.renderable, Line)
            and not entry.quoted
            and pattern.search(entry.renderable.body.plain)
        ]
        pane.add_entry(
            Entry(
                render.notice(
                    f"lastlog: {render.count(len(found), 'line')} with ", (words, render.FOUND)
                ),
                quoted=True,
            )
        )
        for line in found:
            pane.add_entry(Entry(line, quoted=True))
        return len(found)

    # -- events ----------------------------------------------------------

    def apply(self, event: Event) -> Alert | None:
        """Folds one server event in; an Alert when it names me or is a DM to me."""
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
        elif event["event"] in ("edited", "erased", "reaction"):
            self.update_message(event["message"])
        elif event["event"] == "read":
            self._on_read(event)
        elif event["event"] == "room_updated":
            self._on_room_updated(event)
        elif event["event"] == "kicked":
            self._on_kicked(event)
        elif event["event"] == "banned":
            self._on_banned(event)
        elif event["event"] == "muted":
            self._on_muted(event)
        elif event["event"] == "invited":
            return self._on_invited(event)
        elif event["event"] == "typing":
            self._on_typing(event)
        elif event["event"] == "pinned":
            self._on_pinned(event)
        return None  # hello: connect() has used it already

    def _arrived(self, buffer: Buffer, msg: RoomMessage | DirectMessage) -> Alert | None:
        """Adds one live message; counts it unless on screen."""
        if msg["seq"] <= buffer.last_seq:
            return None  # a repeat (a gap fill and the live event crossed)
        self.typists.stopped(buffer.key, msg["from"])
        if buffer.more_after:  # comes with the pages after the ones shown
            buffer.last_ts = max(buffer.last_ts, msg["ts"])
            if not self._names_me(buffer, msg, self.is_me(msg["from"])):
                return None
            return Alert(buffer.label, msg["from"], msg["text"], buffer is self.current)
        mine = self.is_me(msg["from"])
        if buffer is not self.current and not buffer.unread and not mine:
            buffer.lines.mark_unread()
        self.add_messages(buffer, [msg])
        entry = buffer.lines.entries[-1]
        if buffer is self.current:
            if not buffer.lines.scroll:  # read only once scrolled down to it
                buffer.read_seq = msg["seq"]
        elif not mine:
            buffer.unread += 1
            buffer.highlights += entry.highlight
        if not entry.highlight:
            return None
        return Alert(buffer.label, msg["from"], msg["text"], buffer is self.current)

    def _on_message(self, event: MessageEvent) -> Alert | None:
        room = self.rooms.get(event["room"])
        return None if room is None else self._in(room, event)

    def _on_dm(self, event: DmEvent) -> Alert | None:
        outgoing = self.is_me(event["from"])
        buffer = self.dm_buffer(event["to"] if outgoing else event["from"])
        self.known_users.update((event["from"], event["to"]))
        return self._in(buffer, event)

    def _in(self, buffer: Buffer, msg: RoomMessage | DirectMessage) -> Alert | None:
        """A live message of `buffer`'s room or conversation; a thread reply goes to its
        thread's buffer, if open, and counts on its root, and shows in the timeline
        only when it was broadcast."""
        if msg.get("thread") is None:
            return self._arrived(buffer, msg)
        self._bump(buffer, msg)
        alert = None
        if (thread := self.thread_of(msg)) is not None:
            alert = self._arrived(thread, msg)
        if msg.get("broadcast"):
            alert = self._arrived(buffer, msg) or alert
        elif alert is None and self._names_me(buffer, msg, self.is_me(msg["from"])):
            alert = Alert(buffer.label, msg["from"], msg["text"], seen=False)
        return alert

    def _bump(self, buffer: Buffer, reply: AnyMessage) -> None:
        """Counts a new reply on its root where the root is loaded (the server's summary
        comes with the root whenever it is fetched again)."""
        root = buffer.find(reply.get("thread") or 0)
        if root is None or root.message is None:
            return
        summary = root.message.get("thread_summary")
        count = summary["replies"] if summary else 0
        others = [u for u in (summary["participants"] if summary else []) if u != reply["from"]]
        bumped = dict(root.message)
        bumped["thread_summary"] = {
            "replies": count + 1,
            "last": reply["ts"],
            "participants": [reply["from"], *others][:5],
        }
        self.update_message(bumped)  # type: ignore[arg-type]

    def add_conversation(self, info: ConversationInfo) -> Buffer:
        """A conversation the server lists (`conversations`, read ones too): its buffer,
        opened if need be; its messages are fetched when it is shown."""
        buffer = self.dm_buffer(info["with"])
        buffer.last_ts = max(buffer.last_ts, info["ts"])
        return buffer

    def add_dms(self, buffer: Buffer, messages: list[DirectMessage], unread: int = 0) -> None:
        """A page of a conversation from `dms` (which the server then counts as read).

        `unread`: how many of the other person's newest messages are not seen
        yet (login's count); they follow an `unread` rule and are counted.
        """
        theirs = [m for m in messages if not self.is_me(m["from"]) and m["seq"] > buffer.last_seq]
        split = theirs[-unread]["seq"] if 0 < unread <= len(theirs) else None
        if split is None or buffer is self.current:
            self.add_messages(buffer, messages)
            buffer.mark_read()
        else:
            self.add_messages(buffer, [m for m in messages if m["seq"] < split])
            buffer.set_read(buffer.last_seq)
            buffer.lines.mark_unread()
            self.add_messages(buffer, [m for m in messages if m["seq"] >= split])
            buffer.set_read(buffer.read_seq)
        buffer.synced_seq = max(buffer.synced_seq, buffer.last_seq)

    def is_me(self, name: str) -> bool:
        return name.casefold() == self.me.casefold()

    def _presence_line(
        self,
        buffer: Buffer,
        user: str,
        line: Line,
        come: str = "",
        going: str = "",
        short: bool = False,
    ) -> None:
        """Adds a join/leave/presence line, folded unless `user` spoke here lately.

        A coming line is remembered by its kind (`come`: "online", "joined");
        `going` names the kind that ends: within SHORT_VISIT of its coming line,
        or after a `short` visit to the server, both lines are folded.
        """
        key = user.casefold()
        spoke = buffer.spoke.get(key, 0.0)
        folded = time.time() - spoke > SMART_DELAY
        came = buffer.came.pop((key, going), None) if going else None
        if came is not None and isinstance(came.renderable, Line):
            short = short or line.ts - came.renderable.ts < SHORT_VISIT
        if short:
            folded = True
            buffer.joins.pop(key, None)
            if came is not None:
                came.folded = True
        entry = buffer.lines.add(line, folded=folded)
        if come:
            buffer.came[key, come] = entry
        if come and folded:
            buffer.joins[key] = entry

    def _on_joined(self, event: Joined) -> None:
        if self.is_me(event["user"]):
            # Mine: from this session's /join (its reply says more) or another session.
            self._room(event["room"])
            return
        self.known_users.add(event["user"])
        room = self.rooms.get(event["room"])
        if room is not None:
            room.members[event["user"].casefold()] = event["user"]
            self.online.add(event["user"])  # joining takes a session
            self._presence_line(room, event["user"], render.event_line(event), come="joined")

    def _on_left(self, event: Left) -> None:
        if self.is_me(event["user"]):
            self.remove_room(event["room"])
            return
        room = self.rooms.get(event["room"])
        if room is not None:
            room.members.pop(event["user"].casefold(), None)
            self._presence_line(room, event["user"], render.event_line(event), going="joined")

    def _on_presence(self, event: Presence) -> None:
        user = event["user"]
        self.known_users.add(user)
        was_away = self.away.get(user.casefold())
        if "away" in event:
            self.set_away(user, event["away"])
        online = user.casefold() in {u.casefold() for u in self.online}
        if event["online"] and online:  # already online: their away text changed
            if self.away.get(user.casefold()) != was_away:
                line = render.away_line(user, event.get("away"))
                for buffer in self._buffers_with(user):
                    self._presence_line(buffer, user, line)
            else:  # no change: a login after all, and the list said online too early
                self.came_online[user.casefold()] = time.time()
            return
        short = False
        if event["online"]:
            self.came_online[user.casefold()] = time.time()
            self.online.add(user)
            if not any(user.casefold() in room.members for room in self.rooms.values()):
                # A new account (made a member of the default rooms without
                # `joined`), or a list out of date: the session asks again.
                self.members_stale.update(self.rooms)
        else:
            self.online = {u for u in self.online if u.casefold() != user.casefold()}
            came = self.came_online.pop(user.casefold(), None)
            short = came is not None and time.time() - came < SHORT_VISIT
        online = event["online"]
        for buffer in self._buffers_with(user):
            line = render.event_line(event)
            come, going = ("online", "") if online else ("", "online")
            self._presence_line(buffer, user, line, come=come, going=going, short=short)

    def _buffers_with(self, user: str) -> Iterator[Buffer]:
        key = user.casefold()
        yield from (room for room in self.rooms.values() if key in room.members)
        if key in self.dms:
            yield self.dms[key]

    def _on_read(self, event: ReadMoved) -> None:
        """Another terminal of mine read up to `seq`: the counts here follow."""
        if (root := event.get("thread")) is not None:
            scope: Scope = "room" if "room" in event else "dm"
            name = event.get("room") or event.get("with", "")
            buffer = self.threads.get(thread_key(scope, name, root))
        elif "room" in event:
            buffer = self.rooms.get(event["room"])
        else:
            buffer = self.dms.get(event.get("with", "").casefold())
        if buffer is not None:
            buffer.set_read(event["seq"])
            buffer.synced_seq = max(buffer.synced_seq, event["seq"])

    def _on_typing(self, event: TypingEvent) -> None:
        """Someone types in a room of mine, or to me: `with` is then the typer."""
        where = f"#{event['room']}" if "room" in event else event.get("with", "").casefold()
        if not self.is_me(event["user"]):
            self.typists.typing(where, event["user"], event["on"], time.time())

    def _on_pinned(self, event: PinnedEvent) -> None:
        """A message of a room of mine was pinned or unpinned: a line there says which."""
        self.last_pinned = (event["room"], event["seq"], event["on"])
        room = self.rooms.get(event["room"])
        if room is None:
            return
        room.pins = max(0, room.pins + (1 if event["on"] else -1))
        entry = room.find(event["seq"])
        said = None
        if entry is not None and not entry.erased:
            said = (entry.sender or "?", entry.gist)
        room.lines.add(render.pinned_line(event, said))

    def _on_room_created(self, event: RoomCreated) -> None:
        self.known_rooms.add(event["room"]["name"])
        self.show(render.event_line(event))

    def _on_room_deleted(self, event: RoomDeleted) -> None:
        self.known_rooms.discard(event["room"])
        self.deleted.add(event["room"])
        self.remove_room(event["room"])
        self.show(render.deleted_line(event, self.is_me(event["by"])))

    def _on_topic(self, event: TopicChanged) -> None:
        room = self.rooms.get(event["room"])
        if room is not None:
            room.topic = event["topic"]
            room.lines.add(render.event_line(event))

    # -- moderation --------------------------------------------------------

    def _on_room_updated(self, event: RoomUpdated) -> None:
        """Roles changed: a line for each moderator named or dropped."""
        info = event["room"]
        room = self.rooms.get(info["name"])
        if room is None:
            return
        before = room.moderators
        self._roles(room, info)
        for name in info.get("moderators", ()):
            if name.casefold() not in before:
                room.lines.add(render.role_line(event["by"], name, info["name"], True))
        for key in sorted(before - room.moderators):
            name = room.members.get(key, key)
            room.lines.add(render.role_line(event["by"], name, info["name"], False))

    def _on_kicked(self, event: Kicked) -> None:
        """Someone was kicked or banned; when it is me, the buffer closes and the reason
        shows where I am now (and stays in the home pane's scrollback)."""
        line = render.kicked_line(event, self.is_me(event["user"]))
        room = self.rooms.get(event["room"])
        if self.is_me(event["user"]):
            self.remove_room(event["room"])
            self.pane.add(line)
            return
        if room is not None:
            room.members.pop(event["user"].casefold(), None)
            room.moderators.discard(event["user"].casefold())
            room.lines.add(line)

    def _on_banned(self, event: Banned) -> None:
        """Another of the room's staff banned someone not in it, or unbanned
        someone: told in the room's buffer, or where I am if I am not in it."""
        line = render.banned_line(event)
        room = self.rooms.get(event["room"])
        (room.lines if room is not None else self.pane).add(line)

    def _on_muted(self, event: Muted) -> None:
        room = self.rooms.get(event["room"])
        if room is None:
            return
        key = event["user"].casefold()
        if event["on"]:
            room.muted.add(key)
        else:
            room.muted.discard(key)
        room.lines.add(render.muted_line(event, self.is_me(event["user"])))

    def add_invitations(self, rooms: list[RoomInfo]) -> None:
        """The invitations a login tells of: made while this user was away."""
        for info in rooms:
            self.known_rooms.add(info["name"])
            self.pane.add(render.invitation_line(info))

    def _on_invited(self, event: Invited) -> Alert:
        self.known_rooms.add(event["room"]["name"])
        line = render.invited_line(event)
        self.pane.add(line)
        return Alert(f"#{event['room']['name']}", event["by"], line.body.plain, seen=False)
