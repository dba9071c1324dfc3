"""The web front end: the web client's files over HTTP and the protocol over WebSocket.

Byte-level glue only, like tcp.py, which it extends: admission, keepalive,
the TLS upgrade and the transport's signals are TcpProtocol's. One port
serves both, told apart by a connection's first request line: `/ws`
becomes a connection to the core, the `websockets` package's Sans-I/O
`ServerProtocol` reading the handshake and turning bytes into WebSocket
frames and back; any other request hands the connection to aiohttp
(http.py) for good. Every rule of the protocol (greeting, limits, order,
backpressure, leaving) stays the core's.

One protocol frame is one WebSocket text message, with no newline: the
links' format (`WS_MESSAGES`), so the outbox frames a room broadcast once
for all its web members, however many there are, and each write is shared
bytes, as a native member's is.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import ssl
import struct
from typing import cast

from websockets.datastructures import Headers
from websockets.exceptions import PayloadTooBig
from websockets.frames import CloseCode, Opcode
from websockets.frames import Frame as WsFrame
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.server import ServerProtocol
from websockets.typing import BytesLike

from nexus.server import frames
from nexus.server.clock import Timer
from nexus.server.core import Connection, Core
from nexus.server.frontends.http import (
    MAX_LINE,
    SECURITY_HEADERS,
    Http,
    HttpHandler,
    Web,
    refusal_text,
)
from nexus.server.frontends.tcp import TcpProtocol, TransportLink, close, reset

log = logging.getLogger("nexus.ws")

WS_PATH = b"/ws"
MAX_EARLY = 64 * 1024  # bytes kept from a peer whose TLS handshake is finishing


class HttpProtocol(ServerProtocol):
    """websockets' Sans-I/O server protocol, whose every HTTP response carries the
    security headers: the handshake, and the refusals, the library's own (400,
    405, 426, 431...) as well as the server's."""

    def send_response(self, response: Response) -> None:
        headers = response.headers
        for name, value in SECURITY_HEADERS:
            if name not in headers:
                headers[name] = value
        super().send_response(response)


def _response(status: int, phrase: str, body: bytes) -> Response:
    headers = Headers(
        [
            ("Date", email.utils.formatdate(usegmt=True)),
            ("Connection", "close"),
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(body))),
            *SECURITY_HEADERS,
        ]
    )
    return Response(status, phrase, headers, body)


class WsMessages(frames.Format):
    """One frame a WebSocket text message (RFC 6455 5.2: FIN, opcode 1, the
    length, no mask from a server), its JSON without the newline."""

    __slots__ = ()

    def encode(self, frame: frames.Frame) -> bytes:
        payload = frame.line[:-1]
        size = len(payload)
        if size < 126:
            head = bytes((0x81, size))
        elif size < 1 << 16:
            head = struct.pack("!BBH", 0x81, 126, size)
        else:
            head = struct.pack("!BBQ", 0x81, 127, size)
        return head + payload


WS_MESSAGES = WsMessages()


class WsLink(TransportLink):
    """The core's `Link` over a WebSocket: frames out as text messages, a room's
    made once for all its members by the outbox (`WS_MESSAGES`).

    `reframed` counts what the protocol sent of its own (pongs, the close),
    so the outbox judges a reader by the bytes that crossed its socket."""

    __slots__ = ("protocol", "reframed")

    format: frames.Format | None = WS_MESSAGES

    def __init__(self, transport: asyncio.Transport, protocol: WsProtocol) -> None:
        super().__init__(transport)
        self.protocol = protocol
        self.reframed = 0

    def close(self) -> None:
        """Ends with a close frame (the client's own, answered, if it sent one)."""
        self.protocol.close_websocket()


def _utf8(data: bytes) -> bool:
    try:
        data.decode()
    except UnicodeDecodeError:
        return False
    return True


class WsProtocol(TcpProtocol):
    """One web connection: a WebSocket to the core, or HTTP requests that
    aiohttp answers (the first request line decides)."""

    __slots__ = (
        "closing",
        "early",
        "expiry",
        "head",
        "http",
        "link",
        "partial",
        "paused",
        "site",
        "transport",
        "web",
        "ws",
    )

    def __init__(self, core: Core, tls: ssl.SSLContext | None, site: Http) -> None:
        super().__init__(core, tls)
        self.site = site
        self.web: Web = site.web
        self.head: bytes | None = b""  # the first request line so far; None once it is read
        self.http: HttpHandler | None = None  # once the connection is aiohttp's
        # A message is at most what fits in a TCP frame without its newline.
        self.ws = HttpProtocol(max_size=core.config.max_frame - 1)
        self.transport: asyncio.Transport | None = None
        self.link: WsLink | None = None  # once the WebSocket is open
        self.expiry: Timer | None = None  # until the WebSocket opens, on the core's clock
        self.partial: list[BytesLike] | None = None  # fragments of a text message
        self.paused = False  # the core paused reading
        self.closing = False  # the peer closed; tell the core once it reads again
        # The request can come with the end of the TLS handshake, a loop pass
        # before `_open` gets the secure transport: kept until then.
        self.early = b""

    def turn_away(self, transport: asyncio.Transport) -> None:
        if self.tls is None:
            body = b"too many connections from your address\n"
            response = _response(503, "Service Unavailable", body)
            response.headers["Retry-After"] = "1"
            transport.write(response.serialize())
            transport.close()
        else:
            transport.abort()

    def _open(self, transport: asyncio.Transport) -> None:
        """The peer is admitted (and its TLS up): its HTTP request comes next."""
        self.transport = transport
        self.expiry = self.core.clock.call_later(self.core.config.login_timeout, self._expired)
        if self.early:
            early, self.early = self.early, b""
            self.data_received(early)

    def _expired(self) -> None:
        """The login deadline passed before the WebSocket opened: a request that
        never came whole ends (nothing is queued for it); an answer the peer
        does not take is dropped with a reset, so the kernel does not keep it."""
        transport = self.transport
        assert transport is not None
        if transport.is_closing():
            reset(transport)
        else:
            transport.abort()

    # -- input ---------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self.http is not None:
            self.http.data_received(data)
            return
        ws = self.ws
        if self.transport is None:
            if self.ip is not None and len(self.early) < MAX_EARLY:
                self.early += data
            return
        if self.head is not None:
            self.head += data
            if not self._route():
                return
            data, self.head = self.head, None
        if ws.state is State.CLOSED:
            return
        ws.receive_data(data)
        messages: list[bytes] = []
        for event in ws.events_received():
            if isinstance(event, Request):
                self._request(event)
            elif isinstance(event, WsFrame) and self._message(event, messages):
                break
        connection = self.connection
        if connection is None:
            self._send_own()
            return
        too_big = isinstance(ws.parser_exc, PayloadTooBig)
        if messages or too_big:
            connection.receive(messages, too_big)
        if ws.state is State.OPEN:
            self._send_own()  # pongs
        elif not too_big:  # the core refuses and closes on a message too big
            self._peer_closed(connection)

    def _route(self) -> bool:
        """True once the first request line is in and asks for the WebSocket;
        any other request goes to aiohttp with what came so far. A line too
        long is refused here (neither side would read it)."""
        head, transport = self.head, self.transport
        assert head is not None and transport is not None
        end = head.find(b"\n")
        if (end if end >= 0 else len(head)) > MAX_LINE:
            self.head = None
            refusal = _response(414, "URI Too Long", b"request line too long\n")
            transport.write(refusal.serialize())
            transport.close()
            return False
        if end < 0:
            return False
        parts = head[:end].split(b" ")
        if len(parts) == 3 and parts[1].split(b"?", 1)[0] == WS_PATH:
            return True
        self.head = None
        http = self.http = self.site.handler(self)
        http.connection_made(transport)
        http.data_received(head)
        return False

    def request_began(self) -> None:
        """A whole HTTP request came: the connection's deadline is over (the
        rest is aiohttp's keep-alive timeout, and the transfer's own pace)."""
        if self.expiry is not None:
            self.expiry.cancel()
            self.expiry = None

    def _message(self, frame: WsFrame, messages: list[bytes]) -> bool:
        """Collects a data frame into `messages`; True once the peer sent what
        cannot be read (a binary message, a text message that is not UTF-8),
        after which nothing is."""
        opcode = frame.opcode
        if opcode is Opcode.TEXT:
            self.partial = [frame.data]
        elif opcode is Opcode.CONT and self.partial is not None:
            self.partial.append(frame.data)
        elif opcode is Opcode.BINARY or opcode is Opcode.CONT:
            self.ws.fail(CloseCode.UNSUPPORTED_DATA, "frames are text messages")
            return True
        else:
            return False  # ping, pong, close: the protocol answers them
        if frame.fin:
            message = b"".join(self.partial)
            self.partial = None
            if not message.isascii() and not _utf8(message):
                # RFC 6455 8.1: the whole message, however it was fragmented.
                self.ws.fail(CloseCode.INVALID_DATA, "invalid UTF-8")
                return True
            messages.append(message)
        return False

    def _request(self, request: Request) -> None:
        """Answers the one HTTP request a connection makes."""
        ws, transport = self.ws, self.transport
        assert transport is not None
        local = (transport.get_extra_info("sockname") or ("",))[0]
        hosts = request.headers.get_all("Host")
        refused = self.web.host_refused(hosts, local)
        if refused is not None:
            log.info("refused a request for host %s", hosts)
            ws.send_response(ws.reject(refused, refusal_text(refused)))
            return
        origins = request.headers.get_all("Origin")
        if not self.web.origin_allowed(origins, hosts, self.tls is not None):
            log.info("refused a WebSocket from origin %s", request.headers.get_all("Origin"))
            ws.send_response(ws.reject(403, "this page's origin may not connect\n"))
            return
        response = ws.accept(request)
        ws.send_response(response)
        if response.status_code != 101:
            return
        self._send_own()
        if self.expiry is not None:
            self.expiry.cancel()  # the core's login deadline takes over
        host, port = self.peer or ("?", 0)
        transport.set_write_buffer_limits(high=self.core.config.max_outbound)
        link = self.link = WsLink(transport, self)
        self.connection = self.core.open(link, self, self.ip or "?", f"{host}:{port}")

    def eof_received(self) -> bool:
        if self.http is not None:
            self.http.eof_received()
            return False
        self.ws.receive_eof()
        if self.connection is None:
            return False
        self._peer_closed(self.connection)
        return self.tls is None  # as TCP: a plain socket stays open for the replies due

    def _peer_closed(self, connection: Connection) -> None:
        """The peer sent a close frame or went quiet for good: once the frames
        it sent before are answered, the core closes."""
        if self.paused:
            self.closing = True  # resume_reading passes it on
        else:
            connection.end_of_input()

    # -- output --------------------------------------------------------------

    def _send_own(self) -> None:
        """Writes what the WebSocket protocol has to say (handshake, pongs, close)."""
        transport, link = self.transport, self.link
        assert transport is not None
        for data in self.ws.data_to_send():
            if data:
                transport.write(data)
                if link is not None:  # the outbox counts what crosses the socket
                    link.reframed += len(data)
            else:  # its end of stream: the server closes the TCP connection
                close(transport)

    def close_websocket(self) -> None:
        if self.ws.state is State.OPEN:
            self.ws.send_close(CloseCode.NORMAL_CLOSURE)
        self._send_own()
        assert self.transport is not None
        close(self.transport)

    # -- the core's Reading ---------------------------------------------------

    def pause_reading(self) -> None:
        self.paused = True
        assert self.transport is not None
        self.transport.pause_reading()

    def resume_reading(self) -> None:
        self.paused = False
        if self.closing:
            self.closing = False
            cast(Connection, self.connection).end_of_input()
            return
        assert self.transport is not None
        self.transport.resume_reading()

    def pause_writing(self) -> None:
        if self.http is not None:
            self.http.pause_writing()
        else:
            super().pause_writing()

    def resume_writing(self) -> None:
        if self.http is not None:
            self.http.resume_writing()
        else:
            super().resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.expiry is not None:
            self.expiry.cancel()
        if self.http is not None:
            self.http.connection_lost(exc)
        super().connection_lost(exc)
