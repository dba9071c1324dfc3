"""asyncio glue: bytes in, frames dispatched in order, replies queued.

Each connection is an `asyncio.Protocol`. A frame is answered inside
`data_received`, on the loop pass that read it: a handler that does not
suspend (say, dm, join and nearly every other command) runs to its end with
no task, no stream buffer and no extra loop pass. A handler that does
suspend (hashing a password, waiting for a write) is finished by a task;
the frames after it wait in order and reading pauses until it is done, so
replies always come in request order.

Everything above this module (commands, hub, store) is transport-agnostic;
a WebSocket or IRC gateway would replace only this file.
"""

from __future__ import annotations

import asyncio
import socket
import time
import types
from collections import deque
from collections.abc import Coroutine, Generator
from typing import TYPE_CHECKING, Any

from nexus import __version__
from nexus.errors import NexusError
from nexus.protocol import PROTOCOL_VERSION, LineFramer, decode, error, event
from nexus.server.commands import Context, dispatch
from nexus.server.session import Session

if TYPE_CHECKING:
    from nexus.server.server import NexusServer


def _keepalive(sock: socket.socket, idle: int, interval: int, count: int) -> None:
    """Lets the kernel probe a silent peer, so a half-open connection dies."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in (
        ("TCP_KEEPIDLE", idle),
        ("TCP_KEEPINTVL", interval),
        ("TCP_KEEPCNT", count),
    ):
        if hasattr(socket, name):
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)


@types.coroutine
def _resume(coro: Coroutine[Any, Any, Any], awaited: Any) -> Generator[Any, Any, Any]:
    """Finishes `coro`, which already ran up to awaiting `awaited`, inside
    the task that awaits this: the rest of what `await coro` would have done."""
    while True:
        try:
            value = yield awaited
        except BaseException as exc:  # cancellation included: the handler sees it
            send, value = coro.throw, exc
        else:
            send = coro.send
        try:
            awaited = send(value)
        except StopIteration as done:
            return done.value


class Connection(asyncio.Protocol):
    """One client connection, from accept to close.

    Frames are answered in order from `waiting`. Answering stops, and
    reading pauses, while a handler is suspended (`task`) or while the
    peer is behind: its replies not yet taken by the kernel pass the
    outbound cap. A peer that pipelines requests for large replies and
    does not read them therefore holds about one cap of them in the
    server, not everything it asked for.
    """

    __slots__ = (
        "ctx",
        "framer",
        "ip",
        "login_deadline",
        "lost",
        "reading_paused",
        "server",
        "session",
        "stalled",
        "task",
        "waiting",
        "writing_paused",
    )

    def __init__(self, server: NexusServer) -> None:
        self.server = server
        self.framer = LineFramer(server.config.max_frame)
        self.session: Session | None = None  # None if refused at accept
        self.ctx: Context | None = None
        self.waiting: deque[bytes] = deque()  # frames read and not yet answered
        self.task: asyncio.Task[None] | None = None  # finishing a suspended handler
        self.stalled = False  # waiting for the peer to read its replies
        self.reading_paused = False
        self.writing_paused = False  # the transport's buffer is past its high mark
        self.lost = False  # the connection is gone
        self.ip = ""
        self.login_deadline: asyncio.TimerHandle | None = None

    # -- asyncio callbacks -------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        server, config = self.server, self.server.config
        peername = transport.get_extra_info("peername") or ("?", 0)
        self.ip = peername[0]
        session = Session(
            transport,  # type: ignore[arg-type]
            f"{self.ip}:{peername[1]}",
            config.max_outbound,
            server.new_login_bucket(),
            server.outbox,
        )
        if server.connections[self.ip] >= config.max_connections_per_ip:
            crowded = NexusError(
                "rate_limited", "too many connections from your address", retry_after=1
            )
            session.send_frame(error(None, crowded))
            session.close()
            return
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            _keepalive(
                sock, config.keepalive_idle, config.keepalive_interval, config.keepalive_count
            )
        # Past the cap the transport pauses writing, so a stalled peer's
        # catching up is told by resume_writing.
        transport.set_write_buffer_limits(high=config.max_outbound)  # type: ignore[attr-defined]
        self.session = session
        self.ctx = Context(server, session)
        server.connections[self.ip] += 1
        server.sessions.add(session)
        self.login_deadline = asyncio.get_running_loop().call_later(
            config.login_timeout, _login_expired, session
        )
        session.send_frame(
            event(
                "hello",
                server="nexus",
                version=__version__,
                protocol=PROTOCOL_VERSION,
                motd=config.motd,
            )
        )

    def data_received(self, data: bytes) -> None:
        session = self.session
        if session is None or session.closed:
            return
        self.waiting.extend(self.framer.feed(data))
        self._answer_waiting()

    def eof_received(self) -> bool:
        # Reading is paused while frames wait, so the end of the stream
        # comes only after every frame before it has been answered.
        if self.session is not None:
            self.session.close()  # once what is queued has gone out
        # TLS cannot half-close; a plain socket stays open for the replies still due.
        return self.server.tls is None

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        if self.stalled:
            self._unstall()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.session is not None:
            self.session.close()
        if self.task is None:
            self._forget()
        # else the task forgets the session once its handler is done

    # -- answering frames --------------------------------------------------

    def _answer_waiting(self) -> None:
        """Answers waiting frames in order until none is left, a handler
        suspends, the peer is behind or the session closes; reads on only
        once nothing waits."""
        if self.task is not None or self.stalled:
            return  # answering resumes from _finish or _unstall
        session, waiting = self.session, self.waiting
        while waiting and not session.closed:
            if session.behind():
                self._stall()
                return
            if not self._answer(waiting.popleft()):
                return
            if self.task is not None:
                self._pause_reading()
                return
        if session.closed:
            return
        if self.framer.too_large:
            self._too_large()
        elif self.reading_paused:
            self.reading_paused = False
            session.transport.resume_reading()

    def _answer(self, line: bytes) -> bool:
        """Answers one frame, at once if its handler does not suspend (else
        a task finishes it); False once the connection is to close."""
        coro = _handle_line(self.ctx, line)
        try:
            awaited = coro.send(None)
        except StopIteration as done:
            return done.value
        self.task = asyncio.get_running_loop().create_task(self._finish(coro, awaited))
        return True

    async def _finish(self, coro: Coroutine[Any, Any, bool], awaited: Any) -> None:
        """Completes a suspended handler, then answers what waited."""
        try:
            go_on = await _resume(coro, awaited)
        finally:
            self.task = None
            if self.lost:
                self._forget()
        if go_on and not self.lost:
            self._answer_waiting()

    def _stall(self) -> None:
        """Waits for the peer to take its replies before answering more."""
        self.stalled = True
        self._pause_reading()
        if not self.writing_paused:
            # The replies are still queued: look again after this pass's flush.
            asyncio.get_running_loop().call_soon(self._unstall)

    def _unstall(self) -> None:
        if not self.stalled or self.lost or self.writing_paused:
            return  # gone, or resume_writing will come
        self.stalled = False
        self._answer_waiting()

    def _pause_reading(self) -> None:
        if not self.reading_paused:
            self.reading_paused = True
            self.session.transport.pause_reading()

    def _too_large(self) -> None:
        too_large = f"a frame is at most {self.server.config.max_frame} bytes"
        self.session.send_frame(error(None, NexusError("frame_too_large", too_large)))
        self.session.close()

    def _forget(self) -> None:
        """The connection is gone: the server lets go of its session."""
        session, server = self.session, self.server
        if session is None:
            return
        self.session = None
        self.login_deadline.cancel()
        server.forget(session, self.ip)
        if server.hub.detach(session):
            server.store.record({"op": "seen", "user": session.user, "ts": time.time()})
            server.announce_presence(session.user, online=False)


async def _handle_line(ctx: Context, line: bytes) -> bool:
    """Answers one frame; False once the connection is to close."""
    session = ctx.session
    try:
        frame = decode(line)
    except NexusError as err:
        session.reply(error(None, err))
    else:
        if frame is not None:
            ctx.unwritten = False
            reply = await dispatch(ctx, frame)
            session.reply(reply, ctx.unwritten)
        elif session.user is not None:
            return True  # blank lines are free only once logged in
    session.frames += 1
    if session.quitting:
        session.close()
        return False
    if session.user is None and session.frames >= ctx.server.config.login_frames:
        session.send_frame(error(None, NexusError("auth_required", "too many frames before login")))
        session.close()
        return False
    return True


def _login_expired(session: Session) -> None:
    if session.user is None and not session.closed:
        session.send_frame(error(None, NexusError("auth_required", "login timed out")))
        session.close()
