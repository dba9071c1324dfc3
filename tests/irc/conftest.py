"""IRC test peers: a raw IRC client over a real socket that keeps every line."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import re
import ssl
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from tests.conftest import PASSWORD, Running, StartServer

TIMEOUT = 5.0
ADMIN = "root"  # the server admin every IRC test server starts with


class IrcPeer:
    """One IRC connection that sends exactly what it is told."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.lines: list[str] = []  # every line read, in order
        self.nick = "*"

    @classmethod
    async def connect(cls, host: str, port: int, tls: ssl.SSLContext | None = None) -> IrcPeer:
        reader, writer = await asyncio.open_connection(host, port, ssl=tls, limit=1 << 20)
        return cls(reader, writer)

    async def send(self, *lines: str) -> None:
        self.writer.write("".join(line + "\r\n" for line in lines).encode())
        await self.writer.drain()

    async def send_raw(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def line(self, timeout: float = TIMEOUT) -> str:
        raw = await asyncio.wait_for(self.reader.readline(), timeout)
        if not raw:
            raise EOFError("connection closed")
        assert raw.endswith(b"\r\n"), raw
        text = raw[:-2].decode()
        self.lines.append(text)
        return text

    async def expect(self, pattern: str, timeout: float = TIMEOUT) -> re.Match[str]:
        """Reads until a line matches `pattern` (a regex searched in the line)."""
        compiled = re.compile(pattern)
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise AssertionError(f"no line matching {pattern!r}; got {self.lines[-15:]}")
            try:
                text = await self.line(left)
            except TimeoutError:
                raise AssertionError(
                    f"no line matching {pattern!r}; got {self.lines[-15:]}"
                ) from None
            found = compiled.search(text)
            if found:
                return found

    async def until(self, pattern: str, timeout: float = TIMEOUT) -> list[str]:
        """Every line up to and including the first that matches `pattern`."""
        start = len(self.lines)
        await self.expect(pattern, timeout)
        return self.lines[start:]

    async def join(self, *channels: str) -> None:
        """JOINs each channel in turn, reading up to the end of its NAMES."""
        for channel in channels:
            await self.send(f"JOIN {channel}")
            await self.expect(rf" 366 {re.escape(self.nick)} {re.escape(channel)} ")

    async def quiet(self, timeout: float = 0.3) -> list[str]:
        """The lines that arrive within `timeout` (to check nothing more came)."""
        start = len(self.lines)
        try:
            while True:
                await self.line(timeout)
        except (TimeoutError, EOFError):
            pass
        return self.lines[start:]

    async def closed(self, timeout: float = TIMEOUT) -> None:
        """Reads until the server closes the connection."""
        with pytest.raises(EOFError):
            while True:
                await self.line(timeout)

    async def register(
        self, name: str, password: str = PASSWORD, caps: str = "", sasl: bool = True
    ) -> None:
        """Logs in as `name` (SASL PLAIN, or PASS) and reads up to the end of the MOTD."""
        if sasl:
            wanted = " ".join(["sasl", *caps.split()])
            await self.send("CAP LS 302", f"NICK {name}", f"USER {name} 0 * :real")
            await self.expect(r" CAP \* LS ")
            await self.send(f"CAP REQ :{wanted}")
            await self.expect(r" CAP \S+ ACK ")
            creds = base64.b64encode(f"{name}\0{name}\0{password}".encode()).decode()
            await self.send("AUTHENTICATE PLAIN")
            await self.expect(r"^AUTHENTICATE \+$")
            await self.send(f"AUTHENTICATE {creds}")
            await self.expect(r" 903 ")
            await self.send("CAP END")
        else:
            if caps:
                await self.send("CAP LS 302", f"CAP REQ :{caps}", "CAP END")
            await self.send(f"PASS :{name}:{password}", f"NICK {name}", f"USER {name} 0 * :real")
        await self.expect(r" 001 ")
        await self.expect(r" (376|422) ")
        self.nick = name

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


class IrcServer:
    """A running server with IRC on, and ways to reach it both ways."""

    def __init__(self, running: Running) -> None:
        self.running = running
        name = "irc" if "irc" in running.server.irc else "ircs"
        self.host, self.port = running.server.irc_address(name)
        self.peers: list[IrcPeer] = []

    async def peer(self) -> IrcPeer:
        peer = await IrcPeer.connect(self.host, self.port)
        self.peers.append(peer)
        return peer

    async def account(self, name: str) -> None:
        """Registers `name` over the native protocol, then leaves."""
        native = await self.running.user(name)
        await native.ok("quit")

    async def irc_user(self, name: str, caps: str = "", joined: str = "#general") -> IrcPeer:
        """A registered account logged in over IRC, having seen its burst up to `joined`."""
        await self.account(name)
        peer = await self.peer()
        await peer.register(name, caps=caps)
        if joined:
            await peer.expect(rf" 366 {name} {joined} ")
        return peer

    async def guest(self, nick: str, caps: str = "") -> IrcPeer:
        """A client in as a guest (NICK and USER alone), having read its welcome."""
        peer = await self.peer()
        if caps:
            await peer.send("CAP LS 302", f"CAP REQ :{caps}", "CAP END")
        await peer.send(f"NICK {nick}", f"USER {nick} 0 * :guest")
        await peer.expect(rf" 001 {nick} ")
        await peer.expect(rf"^:nexus NOTICE {nick} :You are a guest")
        peer.nick = nick
        return peer

    async def close(self) -> None:
        for peer in self.peers:
            await peer.close()


@pytest.fixture
async def start_irc(start_server: StartServer) -> AsyncIterator[Callable[..., Any]]:
    servers: list[IrcServer] = []

    async def start(**overrides: Any) -> IrcServer:
        if "irc_port" not in overrides:
            overrides["irc_port"] = 0
        server = IrcServer(await start_server(**overrides))
        servers.append(server)
        # The store's first account is its admin, an operator everywhere: not
        # one of the people a test watches.
        await server.account(ADMIN)
        return server

    yield start
    for server in servers:
        await server.close()


@pytest.fixture
async def irc(start_irc: Callable[..., Any]) -> IrcServer:
    """A server with IRC on a free port."""
    server: IrcServer = await start_irc()
    return server


@pytest.fixture
async def irc_guests(start_irc: Callable[..., Any]) -> IrcServer:
    """A server with IRC on and guests allowed."""
    server: IrcServer = await start_irc(irc_guests=True)
    return server
