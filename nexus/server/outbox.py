"""Every frame the server sends leaves through the outbox: its one owner.

Each connection has an `Outlet`, its queue of frames; nothing else queues
or writes. The outbox's jobs, each measured in docs/performance.md:
- Batching: frames queue on their outlet, and each outlet is written once
  per flush, whatever number of frames it got.
- Room broadcasts: the frames a room gets between two flushes are kept once,
  in a `Broadcast`, and each member's outlet holds a `View` of it; a message
  to a room of 1,000 is one list append, not 1,000. An outlet that gets a
  frame of its own (a reply, a DM) in between closes its view, and the next
  room frame opens a new one after it, so batching never reorders what a
  connection receives.
- Holding: while the store has changes not yet written, nothing is flushed.
  The store calls `hold()` when it applies the first change of a group,
  `cut()` when it starts writing what was applied so far and `written()`
  once that is written, so a reply or an event never tells anyone about a
  change a crash could take back. An engine that writes while the loop
  goes on may apply more changes between `cut()` and `written()`: then only
  the frames queued before the cut go, and the rest wait for the next
  write. If the write fails, the
  store calls `refuse()`: frames queued before the hold go out as they
  are, events queued since are dropped, and each reply queued since is
  kept, or refused when its request's own change was not written. Every
  request still gets its reply, in order.
- Slow readers: a reader is judged over time, never by one burst. An
  outlet whose unsent bytes pass the soft limit must keep taking them: if
  it takes less than the soft limit's worth within `slow_timeout` seconds,
  or its unsent bytes pass the hard limit, it is dropped. A burst that
  leaves megabytes queued for readers who read is no reason to drop them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from itertools import accumulate
from typing import Any, Protocol

log = logging.getLogger("nexus.outbox")

CHECK_EVERY = 1.0  # seconds between looks at lagging readers that get nothing new
HEAD = 512  # bytes of a slice looked at for its first frame (longer ones: the whole slice)


class Link(Protocol):
    """The byte-level side of a connection, provided by its front end."""

    # Bytes the link's framing added to what it was given (negative: took
    # away), ever: a front end that converts frames (WebSocket messages, IRC
    # lines) counts it, so that what the peer took is measured in the
    # transport's bytes, as `backlog` is. A link that writes what it is given
    # keeps 0 (a class attribute: nothing to count on its writes).
    reframed: int

    def write(self, data: bytes | memoryview) -> None:
        """Sends `data` (one or more newline-ended frames), buffering what the
        peer cannot take yet. It may be shared with other links and must not
        be copied where the transport can avoid it."""

    def writelines(self, parts: list[bytes | memoryview]) -> None:
        """Sends `parts` in order, as `write` does for each."""

    def close(self) -> None:
        """Closes once what was written has gone out."""

    def abort(self) -> None:
        """Drops the connection and whatever is still buffered."""

    def backlog(self) -> int:
        """Bytes written but not yet taken by the operating system."""


class Broadcast:
    """One room's frames between two flushes, shared by its members' outlets.

    At flush time the frames are joined once; every member's view is that
    one bytes object or a slice of it (a memoryview, not a copy), so a burst
    held for many slow members costs its size once, not once per member.
    """

    __slots__ = ("_ends", "_joined", "frames", "roster", "stragglers")

    def __init__(self, roster: int) -> None:
        self.frames: list[bytes] = []
        self.roster = roster  # the room's membership generation it was made for
        # Outlets that got a frame of their own since their view closed: the
        # next room frame opens a new view for each.
        self.stragglers: list[Outlet] = []
        self._joined: bytes | None = None
        self._ends: list[int] | None = None  # where each frame ends in the joined bytes

    def all_bytes(self) -> bytes:
        """Every frame, joined once for all the members that share it."""
        if self._joined is None:
            self._joined = b"".join(self.frames)
        return self._joined

    def span(self, start: int, end: int | None) -> memoryview:
        """Frames [start, end) as a slice of the joined bytes."""
        if self._ends is None:
            self._ends = list(accumulate(map(len, self.frames)))
        ends = self._ends
        first = ends[start - 1] if start else 0
        last = ends[-1 if end is None else end - 1] if end != 0 else 0
        return memoryview(self.all_bytes())[first:last]


def slice_start(whole: bytes, part: bytes | memoryview, starts: Mapping[bytes, int]) -> int | None:
    """Where `part`, a member's slice of a room's write `whole` (`Broadcast.span`),
    starts in it: a front end that converts a room's write once for all members
    (WebSocket framing, IRC lines) finds each slice's share of that by content,
    with no search. Mostly a slice is the write's head (a view closed by the
    member's own reply) or tail (the view opened after it); else it starts where
    its first frame does, as `starts` tells (each frame, without its newline ->
    where it first starts), checked byte for byte, so equal bytes convert alike.
    None: it is found nowhere (no slice the outbox made). Whether both its ends
    fall between frames is for the caller, which knows where frames start."""
    if whole.startswith(part):
        return 0
    if whole.endswith(part):
        return len(whole) - len(part)
    head = bytes(part[:HEAD])
    cut = head.find(b"\n")
    if cut < 0:  # a long first frame
        head = bytes(part)
        cut = head.find(b"\n")
    start = starts.get(head[:cut])
    if start is None or not whole.startswith(part, start):
        return None
    return start


class View:
    """An outlet's window on a broadcast: frames [start, end), end None = to the end."""

    __slots__ = ("broadcast", "end", "start")

    def __init__(self, broadcast: Broadcast, start: int) -> None:
        self.broadcast = broadcast
        self.start = start
        self.end: int | None = None

    def bytes(self) -> bytes | memoryview:
        if self.start == 0 and self.end is None:
            return self.broadcast.all_bytes()
        return self.broadcast.span(self.start, self.end)


class Outlet:
    """One connection's outbound queue and the state the slow-reader policy keeps on it."""

    __slots__ = (
        "closing",
        "dead",
        "held_from",
        "lag_mark",
        "lagging_since",
        "link",
        "name",
        "parts",
        "reply_bytes",
        "views",
        "written",
    )

    def __init__(self, link: Link, name: str) -> None:
        self.link = link
        self.name = name  # for the log
        self.parts: list[bytes | View] = []  # frames and views, in the order queued
        self.views: list[View] = []  # views still open: later room frames join them
        self.reply_bytes = 0  # bytes of replies queued since the last flush
        self.held_from: int | None = None  # index of the first part queued while held
        self.closing = False  # close once the queue has gone out
        self.dead = False  # aborted: nothing more is queued or written
        self.written = 0  # bytes handed to the link, ever
        self.lagging_since: float | None = None  # when its backlog passed the soft limit
        self.lag_mark = 0  # bytes the peer had taken by then

    def backed_up(self, limit: int) -> bool:
        """Whether replies queued since the last flush and bytes the peer has not
        taken pass `limit`: answering more of its requests would only pile up."""
        return self.reply_bytes + self.link.backlog() > limit

    def close(self) -> None:
        """Closes once what is queued has gone out."""
        if self.dead or self.closing:
            return
        self.closing = True
        if not self.parts:
            self.link.close()

    def abort(self) -> None:
        """Drops the connection and everything unsent at once."""
        self.dead = True
        self.parts = []
        self.views.clear()
        self.link.abort()

    def taken(self) -> int:
        """Bytes the operating system has taken from this outlet, ever, counted
        as they cross the socket (after the link's framing)."""
        link = self.link
        return self.written + link.reframed - link.backlog()

    def __repr__(self) -> str:
        return f"<Outlet {self.name}>"


class Outbox:
    """Outlets with frames queued, the open broadcasts, the hold and the slow-reader policy.

    `soft` and `hard` are byte limits on what an outlet leaves unsent;
    `slow_timeout` is how long it may stay past `soft` without taking at
    least `soft` bytes.
    """

    def __init__(self, soft: int, hard: int, slow_timeout: float) -> None:
        self.soft = soft
        self.hard = max(hard, soft)
        self.slow_timeout = slow_timeout
        self.held = False  # the store has changes not written yet
        self._cutting = False  # the store is writing a cut
        # Once a change is applied during that write: each outlet queued by
        # then and where its queue stood, and how many held replies it had.
        self._marks: list[tuple[Outlet, int]] | None = None
        self._marked_replies = 0
        self._dirty: list[Outlet] = []
        self._broadcasts: dict[Any, Broadcast] = {}
        # Replies queued while held, in order: (outlet, reply, request id,
        # whether the request's own change is among those not yet written).
        self._held_replies: list[tuple[Outlet, bytes, Any, bool]] = []
        self._flush_handle: asyncio.Handle | None = None
        self._lagging: set[Outlet] = set()
        self._watch: asyncio.TimerHandle | None = None

    # -- queueing ----------------------------------------------------------

    def send(self, outlet: Outlet, data: bytes) -> None:
        """Queues encoded frames for `outlet` alone."""
        if outlet.dead or outlet.closing:
            return
        if outlet.views:
            # Room frames arriving from now on belong after this one.
            for view in outlet.views:
                broadcast = view.broadcast
                view.end = len(broadcast.frames)
                broadcast.stragglers.append(outlet)
            outlet.views.clear()
        self._queue(outlet, data)

    def reply(self, outlet: Outlet, data: bytes, rid: Any, changed: bool) -> None:
        """Queues the reply to `outlet`'s request `rid`; `changed` says the
        request applied a change the store has not written yet."""
        if outlet.dead or outlet.closing:
            return
        self.send(outlet, data)
        outlet.reply_bytes += len(data)
        if self.held:
            self._held_replies.append((outlet, data, rid, changed))

    def broadcast(self, room: Any, roster: int, data: bytes, members: Iterable[Outlet]) -> None:
        """Queues `data` for the outlets in `members` (evaluated only when a
        new broadcast starts: on the room's first frame since the last flush,
        or after its membership generation `roster` changed)."""
        current = self._broadcasts.get(room)
        if current is None or current.roster != roster:
            current = self._broadcasts[room] = Broadcast(roster)
            current.frames.append(data)
            for outlet in members:
                self._watch_from(outlet, current, 0)
            return
        current.frames.append(data)
        if current.stragglers:
            start = len(current.frames) - 1
            for outlet in current.stragglers:
                self._watch_from(outlet, current, start)
            current.stragglers.clear()

    def regroup(self) -> None:
        """Closes every open broadcast: who is in a room, or which connections
        a user has, changed; the next frame for each room starts afresh."""
        self._broadcasts.clear()

    def _watch_from(self, outlet: Outlet, broadcast: Broadcast, start: int) -> None:
        if outlet.dead or outlet.closing:
            return
        view = View(broadcast, start)
        self._queue(outlet, view)
        outlet.views.append(view)

    def _queue(self, outlet: Outlet, part: bytes | View) -> None:
        parts = outlet.parts
        if not parts:
            self._dirty.append(outlet)
            if self._flush_handle is None:
                self._flush_handle = asyncio.get_running_loop().call_soon(self._flush_soon)
        if self.held and outlet.held_from is None:
            outlet.held_from = len(parts)
        parts.append(part)

    def abort(self, outlet: Outlet) -> None:
        """Drops the connection and everything unsent at once."""
        outlet.abort()
        self._lagging.discard(outlet)

    # -- the store's hold --------------------------------------------------

    def hold(self) -> None:
        """The store applied a change it has not written: hold everything from
        here until `flush()` or `refuse()`. Open broadcasts close, so frames
        from before the hold never share a view with frames from after it."""
        self.held = True
        self._broadcasts.clear()
        if self._cutting and self._marks is None:
            # The first change applied while a cut is written: what is queued
            # so far may go with the cut, nothing queued from now on.
            self._marks = [(outlet, len(outlet.parts)) for outlet in self._dirty]
            self._marked_replies = len(self._held_replies)

    def cut(self) -> None:
        """The store is writing what was applied until now. Once it is written
        (`written()`) everything queued goes, unless a change was applied
        meanwhile: then only what was queued before that change."""
        self._broadcasts.clear()
        self._cutting = True
        self._marks = None

    def written(self) -> None:
        """The cut is written: its frames go."""
        marks, self._marks = self._marks, None
        self._cutting = False
        if marks is None:
            self.flush()
            return
        self._broadcasts.clear()
        del self._held_replies[: self._marked_replies]
        for outlet, mark in marks:
            self._write_cut(outlet, mark)
        self._dirty = [outlet for outlet in self._dirty if outlet.parts or outlet.closing]

    def _write_cut(self, outlet: Outlet, mark: int) -> None:
        """Writes an outlet's first `mark` parts; the rest stay queued, held."""
        rest = outlet.parts[mark:]
        if not rest:
            self._write(outlet)
            return
        outlet.parts = outlet.parts[:mark]
        views, closing = outlet.views, outlet.closing
        outlet.closing = False  # not before the rest has gone too
        self._write(outlet)
        outlet.closing = closing
        if outlet.dead:
            return
        outlet.parts = rest
        outlet.views = [view for view in views if any(view is part for part in rest)]
        outlet.held_from = 0  # all queued while held
        outlet.reply_bytes = sum(len(part) for part in rest if type(part) is bytes)

    def _flush_soon(self) -> None:
        self._flush_handle = None
        if not self.held:  # otherwise the store flushes after its write
            self.flush()

    def flush(self) -> None:
        """Writes every outlet's queue, one write each."""
        self.held = False
        self._broadcasts.clear()
        self._held_replies.clear()
        dirty, self._dirty = self._dirty, []
        for outlet in dirty:
            self._write(outlet)

    def refuse(self, refusal: Callable[[Any], bytes]) -> None:
        """After a failed write: keeps what was queued before the hold, drops the
        events queued since, and keeps each reply queued since, or replaces it
        by `refusal(request id)` when its request's own change was not written."""
        self.held = False
        self._marks = None
        self._cutting = False
        self._broadcasts.clear()
        held: dict[Outlet, list[bytes]] = {}
        for outlet, data, rid, changed in self._held_replies:
            held.setdefault(outlet, []).append(refusal(rid) if changed else data)
        self._held_replies = []
        for outlet in self._dirty:
            if outlet.held_from is not None:
                replies = held.get(outlet, [])
                outlet.parts = [*outlet.parts[: outlet.held_from], *replies]
                outlet.views.clear()  # their broadcasts closed at the hold
                outlet.reply_bytes = sum(map(len, replies))
                outlet.held_from = None
        self._dirty = [outlet for outlet in self._dirty if outlet.parts or outlet.closing]
        if self._dirty and self._flush_handle is None:
            self._flush_handle = asyncio.get_running_loop().call_soon(self._flush_soon)

    # -- writing and the slow-reader policy --------------------------------

    def _write(self, outlet: Outlet) -> None:
        parts = outlet.parts
        outlet.parts = []
        outlet.views.clear()
        outlet.reply_bytes = 0
        outlet.held_from = None
        if outlet.dead:
            return
        if parts:
            # Called once per outlet per flush: the single-part case (a room's
            # frames, or replies alone) takes no list and no extra call.
            link = outlet.link
            if len(parts) == 1:
                part = parts[0]
                data = part if type(part) is bytes else part.bytes()  # type: ignore[union-attr]
                link.write(data)
                outlet.written += len(data)
            else:
                datas = [part if type(part) is bytes else part.bytes() for part in parts]  # type: ignore[union-attr]
                link.writelines(datas)
                outlet.written += sum(map(len, datas))
            backlog = link.backlog()
            if backlog > self.soft or outlet.lagging_since is not None:
                self._judge(outlet, backlog)
        if outlet.closing and not outlet.dead:
            outlet.link.close()

    def _judge(self, outlet: Outlet, backlog: int) -> None:
        """Drops an outlet past the hard limit; starts timing one past the soft limit."""
        if backlog > self.hard:
            self._drop(outlet, f"{backlog} bytes unsent")
        elif backlog > self.soft:
            if outlet.lagging_since is None:
                self._lagging_from_now(outlet)
        elif outlet.lagging_since is not None:
            self.caught_up(outlet)

    def _lagging_from_now(self, outlet: Outlet) -> None:
        outlet.lagging_since = time.monotonic()
        outlet.lag_mark = outlet.taken()
        self._lagging.add(outlet)
        if self._watch is None:
            self._watch = asyncio.get_running_loop().call_later(CHECK_EVERY, self._check_lagging)

    def caught_up(self, outlet: Outlet) -> None:
        """`outlet`'s unsent bytes fell back under the soft limit (its front end
        says so as soon as it knows)."""
        outlet.lagging_since = None
        self._lagging.discard(outlet)

    def _check_lagging(self) -> None:
        """Drops each lagging outlet that took less than `soft` bytes in `slow_timeout`."""
        self._watch = None
        now = time.monotonic()
        for outlet in list(self._lagging):
            if outlet.dead or outlet.link.backlog() <= self.soft:
                self.caught_up(outlet)
                continue
            taken = outlet.taken()
            if taken - outlet.lag_mark >= self.soft:  # reading, if slowly: a new chance
                outlet.lagging_since, outlet.lag_mark = now, taken
            elif now - (outlet.lagging_since or now) >= self.slow_timeout:
                self._drop(outlet, f"took {taken - outlet.lag_mark} bytes in {self.slow_timeout} s")
        if self._lagging:
            self._watch = asyncio.get_running_loop().call_later(CHECK_EVERY, self._check_lagging)

    def _drop(self, outlet: Outlet, why: str) -> None:
        log.warning("%s fell too far behind (%s), disconnecting", outlet.name, why)
        self.abort(outlet)
