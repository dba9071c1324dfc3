"""asyncio streams glue: read bytes, frame, dispatch, queue replies.

Everything above this module (commands, hub, store) is transport-agnostic;
a WebSocket or IRC gateway would replace only this file.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from typing import TYPE_CHECKING

from nexus import __version__
from nexus.errors import NexusError
from nexus.protocol import PROTOCOL_VERSION, LineFramer, decode, error, event
from nexus.server.commands import Context, dispatch
from nexus.server.session import Session

if TYPE_CHECKING:
    from nexus.server.server import NexusServer

log = logging.getLogger("nexus.transport")

READ_SIZE = 65_536


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


async def serve_connection(
    server: NexusServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    config = server.config
    transport = writer.transport
    peername = writer.get_extra_info("peername") or ("?", 0)
    ip = peername[0]
    session = Session(
        transport,
        f"{ip}:{peername[1]}",
        config.max_outbound,
        server.new_login_bucket(),
        server.outbox,
    )

    if server.connections[ip] >= config.max_connections_per_ip:
        crowded = NexusError(
            "rate_limited", "too many connections from your address", retry_after=1
        )
        session.send_frame(error(None, crowded))
        session.close()
        return
    sock = writer.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        _keepalive(sock, config.keepalive_idle, config.keepalive_interval, config.keepalive_count)

    server.connections[ip] += 1
    server.sessions.add(session)
    login_deadline = asyncio.get_running_loop().call_later(
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
    ctx = Context(server, session)
    framer = LineFramer(config.max_frame)
    try:
        while not session.closed:
            data = await reader.read(READ_SIZE)
            if not data:
                break
            for line in framer.feed(data):
                if session.closed or not await _handle_line(ctx, line):
                    break
            if framer.too_large and not session.closed:
                too_large = f"a frame is at most {config.max_frame} bytes"
                session.send_frame(error(None, NexusError("frame_too_large", too_large)))
                session.close()
    except (ConnectionError, TimeoutError):
        pass
    finally:
        login_deadline.cancel()
        session.close()
        server.sessions.discard(session)
        server.connections[ip] -= 1
        if not server.connections[ip]:
            del server.connections[ip]
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
