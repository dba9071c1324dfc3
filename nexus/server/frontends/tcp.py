"""The TCP front end: newline-framed JSON over a socket, optionally inside TLS.

Byte-level glue only: it frames what it reads with LineFramer, hands whole
frames to the connection core, and lets the core write through the
transport. Every rule (greeting, limits, order, backpressure, leaving) is
the core's.

With TLS the listening socket is plain TCP and each connection is upgraded
with `start_tls` after `Core.admit()` has counted it: a peer past its
address's cap is dropped before any handshake, so silent half-started
handshakes cannot use up the server's file descriptors or memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import struct
from asyncio import sslproto
from typing import cast

from nexus.protocol import LineFramer
from nexus.server.core import Connection, Core
from nexus.server.frames import JSON_LINES, Format

log = logging.getLogger("nexus.tcp")

_NO_LINGER = struct.pack("ii", 1, 0)  # struct linger: on, 0 seconds


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


def reset(transport: asyncio.Transport) -> None:
    """Drops a connection with a reset (RST), freeing its buffers at once.

    `transport.abort()` alone closes the socket as `close()` does: the kernel
    keeps what is still queued and goes on trying to deliver it to a peer that
    does not read, for minutes (FIN-WAIT-1), megabytes a socket, and the peer
    never learns it was dropped. Lingering on, for 0 seconds, makes the close
    a reset.

    A transport closing with nothing left in its buffer is ending as it should
    (a graceful close, or one already over: `connection_lost`, which calls
    this through the core, runs before the transport closes its socket), and
    it is left to end so: its last bytes still reach the peer.
    """
    if not transport.is_closing() or transport.get_write_buffer_size():
        sock = transport.get_extra_info("socket")  # the TCP socket under TLS too
        if sock is not None:
            # OSError: closed (asyncio); ValueError: closed (uvloop, fd -1).
            with contextlib.suppress(OSError, ValueError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _NO_LINGER)
    transport.abort()


def close(transport: asyncio.BaseTransport) -> None:
    """Closes `transport` gracefully, once: asyncio's TLS transport, closed a
    second time, drops its TLS state (3.11's sslproto), and the next call to
    it (the core's `reset` when the connection ends) raises, so the core
    never let go of the connection."""
    if not transport.is_closing():
        transport.close()


class TransportLink:
    """The core's `Link` and `Reading` over an asyncio transport.

    The outbox writes and asks for the backlog once per connection per flush,
    so those are the transport's own methods, with no call in between.
    uvloop's `writelines` keeps the parts as they are; asyncio's joins them.
    The transport gets the bytes it is given, so `reframed` stays 0.
    """

    __slots__ = ("backlog", "transport", "write", "writelines")

    format: Format | None = JSON_LINES  # peers read the frames' JSON lines
    reframed = 0

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.write = transport.write
        self.writelines = transport.writelines
        self.backlog = transport.get_write_buffer_size

    def close(self) -> None:
        close(self.transport)

    def abort(self) -> None:
        reset(self.transport)

    def pause_reading(self) -> None:
        self.transport.pause_reading()

    def resume_reading(self) -> None:
        self.transport.resume_reading()


class TcpProtocol(asyncio.Protocol):
    """One TCP connection: admitted, maybe upgraded to TLS, then driven by the core."""

    __slots__ = ("connection", "core", "framer", "ip", "peer", "tls", "upgrade")

    def __init__(self, core: Core, tls: ssl.SSLContext | None) -> None:
        self.core = core
        self.tls = tls
        self.framer = LineFramer(core.config.max_frame)
        self.connection: Connection | None = None
        self.ip: str | None = None  # set once admitted
        # The client's address and port: the socket's peer, or the one a
        # trusted proxy's PROXY header named (proxied.py sets it first).
        self.peer: tuple[str, int] | None = None
        self.upgrade: asyncio.Task[None] | None = None

    def connection_made(self, base: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, base)  # uvloop's are not registered subclasses
        if self.peer is None:
            self.peer = transport.get_extra_info("peername") or ("?", 0)
        ip = self.peer[0]
        if not self.core.admit(ip):
            self.turn_away(transport)
            return
        self.ip = ip
        config = self.core.config
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            _keepalive(
                sock, config.keepalive_idle, config.keepalive_interval, config.keepalive_count
            )
        if self.tls is None:
            self._open(transport)
        else:
            self._start_tls(transport)

    def turn_away(self, transport: asyncio.Transport) -> None:
        """Refuses a peer past its address's cap, in words it can read."""
        if self.tls is None:
            transport.write(self.core.crowded())
            transport.close()
        else:  # nothing readable can be said before the handshake
            transport.abort()

    def _start_tls(self, transport: asyncio.Transport) -> None:
        """Hands the stream to TLS at once, inside connection_made.

        `loop.start_tls` swaps the protocols a loop pass later; bytes read in
        between reached this plain protocol and were lost: uvloop reads a
        ClientHello already waiting when a busy server accepts late, and the
        handshake then stalled until the client gave up. These are start_tls's
        own steps, done before anything can be read: a transport hands bytes
        to the protocol it has when it delivers them.
        """
        loop = asyncio.get_running_loop()
        handshake: asyncio.Future[None] = loop.create_future()
        secure = sslproto.SSLProtocol(
            loop,
            self,
            self.tls,  # type: ignore[arg-type]
            handshake,
            server_side=True,
            call_connection_made=False,
            # typeshed says int; asyncio takes any number of seconds.
            ssl_handshake_timeout=self.core.config.login_timeout,  # type: ignore[arg-type]
        )
        transport.set_protocol(secure)
        secure.connection_made(transport)
        self.upgrade = loop.create_task(self._finish_tls(transport, secure, handshake))

    async def _finish_tls(
        self,
        transport: asyncio.Transport,
        secure: sslproto.SSLProtocol,
        handshake: asyncio.Future[None],
    ) -> None:
        try:
            await handshake
        except BaseException as exc:
            # The handshake never reached this protocol, so no connection_lost will.
            transport.abort()
            self._release()
            if not isinstance(exc, OSError | ssl.SSLError | TimeoutError):
                raise
            log.info("TLS handshake with %s failed: %s", self.ip, exc)
            return
        finally:
            self.upgrade = None
        app = secure._app_transport
        if app.is_closing():
            return  # the peer left during the handshake; connection_lost releases it
        self._open(app)

    def _open(self, transport: asyncio.Transport) -> None:
        host, port = self.peer or ("?", 0)
        # Past the soft limit the transport pauses writing, so the core learns
        # when a peer stops reading and when it reads again.
        transport.set_write_buffer_limits(high=self.core.config.max_outbound)
        link = TransportLink(transport)
        self.connection = self.core.open(link, link, self.ip or "?", f"{host}:{port}")

    def data_received(self, data: bytes) -> None:
        if self.connection is not None:
            self.connection.receive(self.framer.feed(data), self.framer.too_large)

    def eof_received(self) -> bool:
        if self.connection is not None:
            self.connection.end_of_input()
        # TLS cannot half-close; a plain socket stays open for the replies still due.
        return self.tls is None

    def pause_writing(self) -> None:
        if self.connection is not None:
            self.connection.pause_writing()

    def resume_writing(self) -> None:
        if self.connection is not None:
            self.connection.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.connection is not None:
            self.connection.lost()  # the core lets go of it (and of its address's slot)
        else:
            if self.upgrade is not None:
                self.upgrade.cancel()
            self._release()

    def _release(self) -> None:
        """Gives back the address's slot of a peer that never became a connection."""
        if self.ip is not None:
            self.core.release(self.ip)
            self.ip = None
