"""The connection core: every rule of a connection's life, whatever carries its bytes.

A front end (TCP, WebSocket and IRC use the same core) does only the
byte-level glue: it asks `Core.admit()` before spending anything on a new
peer, opens a `Connection` with a `Link` to write through, feeds it whole
frames, and tells it when the peer stops reading, reads again or is gone.
Everything else is decided here, once:

- the greeting, the per-address cap, the login deadline and the budget of
  frames before login;
- answering frames in order: a handler that does not suspend is answered
  at once, inside the read that brought its frame; one that suspends runs
  as a task while later frames wait (and reading pauses), so replies keep
  request order and a peer cannot pile frames up;
- backpressure on the asker: answering pauses while the peer's own replies
  are not being read;
- the per-address count, and telling departure.py when a user's last
  connection is gone (what that means for presence, last seen and guests
  is decided there).

Time comes from the `Clock` it is given (clock.py), so its deadlines run on
a test's clock as on the event loop's.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter, deque
from collections.abc import Coroutine, Iterable
from typing import TYPE_CHECKING, Any, Protocol

from nexus import __version__
from nexus.errors import NexusError
from nexus.protocol import PROTOCOL_VERSION, Hello, decode, encode, error
from nexus.server.auth import PasswordHashing
from nexus.server.clock import Clock, LoopClock
from nexus.server.commands import Context, dispatch
from nexus.server.composing import Composing
from nexus.server.config import ServerConfig
from nexus.server.departure import user_gone
from nexus.server.frames import Frame
from nexus.server.hub import Hub
from nexus.server.outbox import Link, Outbox, Outlet
from nexus.server.policy import Policy
from nexus.server.session import Phase, Session
from nexus.server.store import Store

if TYPE_CHECKING:
    from nexus.server.files.shelf import Shelf

# A request a front end made itself: a frame's JSON object, not its line.
Request = dict[str, Any]


class Reading(Protocol):
    """What a front end lets the core do with the peer's input."""

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...


def local_address(link: Link) -> str | None:
    """The address a peer reached this server at (links over a transport know it)."""
    transport = getattr(link, "transport", None)
    sockname = transport.get_extra_info("sockname") if transport is not None else None
    return sockname[0] if sockname else None


class Core:
    """Server-wide connection policy, and the parts every connection reaches."""

    def __init__(
        self,
        config: ServerConfig,
        store: Store,
        outbox: Outbox,
        hub: Hub,
        policy: Policy,
        hashing: PasswordHashing,
        clock: Clock | None = None,
    ) -> None:
        self.clock: Clock = LoopClock() if clock is None else clock
        self.config = config
        self.store = store
        self.outbox = outbox
        self.hub = hub
        self.policy = policy
        self.hashing = hashing
        self.composing = Composing(hub, self.clock)  # who is typing where
        self.shelf: Shelf | None = None  # files, when the web port serves them
        self.per_address: Counter[str] = Counter()  # admitted connections per address
        self.connections: set[Connection] = set()
        self._all_gone: asyncio.Event | None = None  # set once close_all() has none left

    def admit(self, ip: str) -> bool:
        """Counts a new peer against its address's cap, before anything is spent
        on it (a TLS handshake included); False if the address is full."""
        if self.per_address[ip] >= self.config.max_connections_per_ip:
            return False
        self.per_address[ip] += 1
        return True

    def release(self, ip: str) -> None:
        """A peer counted by `admit` is gone."""
        self.per_address[ip] -= 1
        if not self.per_address[ip]:
            del self.per_address[ip]

    @staticmethod
    def crowded() -> bytes:
        """The frame a peer past its address's cap gets instead of `hello`."""
        refusal = NexusError(
            "rate_limited", "too many connections from your address", retry_after=1
        )
        return encode(error(None, refusal))

    def open(
        self, link: Link, reading: Reading, ip: str, peer: str, guests: bool = False
    ) -> Connection:
        """Greets an admitted peer and returns the connection its front end
        drives; with `guests`, the peer may log in as a guest."""
        connection = Connection(self, link, reading, ip, peer, guests)
        self.connections.add(connection)
        hello: Hello = {
            "event": "hello",
            "server": "nexus",
            "version": __version__,
            "protocol": PROTOCOL_VERSION,
            "motd": self.config.motd,
        }
        if self.shelf is not None and (offer := self.shelf.offer(local_address(link))):
            hello["files"] = offer
        self.outbox.send(connection.session.outlet, Frame(hello))
        return connection

    def forget(self, connection: Connection) -> None:
        """A connection is gone for good: its user may be offline now."""
        self.connections.discard(connection)
        session = connection.session
        self.release(session.ip)
        if self.hub.detach(session):
            user_gone(connection.ctx, self.store, self.clock.time())
        if not self.connections and self._all_gone is not None:
            self._all_gone.set()

    async def close_all(self, timeout: float) -> None:
        """Closes every connection once its queue is out; waits (at most
        `timeout` seconds) until each has been let go of."""
        for connection in list(self.connections):
            connection.session.close()
        if self.connections:
            self._all_gone = asyncio.Event()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._all_gone.wait(), timeout)


class Connection:
    """One peer, from greeting to goodbye. Its front end calls the methods below."""

    __slots__ = (
        "core",
        "ctx",
        "deadline",
        "frames",
        "gone",
        "oversized",
        "reading",
        "reading_paused",
        "session",
        "stalled",
        "task",
        "waiting",
        "writing_paused",
    )

    def __init__(
        self, core: Core, link: Link, reading: Reading, ip: str, peer: str, guests: bool
    ) -> None:
        self.core = core
        self.reading = reading
        self.session = Session(Outlet(link, peer), ip, peer, guests)
        self.ctx = Context(
            self.session,
            core.hub,
            core.policy,
            core.hashing,
            core.store,
            core.composing,
        )
        self.waiting: deque[bytes | Request] = deque()  # frames read and not yet answered
        self.task: asyncio.Task[None] | None = None  # finishing a suspended handler
        self.frames = 0  # frames answered
        self.oversized = False  # a frame past the limit came after those waiting
        self.stalled = False  # waiting for the peer to read its replies
        self.reading_paused = False
        self.writing_paused = False  # the link's buffer is past its high mark
        self.gone = False
        self.deadline = core.clock.call_later(core.config.login_timeout, self._login_expired)

    # -- what the front end reports ------------------------------------------

    def receive(self, frames: Iterable[bytes | Request], oversized: bool = False) -> None:
        """Whole frames from the peer, in order: each a line of JSON, or a request
        already made (a front end that parses a protocol of its own hands its
        requests over as they are); `oversized` once one was past the limit
        (it is refused after the frames before it are answered)."""
        if not self.session.open:
            return
        self.waiting.extend(frames)
        self.oversized = self.oversized or oversized
        self._answer_waiting()

    def end_of_input(self) -> None:
        """The peer will send nothing more: close once the replies are out.
        (Reading is paused while frames wait, so this comes only after every
        frame before it was answered.)"""
        self.session.close()

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        """The link's buffer fell below its low mark: the peer reads again."""
        self.writing_paused = False
        self.core.outbox.caught_up(self.session.outlet)
        if self.stalled:
            self._unstall()

    def lost(self) -> None:
        """The connection is gone."""
        if self.gone:
            return
        self.gone = True
        self.deadline.cancel()
        self.session.gone()
        self.session.outlet.abort()
        if self.task is None:
            self.core.forget(self)
        # else the task forgets it once its handler is done

    # -- answering frames ----------------------------------------------------

    def _answer_waiting(self) -> None:
        """Answers waiting frames in order until none is left, a handler
        suspends, the peer is behind or the session stops answering; reads
        on only once nothing waits."""
        if self.task is not None or self.stalled:
            return  # answering resumes from _finish or _unstall
        session, waiting, outlet = self.session, self.waiting, self.session.outlet
        limit = self.core.config.max_outbound
        while waiting and session.open:
            if outlet.backed_up(limit):
                self._stall()
                return
            if not self._answer(waiting.popleft()):
                return
            if self.task is not None:
                self._pause_reading()
                return
        if not session.open:
            return
        if self.oversized:
            too_large = f"a frame is at most {self.core.config.max_frame} bytes"
            self._refuse(NexusError("frame_too_large", too_large))
        elif self.reading_paused:
            self.reading_paused = False
            self.reading.resume_reading()

    def _answer(self, line: bytes | Request) -> bool:
        """Answers one frame, at once if its handler does not suspend (else a
        task finishes it); False once the session stops answering."""
        session, ctx = self.session, self.ctx
        try:
            frame = line if type(line) is dict else decode(line)  # type: ignore[arg-type]
        except NexusError as err:
            self._reply(error(None, err), None)
        else:
            if frame is None:
                if session.phase is Phase.AUTHENTICATED:
                    return True  # blank lines are free only once logged in
            else:
                ctx.changed = False
                reply = dispatch(ctx, frame)
                if isinstance(reply, dict):
                    self._reply(reply, frame.get("id"))
                else:
                    self.task = asyncio.get_running_loop().create_task(
                        self._finish(reply, frame.get("id"))
                    )
                    return True
        return self._counted()

    def _reply(self, reply: dict[str, Any], rid: Any) -> None:
        outbox = self.core.outbox
        outbox.reply(self.session.outlet, Frame(reply), rid, self.ctx.changed)

    def _counted(self) -> bool:
        """Counts an answered frame; False once the session stops answering."""
        self.frames += 1
        if self.ctx.quitting:
            self.session.close()
            return False
        if self.session.phase is Phase.ANONYMOUS and self.frames >= self.core.config.login_frames:
            self._refuse(NexusError("auth_required", "too many frames before login"))
            return False
        return True

    async def _finish(self, reply: Coroutine[Any, Any, dict[str, Any]], rid: Any) -> None:
        """Completes a suspended handler, then answers what waited."""
        try:
            self._reply(await reply, rid)
            go_on = self._counted()
        finally:
            self.task = None
            if self.gone:
                self.core.forget(self)
        if go_on and not self.gone:
            self._answer_waiting()

    def _stall(self) -> None:
        """Waits for the peer to take its replies before answering more."""
        self.stalled = True
        self._pause_reading()
        if not self.writing_paused:
            # The replies are still queued: look again after this pass's flush.
            asyncio.get_running_loop().call_soon(self._unstall)

    def _unstall(self) -> None:
        if not self.stalled or self.gone or self.writing_paused:
            return  # gone, or resume_writing will come
        self.stalled = False
        self._answer_waiting()

    def _pause_reading(self) -> None:
        if not self.reading_paused:
            self.reading_paused = True
            self.reading.pause_reading()

    def _refuse(self, err: NexusError) -> None:
        """Sends a refusal outside any request, then closes."""
        self.core.outbox.send(self.session.outlet, Frame(error(None, err)))
        self.session.close()

    def _login_expired(self) -> None:
        if self.session.phase is Phase.ANONYMOUS:
            self._refuse(NexusError("auth_required", "login timed out"))
