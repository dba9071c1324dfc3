"""Several servers for one chat: the nodes of a cluster, tried in order.

The server setting (the HOST argument or --server flags, `server` in
client.toml, $NEXUS_CHAT_SERVER) may name several, comma-separated (a list
in client.toml, one flag each), each `HOST` or `HOST:PORT` (`[::1]:9999`
for an IPv6 address); one without a port uses the port setting. A client
connects to the first that answers, and when its connection fails it tries
the next at once, waiting only once a whole round has failed. Every node
numbers a room's messages alike, so catching up after a move is what it is
after any reconnect: fetching from the newest seq seen.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import NamedTuple, TypeVar

T = TypeVar("T")


class Server(NamedTuple):
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_servers(text: str, port: int) -> list[Server]:
    """The servers `text` names, in order; ValueError says what is wrong."""
    servers = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            raise ValueError(f"an empty server name in {text!r}")
        host, given = item, None
        if item.startswith("["):  # [v6] or [v6]:port
            end = item.find("]")
            host, rest = item[1:end], item[end + 1 :]
            if end < 0 or (rest and not rest.startswith(":")):
                raise ValueError(f"not a server: {item!r} (an IPv6 address goes as [ADDRESS]:PORT)")
            given = rest[1:] if rest else None
        elif item.count(":") == 1:
            host, given = item.split(":")
        if given is not None and not (given.isdecimal() and 0 < int(given) < 65536):
            raise ValueError(f"not a TCP port: {given!r} in {item!r}")
        if not host:
            raise ValueError(f"no host in {item!r}")
        servers.append(Server(host, int(given) if given is not None else port))
    return servers


async def first_answering(
    servers: Sequence[Server], attempt: Callable[[Server], Awaitable[T]]
) -> tuple[T, Server]:
    """`attempt`'s result for the first server it succeeds on, in order; if it
    fails on every one, the last server's error (OSError or TimeoutError)."""
    for i, server in enumerate(servers):
        try:
            return await attempt(server), server
        except (OSError, TimeoutError):
            if i == len(servers) - 1:
                raise
    raise ValueError("no server to try")
