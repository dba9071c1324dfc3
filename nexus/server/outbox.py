"""Every frame the server sends leaves through the outbox.

Three jobs, each measured in `docs/performance.md`:
- Batching: frames queue on their session, and each session is written
  once per flush, whatever number of frames it got.
- Room broadcasts: the frames a room gets between two flushes are kept once,
  in a `Broadcast`, and each member's queue holds a `View` of it; a message
  to a room of 1,000 is one list append, not 1,000. A session that gets a
  frame of its own (a reply, a DM) in between closes its view, and the next
  room frame opens a new one after it, so batching never reorders what a
  session receives.
- Holding: while the store has changes not yet written, nothing is flushed.
  The store flushes the outbox right after its write, so a reply or an event
  never tells anyone about a change a crash could take back, and the change's
  requests need not wait for the write one by one. If the write fails, the
  store has the outbox refuse what it held instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nexus.server.session import Session


class Broadcast:
    """One room's frames between two flushes, shared by its members' queues."""

    __slots__ = ("_joined", "frames", "roster", "stragglers")

    def __init__(self, roster: int) -> None:
        self.frames: list[bytes] = []
        self.roster = roster  # the room's membership generation it was made for
        # Member sessions that got a frame of their own since their view
        # closed: the next room frame opens a new view for each.
        self.stragglers: list[Session] = []
        self._joined: bytes | None = None

    def all_bytes(self) -> bytes:
        """Every frame, joined once for all the members that share it."""
        if self._joined is None:
            self._joined = b"".join(self.frames)
        return self._joined


class View:
    """A session's window on a broadcast: frames [start, end), end None = to the end."""

    __slots__ = ("broadcast", "end", "start")

    def __init__(self, broadcast: Broadcast, start: int) -> None:
        self.broadcast = broadcast
        self.start = start
        self.end: int | None = None

    def bytes(self) -> bytes:
        if self.start == 0 and self.end is None:
            return self.broadcast.all_bytes()
        return b"".join(self.broadcast.frames[self.start : self.end])


class Outbox:
    """Sessions with frames queued, the open broadcasts, and the hold.

    `held` says whether the store has changes not yet written; while it does,
    flushing waits for the store to call `flush()` after its write.
    """

    def __init__(self, held: Callable[[], bool] = lambda: False) -> None:
        self.held = held
        self._dirty: list[Session] = []
        self._broadcasts: dict[Any, Broadcast] = {}
        # Replies queued while held, in order: (session, frame, request id,
        # whether the request's own change is among those not yet written).
        self._held_replies: list[tuple[Session, bytes, Any, bool]] = []
        self._flush_handle: asyncio.Handle | None = None

    def mark(self, session: Session) -> None:
        """`session` has its first frame queued since the last flush."""
        self._dirty.append(session)
        self._schedule()

    def _schedule(self) -> None:
        if self._flush_handle is None:
            self._flush_handle = asyncio.get_running_loop().call_soon(self._flush_soon)

    def note_reply(self, session: Session, data: bytes, rid: Any, unwritten: bool) -> None:
        if self.held():
            self._held_replies.append((session, data, rid, unwritten))

    def broadcast(self, room: Any, roster: int, data: bytes, members: Iterable[Session]) -> None:
        """Queues `data` for the sessions in `members` (evaluated only when a
        new broadcast starts: on the room's first frame since the last flush,
        or after its membership generation `roster` or the sessions changed)."""
        current = self._broadcasts.get(room)
        if current is None or current.roster != roster:
            current = self._broadcasts[room] = Broadcast(roster)
            current.frames.append(data)
            for session in members:
                session.watch(current, 0)
            return
        current.frames.append(data)
        if current.stragglers:
            start = len(current.frames) - 1
            for session in current.stragglers:
                session.watch(current, start)
            current.stragglers.clear()

    def regroup(self) -> None:
        """Closes every open broadcast: who is in a room, or which sessions a
        user has, changed; the next frame for each room starts afresh."""
        self._broadcasts.clear()

    def _flush_soon(self) -> None:
        self._flush_handle = None
        if not self.held():  # otherwise the store flushes after its write
            self.flush()

    def flush(self) -> None:
        """Writes every session's queue, one write each."""
        self._broadcasts.clear()
        self._held_replies.clear()
        dirty, self._dirty = self._dirty, []
        for session in dirty:
            session.flush()

    def refuse_held(self, refusal: Callable[[Any], bytes]) -> None:
        """After a failed write: drops every held frame but the replies, and
        turns each reply to a request whose change was not written into
        `refusal(request id)`."""
        self._broadcasts.clear()
        kept: dict[Session, list[bytes]] = {}
        for session, data, rid, unwritten in self._held_replies:
            kept.setdefault(session, []).append(refusal(rid) if unwritten else data)
        self._held_replies = []
        self._dirty = [s for s in self._dirty if s.requeue(kept.get(s, []))]
        if self._dirty:
            self._schedule()
