"""Every frame the server sends leaves through the outbox: its one owner.

Each connection has an `Outlet`, its queue of frames; nothing else queues
or writes. Frames are queued in their typed form with their JSON line
(frames.py) and encoded at the write, in the format the connection's link
reads (JSON lines, WebSocket messages), or handed to a link that reads them
itself (IRC). The outbox's jobs, each measured in docs/performance.md:
- Batching: frames queue on their outlet, and each outlet is written once
  per flush, whatever number of frames it got.
- Room broadcasts: the frames a room gets between two flushes are kept once,
  in a `Broadcast`, and each member's outlet holds a `View` of it; a message
  to a room of 1,000 is one list append, not 1,000, and is encoded once per
  format its members read, not once per member. An outlet that gets a
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
from collections.abc import Callable, Hashable, Iterable
from typing import Any, Protocol, TypeVar, cast

from nexus.server.clock import Clock, LoopClock, Timer
from nexus.server.frames import JSON_LINES, Encoded, Format, Frame

log = logging.getLogger("nexus.outbox")

CHECK_EVERY = 1.0  # seconds between looks at lagging readers that get nothing new

T = TypeVar("T")


class Link(Protocol):
    """The byte-level side of a connection, provided by its front end."""

    # How its peer reads frames: the outbox encodes them so (a room's frames
    # once for all members of the format) and writes the bytes. None: the
    # link reads the frames itself (`take`), as a front end whose lines
    # depend on each connection's state does.
    format: Format | None

    # Bytes the link wrote of its own (negative: took away from what it was
    # given), ever, so that what the peer took is measured in the
    # transport's bytes, as `backlog` is. A link that writes only what it is
    # given keeps 0 (a class attribute: nothing to count on its writes).
    reframed: int

    def write(self, data: bytes | memoryview) -> None:
        """Sends `data` (one or more encoded frames), buffering what the peer
        cannot take yet. It may be shared with other links and must not be
        copied where the transport can avoid it."""

    def writelines(self, parts: list[bytes | memoryview]) -> None:
        """Sends `parts` in order, as `write` does for each."""

    def close(self) -> None:
        """Closes once what was written has gone out."""

    def abort(self) -> None:
        """Drops the connection and whatever is still buffered."""

    def backlog(self) -> int:
        """Bytes written but not yet taken by the operating system."""


class FrameLink(Link, Protocol):
    """A link without a format, reading the frames itself."""

    def take(self, parts: list[Frame | View]) -> int:
        """Sends `parts` (frames of its own and views of room broadcasts, in
        order) as its peer reads them; returns the bytes it wrote."""


class Broadcast:
    """One room's frames between two flushes, shared by its members' outlets.

    At flush time the frames are encoded once per format that asks
    (`encoded`); every member's view is those bytes or a slice of them, so
    a burst held for many slow members costs its size once, not once per
    member. No frame is added once a flush has begun: the outbox closes
    every broadcast first.
    """

    __slots__ = ("encodings", "frames", "roster", "stragglers")

    def __init__(self, roster: int) -> None:
        self.frames: list[Frame] = []
        self.roster = roster  # the room's membership generation it was made for
        # Outlets that got a frame of their own since their view closed: the
        # next room frame opens a new view for each.
        self.stragglers: list[Outlet] = []
        self.encodings: dict[Hashable, Any] = {}  # by format: what `encoded` made

    def encoded(self, key: Hashable, encode: Callable[[list[Frame]], T]) -> T:
        """The frames as `encode` makes them, made once for every member that
        asks with the same `key` (a `Format`, or a front end's own key for a
        form of its own)."""
        encodings = self.encodings
        if key in encodings:
            found: T = encodings[key]
            return found
        made = encodings[key] = encode(self.frames)
        return made


class View:
    """An outlet's window on a broadcast: frames [start, end), end None = to the end."""

    __slots__ = ("broadcast", "end", "start")

    def __init__(self, broadcast: Broadcast, start: int) -> None:
        self.broadcast = broadcast
        self.start = start
        self.end: int | None = None

    def bytes(self, form: Format) -> bytes | memoryview:
        """Its frames in `form`, shared with every member of that format."""
        broadcast = self.broadcast
        encoded: Encoded | None = broadcast.encodings.get(form)
        if encoded is None:
            encoded = broadcast.encoded(form, form.encode_all)
        if self.start == 0 and self.end is None:
            return encoded.data
        return encoded.span(self.start, self.end)


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
        self.parts: list[Frame | View] = []  # frames and views, in the order queued
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
    least `soft` bytes, on `clock`.
    """

    def __init__(
        self, soft: int, hard: int, slow_timeout: float, clock: Clock | None = None
    ) -> None:
        self.clock: Clock = LoopClock() if clock is None else clock
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
        self._held_replies: list[tuple[Outlet, Frame, Any, bool]] = []
        self._flush_handle: asyncio.Handle | None = None
        self._lagging: set[Outlet] = set()
        self._watch: Timer | None = None

    # -- queueing ----------------------------------------------------------

    def send(self, outlet: Outlet, frame: Frame) -> None:
        """Queues `frame` for `outlet` alone."""
        if outlet.dead or outlet.closing:
            return
        if outlet.views:
            # Room frames arriving from now on belong after this one.
            for view in outlet.views:
                broadcast = view.broadcast
                view.end = len(broadcast.frames)
                broadcast.stragglers.append(outlet)
            outlet.views.clear()
        self._queue(outlet, frame)

    def reply(self, outlet: Outlet, frame: Frame, rid: Any, changed: bool) -> None:
        """Queues the reply to `outlet`'s request `rid`; `changed` says the
        request applied a change the store has not written yet."""
        if outlet.dead or outlet.closing:
            return
        self.send(outlet, frame)
        outlet.reply_bytes += len(frame.line)
        if self.held:
            self._held_replies.append((outlet, frame, rid, changed))

    def broadcast(self, room: Any, roster: int, frame: Frame, members: Iterable[Outlet]) -> None:
        """Queues `frame` for the outlets in `members` (evaluated only when a
        new broadcast starts: on the room's first frame since the last flush,
        or after its membership generation `roster` changed)."""
        current = self._broadcasts.get(room)
        if current is None or current.roster != roster:
            current = self._broadcasts[room] = Broadcast(roster)
            current.frames.append(frame)
            for outlet in members:
                self._watch_from(outlet, current, 0)
            return
        current.frames.append(frame)
        if current.stragglers:
            start = len(current.frames) - 1
            for outlet in current.stragglers:
                self._watch_from(outlet, current, start)
            current.stragglers.clear()

    def broadcast_to_others(
        self, room: Any, roster: int, frame: Frame, members: Iterable[Outlet], skip: list[Outlet]
    ) -> None:
        """`broadcast`, but not to the outlets in `skip` (an event about their
        own user): each stops its view before `frame` and opens a new one at
        the room's next frame, so the others still share one broadcast."""
        self.broadcast(room, roster, frame, members)
        current = self._broadcasts[room]
        at = len(current.frames) - 1
        for outlet in skip:
            for view in outlet.views:
                if view.broadcast is current:
                    view.end = at  # may be empty: it opened at `frame`
                    outlet.views.remove(view)
                    current.stragglers.append(outlet)
                    break

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

    def _queue(self, outlet: Outlet, part: Frame | View) -> None:
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
        outlet.reply_bytes = sum(len(part.line) for part in rest if type(part) is Frame)

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

    def refuse(self, refusal: Callable[[Any], Frame]) -> None:
        """After a failed write: keeps what was queued before the hold, drops the
        events queued since, and keeps each reply queued since, or replaces it
        by `refusal(request id)` when its request's own change was not written."""
        self.held = False
        self._marks = None
        self._cutting = False
        self._broadcasts.clear()
        held: dict[Outlet, list[Frame]] = {}
        for outlet, frame, rid, changed in self._held_replies:
            held.setdefault(outlet, []).append(refusal(rid) if changed else frame)
        self._held_replies = []
        for outlet in self._dirty:
            if outlet.held_from is not None:
                replies = held.get(outlet, [])
                outlet.parts = [*outlet.parts[: outlet.held_from], *replies]
                outlet.views.clear()  # their broadcasts closed at the hold
                outlet.reply_bytes = sum(len(reply.line) for reply in replies)
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
            form = link.format
            if form is None:
                outlet.written += cast(FrameLink, link).take(parts)
            elif len(parts) == 1:
                part = parts[0]
                data = (
                    # A native peer's frame is its line: no call.
                    (part.line if form is JSON_LINES else form.encode(part))
                    if type(part) is Frame
                    else part.bytes(form)  # type: ignore[union-attr]
                )
                link.write(data)
                outlet.written += len(data)
            else:
                json = form is JSON_LINES
                datas = [
                    (part.line if json else form.encode(part))
                    if type(part) is Frame
                    else part.bytes(form)  # type: ignore[union-attr]
                    for part in parts
                ]
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
        outlet.lagging_since = self.clock.monotonic()
        outlet.lag_mark = outlet.taken()
        self._lagging.add(outlet)
        if self._watch is None:
            self._watch = self.clock.call_later(CHECK_EVERY, self._check_lagging)

    def caught_up(self, outlet: Outlet) -> None:
        """`outlet`'s unsent bytes fell back under the soft limit (its front end
        says so as soon as it knows)."""
        outlet.lagging_since = None
        self._lagging.discard(outlet)

    def _check_lagging(self) -> None:
        """Drops each lagging outlet that took less than `soft` bytes in `slow_timeout`."""
        self._watch = None
        now = self.clock.monotonic()
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
            self._watch = self.clock.call_later(CHECK_EVERY, self._check_lagging)

    def _drop(self, outlet: Outlet, why: str) -> None:
        log.warning("%s fell too far behind (%s), disconnecting", outlet.name, why)
        self.abort(outlet)
