"""The IRC front end: IRC clients over TCP (or TLS), driving the same connection core.

Byte-level glue only, as tcp.py is for JSON: admission, keepalive and the TLS
upgrade are tcp.py's own (this protocol is a TcpProtocol); lines are cut with
the same LineFramer at IRC's length; each line goes through the connection's
`Translator` (nexus/server/irc/translator.py) into requests for the core,
handed over as they are, and the frames the core sends are read in their
typed form and become IRC lines on their way to the socket. Every rule is
the core's and the handlers'.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import weakref

from nexus import __version__
from nexus.protocol import LineFramer
from nexus.server.core import Connection, Core
from nexus.server.frames import Format, Frame
from nexus.server.frontends.tcp import TcpProtocol, TransportLink, reset
from nexus.server.irc.directory import Directory
from nexus.server.irc.lines import INPUT_MAX
from nexus.server.irc.translator import Translator
from nexus.server.outbox import View

log = logging.getLogger("nexus.irc")

_CROWDED = b"ERROR :Closing link: too many connections from your address\r\n"


# Each server's IRC directory (irc/directory.py): what its IRC connections
# share, and only they.
_DIRECTORIES: weakref.WeakKeyDictionary[Core, Directory] = weakref.WeakKeyDictionary()


def directory(core: Core) -> Directory:
    found = _DIRECTORIES.get(core)
    if found is None:
        found = _DIRECTORIES[core] = Directory()
    return found


class IrcLink(TransportLink):
    """The core's Link: the frames it is handed become IRC lines before the
    transport, read in their typed form. A room broadcast's messages from
    others are the lines every member with the same capabilities shares,
    made once (`Translator.server_view`)."""

    __slots__ = ("connection", "translator")

    format: Format | None = None  # lines depend on the client's state: `take` reads frames

    def __init__(self, transport: asyncio.Transport, translator: Translator) -> None:
        super().__init__(transport)
        self.translator = translator
        self.connection: Connection | None = None

    def take(self, parts: list[Frame | View]) -> int:
        translator = self.translator
        try:
            for part in parts:
                if type(part) is Frame:
                    translator.server_event(part.body)
                else:
                    translator.server_view(part)  # type: ignore[arg-type]
        except Exception:
            self.failed()
            return 0
        out = translator.take_output()
        if out:
            self.transport.write(out)
        if translator.requests and self.connection is not None:
            # Asked while the outbox writes: answered once it is done.
            asked = translator.take_requests()
            asyncio.get_running_loop().call_soon(self.connection.receive, asked)
        return len(out)

    def failed(self) -> None:
        """The outbox is flushing every connection: a translation that fails
        must cost this one connection, not the rest of the flush."""
        session = self.connection.session if self.connection is not None else None
        log.exception("IRC translation failed; dropping %r", session)
        reset(self.transport)


class IrcProtocol(TcpProtocol):
    """One IRC client's connection."""

    __slots__ = ("link", "translator")

    def __init__(self, core: Core, tls: ssl.SSLContext | None) -> None:
        super().__init__(core, tls)
        self.framer = LineFramer(INPUT_MAX)
        config = core.config
        self.translator = Translator(
            __version__, config.irc_server_name, directory(core), config.irc_history_lines
        )
        self.translator.guests = config.irc_guests
        self.link: IrcLink | None = None

    def turn_away(self, transport: asyncio.Transport) -> None:
        if self.tls is None:
            transport.write(_CROWDED)
            transport.close()
        else:  # nothing readable can be said before the handshake
            transport.abort()

    def _open(self, transport: asyncio.Transport) -> None:
        host, port = self.peer or ("?", 0)
        transport.set_write_buffer_limits(high=self.core.config.max_outbound)
        link = self.link = IrcLink(transport, self.translator)
        peer = f"{host}:{port} (irc)"
        guests = self.core.config.irc_guests
        self.connection = link.connection = self.core.open(link, link, self.ip or "?", peer, guests)
        self._feed()

    def data_received(self, data: bytes) -> None:
        # IRC clients speak first: lines read while the TLS handshake's last
        # step is still being processed wait in the translator for `_open`.
        if self.ip is None:
            return  # refused at admission
        translator = self.translator
        for line in self.framer.feed(data):
            translator.client_line(line)
        if self.connection is not None:
            self._feed()

    def _feed(self) -> None:
        assert self.connection is not None
        self.connection.receive(self.translator.take_requests(), self.framer.too_large)

    def connection_lost(self, exc: Exception | None) -> None:
        self.translator.closed()
        super().connection_lost(exc)
