"""The PROXY protocol (v1 and v2, as HAProxy's `send-proxy` sends it): behind
a load balancer every connection comes from the balancer's address, so the
per-address caps, login throttling and flood control would count everyone
as one peer. A connection from an address in `--proxy-from` must begin
with the header naming the client; the front end then sees that address
(caps, throttling, logs, HTTP's `request.remote`). Connections from other
addresses are handed over untouched, and a header from them is not
believed (it is the front end's to refuse as a bad frame).

The spec: https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import struct
from collections.abc import Callable, Sequence
from typing import cast

from nexus.server.frontends.tcp import TcpProtocol

log = logging.getLogger("nexus.proxy")

V1 = b"PROXY "
V1_MAX = 107  # the longest v1 header, CRLF included
V2 = b"\r\n\r\n\x00\r\nQUIT\n"
V2_MAX = 16 + 216 + 1024  # signature and fixed part, addresses, TLVs HAProxy may add
SIGNATURE_BYTES = len(V2)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Peer = tuple[str, int]


class BadHeader(ValueError):
    """The bytes from a trusted proxy are not a PROXY header."""


def networks(cidrs: Sequence[str]) -> tuple[Network, ...]:
    """`--proxy-from`'s networks (the config checked them)."""
    return tuple(ipaddress.ip_network(cidr) for cidr in cidrs)


def read_header(data: bytes) -> tuple[Peer | None, int] | None:
    """The client a PROXY header names (None: the proxy speaks for itself, a
    health check) and the header's length; None while more bytes are needed.
    Raises BadHeader for anything else."""
    if V2.startswith(data[:SIGNATURE_BYTES]):
        return _v2(data) if len(data) >= SIGNATURE_BYTES else None
    if V1.startswith(data[: len(V1)]):
        return _v1(data) if len(data) >= len(V1) else None
    raise BadHeader("no PROXY header")


def _v1(data: bytes) -> tuple[Peer | None, int] | None:
    end = data.find(b"\r\n", 0, V1_MAX)
    if end < 0:
        if len(data) >= V1_MAX:
            raise BadHeader("a PROXY v1 line too long")
        return None
    parts = data[:end].split(b" ")
    if parts[1:2] == [b"UNKNOWN"]:
        return None, end + 2
    if len(parts) != 6 or parts[1] not in (b"TCP4", b"TCP6"):
        raise BadHeader("a malformed PROXY v1 line")
    try:
        address = ipaddress.ip_address(parts[2].decode("ascii"))
        port = int(parts[4])
    except (UnicodeDecodeError, ValueError):
        raise BadHeader("a malformed PROXY v1 address") from None
    if address.version != (4 if parts[1] == b"TCP4" else 6) or not 0 <= port <= 65535:
        raise BadHeader("a malformed PROXY v1 address")
    return (str(address), port), end + 2


def _v2(data: bytes) -> tuple[Peer | None, int] | None:
    if len(data) < 16:
        return None
    version_command, family, length = struct.unpack_from("!BBH", data, SIGNATURE_BYTES)
    if version_command >> 4 != 2 or version_command & 0xF > 1 or 16 + length > V2_MAX:
        raise BadHeader("a malformed PROXY v2 header")
    if len(data) < 16 + length:
        return None
    if version_command & 0xF == 0:  # LOCAL: the proxy's own connection
        return None, 16 + length
    body = data[16 : 16 + length]
    kind = family >> 4  # the spec's numbers, not the socket module's
    if kind == 1 and len(body) >= 12:  # AF_INET: source, destination, their ports
        return (socket.inet_ntop(socket.AF_INET, body[:4]), _port(body, 8)), 16 + length
    if kind == 2 and len(body) >= 36:  # AF_INET6
        return (socket.inet_ntop(socket.AF_INET6, body[:16]), _port(body, 32)), 16 + length
    if kind in (0, 3):  # AF_UNSPEC, AF_UNIX: no client address to take
        return None, 16 + length
    raise BadHeader("a PROXY v2 header of an unknown address family")


def _port(body: bytes, offset: int) -> int:
    return cast(int, struct.unpack_from("!H", body, offset)[0])


class ProxyHeader(asyncio.Protocol):
    """A connection until its PROXY header is read: then the front end's
    protocol takes the transport, with the client's address as its peer."""

    def __init__(self, inner: TcpProtocol, trusted: tuple[Network, ...], timeout: float) -> None:
        self.inner = inner
        self.trusted = trusted
        self.timeout = timeout
        self.transport: asyncio.Transport | None = None
        self.data = b""
        self.deadline: asyncio.TimerHandle | None = None

    def connection_made(self, base: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, base)
        peer = transport.get_extra_info("peername") or ("?", 0)
        if not self._trusted(peer[0]):
            self._hand_over(transport, None, b"")
            return
        self.transport = transport
        self.deadline = asyncio.get_running_loop().call_later(self.timeout, transport.abort)

    def _trusted(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return False
        if address.version == 6 and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.trusted)

    def data_received(self, data: bytes) -> None:
        transport = self.transport
        assert transport is not None
        self.data += data
        try:
            read = read_header(self.data)
        except BadHeader as exc:
            peer = transport.get_extra_info("peername")
            log.warning("dropped a connection from proxy %s: %s", peer, exc)
            transport.abort()
            return
        if read is not None:
            client, length = read
            self._hand_over(transport, client, self.data[length:])

    def _hand_over(self, transport: asyncio.Transport, client: Peer | None, rest: bytes) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
        inner = self.inner
        inner.peer = client
        transport.set_protocol(inner)
        inner.connection_made(transport)
        if rest and not transport.is_closing():
            inner.data_received(rest)

    def eof_received(self) -> bool:
        return False  # a proxy's health check: it connected and went

    def connection_lost(self, exc: Exception | None) -> None:
        if self.deadline is not None:
            self.deadline.cancel()


def behind_proxies(
    make: Callable[[], TcpProtocol], trusted: tuple[Network, ...], timeout: float
) -> Callable[[], asyncio.Protocol]:
    """The listener's protocol factory: `make` itself when no proxy is
    trusted (nothing in the way), else each connection through ProxyHeader."""
    if not trusted:
        return make
    return lambda: ProxyHeader(make(), trusted, timeout)
