"""The web port's HTTP side, on aiohttp: the page's files, the permission
table and the file endpoints.

ws.py reads each connection's first request line: `/ws` stays a WebSocket
to the core, framed by the outbox once for every member of a room; any
other request hands the connection to an aiohttp request handler for the
rest of its life (keep-alive, bodies streamed in and out, Range). aiohttp's
own WebSocket frames each message once per connection, which would make a
room's broadcast cost one encoding per web member.

What every answer shares, whichever side made it: the security headers,
and the Host check (`Web.host_refused`) against DNS rebinding.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import mimetypes
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any, Protocol
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage, HttpProcessingError, LineTooLong
from aiohttp.web_protocol import RequestHandler

from nexus.server import permissions
from nexus.server.config import ServerConfig

log = logging.getLogger("nexus.http")

# The page may load only its own files and talk only to its own origin: no
# inline script, no eval, no plugins, no framing by other sites. Images and
# media may also be `blob:` URLs: attachments, fetched with the page's
# credentials and shown from memory.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob:; connect-src 'self'; manifest-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = (
    ("Content-Security-Policy", CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
    ("Cache-Control", "no-cache"),
)
MAX_LINE = 8190  # bytes of a request line or a header line
MAX_HEADERS = 100  # header lines a request may have
KEEPALIVE = 15.0  # seconds an idle HTTP connection is kept for its next request


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

    async def serve(self, request: web.Request) -> web.Response:
        """A GET (or HEAD) of one of the files; the query is ignored."""
        found = self.files.get(request.path)
        if found is None:
            return text_response(404, "not found\n")
        kind, body = found
        return web.Response(body=body, headers={"Content-Type": kind})


def text_response(status: int, text: str, **headers: str) -> web.Response:
    return web.Response(
        status=status, text=text, content_type="text/plain", charset="utf-8", headers=headers
    )


class Web:
    """What every web connection shares: the allowed origins and the names
    they give this server."""

    def __init__(self, config: ServerConfig) -> None:
        self.origins = {o.strip().lower() for o in config.web_origins.split(",") if o.strip()}
        self.any_name = "*" in self.origins
        self.names = {name for name in map(_origin_host, self.origins) if name}

    def host_refused(self, hosts: list[str], local: str | None) -> int | None:
        """The HTTP status refusing a request not addressed to this server, or
        None. Its one Host header (`hosts`) must name the address the
        connection came to (`local`; `localhost` too when that is a loopback
        address) or a host of `--web-origins` (a reverse proxy's public
        name); the port is not compared, as tunnels and port mappings change
        it. Otherwise a page of a name that resolves to this server by a
        trick (DNS rebinding) would be its own origin, and read and write
        like the web client: 421 Misdirected Request. With `*` any page may
        connect anyway, so any name is served."""
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

    def origin_allowed(self, origins: list[str], hosts: list[str], secure: bool) -> bool:
        """A page's origin may open /ws if it is the web client's own or in the
        allow-list. A request without Origin comes from no browser page, so it
        cannot be a cross-site request (bots and the benchmark send none)."""
        if not origins:
            return True
        if len(origins) > 1:
            return False
        origin = origins[0].lower()
        if "*" in self.origins or origin in self.origins:
            return True
        scheme = "https" if secure else "http"
        return len(hosts) == 1 and origin == f"{scheme}://{hosts[0].lower()}"


def refusal_text(status: int) -> str:
    """What a refused Host is told."""
    if status == 421:
        return "this server is not reached by that name\n"
    return "a request needs one Host header\n"


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


class Owner(Protocol):
    """The connection's protocol (ws.py), which admitted it and keeps its deadline."""

    ip: str | None  # the client's address, a proxy's PROXY header's if one came

    def request_began(self) -> None: ...


class HttpHandler(RequestHandler):
    """aiohttp's handler of one connection, whose own refusals (a request it
    cannot parse) carry the security headers too, and whose header limits
    answer 431 as RFC 6585 says rather than a plain 400."""

    def __init__(self, owner: Owner, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.owner = owner

    def handle_error(
        self,
        request: Any,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if isinstance(exc, LineTooLong) or (
            isinstance(exc, BadHttpMessage) and "headers" in str(exc.message).lower()
        ):
            status = 431
        response = super().handle_error(request, status, exc, message)
        for name, value in SECURITY_HEADERS:
            response.headers.setdefault(name, value)
        return response

    def log_exception(self, message: str, *args: Any, exc_info: Any = None, **kw: Any) -> None:
        """A request that cannot be read is the peer's fault: a line, not a traceback."""
        if isinstance(exc_info, HttpProcessingError):
            log.info("refused a request: %s", exc_info.message)
        else:
            super().log_exception(message, *args, exc_info=exc_info, **kw)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Http:
    """The aiohttp application of one web port, and the handlers it makes for
    the connections ws.py hands over."""

    def __init__(self, config: ServerConfig, web_policy: Web) -> None:
        self.web = web_policy
        self.files = WebFiles()
        self.app = web.Application(middlewares=[self._guard])
        self.app.on_response_prepare.append(_secure)
        self.runner = web.AppRunner(self.app, access_log=None, handle_signals=False)

    def route(self, method: str, path: str, handler: Handler) -> None:
        """Adds an endpoint (before `start`)."""
        self.app.router.add_route(method, path, handler)

    async def start(self) -> None:
        """Serves; the page's files answer every GET no endpoint took."""
        self.app.router.add_get("/{path:.*}", self.files.serve)
        await self.runner.setup()

    async def close(self) -> None:
        await self.runner.cleanup()

    def handler(self, owner: Owner) -> HttpHandler:
        """A request handler for one connection, which `owner` drives."""
        server = self.runner.server
        assert server is not None, "start() first"
        return HttpHandler(
            owner,
            server,
            loop=asyncio.get_running_loop(),
            keepalive_timeout=KEEPALIVE,
            tcp_keepalive=False,  # the front end set the socket's own keepalive
            access_log=None,
            max_line_size=MAX_LINE,
            max_field_size=MAX_LINE,
            max_headers=MAX_HEADERS,
        )

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Every request: addressed to this server by name, or refused; once a
        whole request has come, the connection's deadline is over."""
        protocol = request.protocol
        if isinstance(protocol, HttpHandler):
            protocol.owner.request_began()
            if protocol.owner.ip and protocol.owner.ip != request.remote:  # behind a proxy
                request = request.clone(remote=protocol.owner.ip)
        transport = request.transport
        local = (transport.get_extra_info("sockname") or ("",))[0] if transport else None
        refused = self.web.host_refused(request.headers.getall("Host", []), local)
        if refused is not None:
            log.info("refused a request for host %s", request.headers.getall("Host", []))
            return text_response(refused, refusal_text(refused))
        return await handler(request)


async def _secure(request: web.Request, response: web.StreamResponse) -> None:
    """Every answer of the application carries the security headers (a file
    endpoint may set a stricter one of its own first)."""
    for name, value in SECURITY_HEADERS:
        response.headers.setdefault(name, value)
