"""asyncio glue: bytes in, frames dispatched in order, replies queued.

Each connection is an `asyncio.Protocol`. A frame is answered inside
`data_received`, on the loop pass that read it: a handler that does not
suspend (say, dm, join and nearly every other command) runs to its end with
no task, no stream buffer and no extra loop pass. A handler that does
suspend (hashing a password, waiting for a write) is finished by a task;
frames that arrive meanwhile wait in order and reading pauses until it is
done, so replies always come in request order.

Everything above this module (commands, hub, store) is transport-agnostic;
a WebSocket or IRC gateway would replace only this file.
"""

from __future__ import annotations

import asyncio
import logging
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

log = logging.getLogger("nexus.transport")


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
    """One client connection, from accept to close."""

    __slots__ = (
        "ctx",
        "framer",
        "ip",
        "login_deadline",
        "lost",
        "server",
        "session",
        "task",
        "waiting",
    )

    def __init__(self, server: NexusServer) -> None:
        self.server = server
        self.framer = LineFramer(server.config.max_frame)
        self.session: Session | None = None  # None if refused at accept
        self.ctx: Context | None = None
        self.waiting: deque[bytes] = deque()  # frames read while a handler is suspended
        self.task: asyncio.Task[None] | None = None  # finishing a suspended handler
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
        lines = self.framer.feed(data)
        if self.task is not None:
            self.waiting.extend(lines)
        else:
            for i, line in enumerate(lines):
                if session.closed or not self._answer(line):
                    break
                if self.task is not None:  # a handler suspended: the rest wait for it
                    self.waiting.extend(lines[i + 1 :])
                    break
        if self.framer.too_large and not session.closed and self.task is None:
            self._too_large()

    def eof_received(self) -> bool:
        # Reading is paused while a handler is suspended, so the end of the
        # stream comes only after every frame before it has been answered.
        if self.session is not None:
            self.session.close()  # once what is queued has gone out
        # TLS cannot half-close; a plain socket stays open for the replies still due.
        return self.server.tls is None

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.session is not None:
            self.session.close()
        if self.task is None:
            self._forget()
        # else the task forgets the session once its handler is done

    # -- answering frames --------------------------------------------------

    def _answer(self, line: bytes) -> bool:
        """Answers one frame, at once if its handler does not suspend;
        False once the connection is to close."""
        coro = _handle_line(self.ctx, line)
        try:
            awaited = coro.send(None)
        except StopIteration as done:
            return done.value
        self._pause_reading()
        self.task = asyncio.get_running_loop().create_task(self._finish(coro, awaited))
        return True

    async def _finish(self, coro: Coroutine[Any, Any, bool], awaited: Any) -> None:
        """Completes a suspended handler, then answers what waited, in order."""
        session = self.session
        try:
            go_on = await _resume(coro, awaited)
            while go_on and self.waiting and not session.closed:
                go_on = await _handle_line(self.ctx, self.waiting.popleft())
            if self.framer.too_large and not session.closed:
                self._too_large()
        finally:
            self.waiting.clear()
            self.task = None
            if self.lost:
                self._forget()
            elif not session.closed:
                session.transport.resume_reading()

    def _pause_reading(self) -> None:
        transport = self.session.transport
        if not transport.is_closing():
            transport.pause_reading()

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
