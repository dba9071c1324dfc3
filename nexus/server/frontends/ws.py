"""The web front end: the web client's files over HTTP and the protocol over WebSocket.

Byte-level glue only, like tcp.py, which it extends: admission, keepalive,
the TLS upgrade and the transport's signals are TcpProtocol's; the
`websockets` package's Sans-I/O `ServerProtocol` reads the HTTP request,
makes the handshake, and turns bytes into WebSocket frames and back. Every
rule (greeting, limits, order, backpressure, leaving) stays the core's.

One port serves both: `GET /ws` with an `Upgrade` becomes a connection to
the core; any other GET is answered from the packaged files in
nexus/server/web/ (and `/permissions.json`, made from permissions.py) and the
connection is closed. Either only when its Host names this server
(`Web.host_refused`).

One protocol frame is one WebSocket text message, with no newline: the
links' format (`WS_MESSAGES`), so the outbox frames a room broadcast once
for all its web members, however many there are, and each write is shared
bytes, as a native member's is.
"""

from __future__ import annotations

import asyncio
import email.utils
import ipaddress
import json
import logging
import mimetypes
import ssl
import struct
from importlib import resources
from typing import cast
from urllib.parse import urlsplit

from websockets.datastructures import Headers
from websockets.exceptions import PayloadTooBig
from websockets.frames import CloseCode, Opcode
from websockets.frames import Frame as WsFrame
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.server import ServerProtocol
from websockets.typing import BytesLike

from nexus.server import frames, permissions
from nexus.server.clock import Timer
from nexus.server.config import ServerConfig
from nexus.server.core import Connection, Core
from nexus.server.frontends.tcp import TcpProtocol, TransportLink, reset

log = logging.getLogger("nexus.ws")

WS_PATH = "/ws"
MAX_EARLY = 64 * 1024  # bytes kept from a peer whose TLS handshake is finishing

# The page may load only its own files and talk only to its own origin: no
# inline script, no eval, no plugins, no framing by other sites.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS = (
    ("Content-Security-Policy", CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
    ("Cache-Control", "no-cache"),
)


def permission_table() -> bytes:
    """permissions.RULES and OVER as the page reads them (`/permissions.json`):
    the roles and the targets strongest first, each action's roles, and each
    targeted action's targets by acting role. The page's menus decide from
    it, so they offer what this server's handlers allow, from one table."""
    roles, targets = list(permissions.Role), list(permissions.Target)
    table = {
        "roles": [role.value for role in roles],
        "targets": [target.value for target in targets],
        "rules": {
            action: [role.value for role in roles if role in held]
            for action, held in permissions.RULES.items()
        },
        "over": {
            action: {
                role.value: [target.value for target in targets if target in over[role]]
                for role in roles
                if role in over
            }
            for action, over in permissions.OVER.items()
        },
    }
    return json.dumps(table, separators=(",", ":")).encode()


class WebFiles:
    """The web client's files, read once from the installed package, and the
    permission table, made from permissions.py when the server starts."""

    def __init__(self) -> None:
        root = resources.files("nexus.server").joinpath("web")
        self.files: dict[str, tuple[str, bytes]] = {}
        for entry in root.iterdir():
            if entry.is_file() and not entry.name.startswith("."):
                kind = mimetypes.guess_type(entry.name)[0] or "application/octet-stream"
                if kind.startswith("text/") or kind.endswith(("javascript", "json", "svg+xml")):
                    kind += "; charset=utf-8"
                self.files["/" + entry.name] = (kind, entry.read_bytes())
        self.files["/"] = self.files["/index.html"]
        self.files["/permissions.json"] = ("application/json; charset=utf-8", permission_table())

    def response(self, path: str) -> Response:
        """The answer to a plain GET of `path` (query ignored)."""
        found = self.files.get(path.split("?", 1)[0])
        if found is None:
            return _response(404, "Not Found", "text/plain; charset=utf-8", b"not found\n")
        return _response(200, "OK", *found)


class HttpProtocol(ServerProtocol):
    """websockets' Sans-I/O server protocol, whose every HTTP response carries the
    security headers: the page's files, the handshake, and the refusals, the
    library's own (400, 405, 414, 426, 431...) as well as the server's."""

    def send_response(self, response: Response) -> None:
        headers = response.headers
        for name, value in SECURITY_HEADERS:
            if name not in headers:
                headers[name] = value
        super().send_response(response)


def _response(status: int, phrase: str, kind: str, body: bytes) -> Response:
    headers = Headers(
        [
            ("Date", email.utils.formatdate(usegmt=True)),
            ("Connection", "close"),
            ("Content-Type", kind),
            ("Content-Length", str(len(body))),
            *SECURITY_HEADERS,
        ]
    )
    return Response(status, phrase, headers, body)


class Web:
    """What every web connection shares: the files, the allowed origins and the
    names they give this server."""

    def __init__(self, config: ServerConfig) -> None:
        self.files = WebFiles()
        self.origins = {o.strip().lower() for o in config.web_origins.split(",") if o.strip()}
        self.any_name = "*" in self.origins
        self.names = {name for name in map(_origin_host, self.origins) if name}

    def host_refused(self, request: Request, local: str | None) -> int | None:
        """The HTTP status refusing a request not addressed to this server, or
        None. Its one Host header must name the address the connection came
        to (`local`; `localhost` too when that is a loopback address) or a
        host of `--web-origins` (a reverse proxy's public name); the port is
        not compared, as tunnels and port mappings change it. Otherwise a
        page of a name that resolves to this server by a trick (DNS
        rebinding) would be its own origin, and read and write like the
        web client: 421 Misdirected Request. With `*` any page may connect
        anyway, so any name is served."""
        hosts = request.headers.get_all("Host")
        name = _host_name(hosts[0]) if len(hosts) == 1 else None
        if name is None:
            return 400
        if self.any_name or name in self.names:
            return None
        served = _address(local) if local else None
        if served is not None and (
            _address(name) == served or (name == "localhost" and served.is_loopback)
        ):
            return None
        return 421

    def origin_allowed(self, request: Request, secure: bool) -> bool:
        """A page's origin may open /ws if it is the web client's own or in the
        allow-list. A request without Origin comes from no browser page, so it
        cannot be a cross-site request (bots and the benchmark send none)."""
        origins = request.headers.get_all("Origin")
        if not origins:
            return True
        if len(origins) > 1:
            return False
        origin = origins[0].lower()
        if "*" in self.origins or origin in self.origins:
            return True
        hosts = request.headers.get_all("Host")
        scheme = "https" if secure else "http"
        return len(hosts) == 1 and origin == f"{scheme}://{hosts[0].lower()}"


def _origin_host(origin: str) -> str | None:
    """The host of an origin (`https://chat.example.org` -> `chat.example.org`)."""
    try:
        return urlsplit(origin).hostname
    except ValueError:
        return None


def _host_name(host: str) -> str | None:
    """The name in a Host header (`name`, `name:port`, `[v6 address]:port`),
    lower-case, without port, brackets or a trailing dot; None if it is none."""
    host = host.strip().lower()
    if host.startswith("["):
        name, bracket, rest = host[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            return None
        port = rest[1:]
    else:
        name, _, port = host.partition(":")
    name = name.rstrip(".")
    if not name or not (port.isascii() and (port.isdigit() or not port)):
        return None
    return name


def _address(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """`name` as an IP address (an IPv4 address mapped into IPv6 as itself), or None."""
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


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
    """One web connection: a plain GET answered from the files, or a WebSocket to the core."""

    __slots__ = (
        "closing",
        "early",
        "expiry",
        "link",
        "partial",
        "paused",
        "transport",
        "web",
        "ws",
    )

    def __init__(self, core: Core, tls: ssl.SSLContext | None, web: Web) -> None:
        super().__init__(core, tls)
        self.web = web
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
            response = _response(503, "Service Unavailable", "text/plain; charset=utf-8", body)
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
        ws = self.ws
        if self.transport is None:
            if self.ip is not None and len(self.early) < MAX_EARLY:
                self.early += data
            return
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
        refused = self.web.host_refused(request, local)
        if refused is not None:
            log.info("refused a request for host %s", request.headers.get_all("Host"))
            text = "a request needs one Host header\n"
            if refused == 421:
                text = "this server is not reached by that name\n"
            ws.send_response(ws.reject(refused, text))
            return
        if request.path.split("?", 1)[0] != WS_PATH:
            ws.send_response(self.web.files.response(request.path))
            return
        if not self.web.origin_allowed(request, self.tls is not None):
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
        peername = transport.get_extra_info("peername") or ("?", 0)
        transport.set_write_buffer_limits(high=self.core.config.max_outbound)
        link = self.link = WsLink(transport, self)
        self.connection = self.core.open(link, self, self.ip or "?", f"{peername[0]}:{peername[1]}")

    def eof_received(self) -> bool:
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
                transport.close()

    def close_websocket(self) -> None:
        if self.ws.state is State.OPEN:
            self.ws.send_close(CloseCode.NORMAL_CLOSURE)
        self._send_own()
        assert self.transport is not None
        self.transport.close()

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

    def connection_lost(self, exc: Exception | None) -> None:
        if self.expiry is not None:
            self.expiry.cancel()
        super().connection_lost(exc)
