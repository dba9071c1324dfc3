"""Shared fixtures: a real server on 127.0.0.1 port 0, and peers connected to it."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from nexus.server.auth import FAST
from nexus.server.config import ServerConfig
from nexus.server.core import Connection
from nexus.server.server import NexusServer
from tests.wire import Peer

PASSWORD = "correct horse"


def test_config(data: Path, **overrides: Any) -> ServerConfig:
    """A loopback server with cheap password hashing, no flood control and no
    cap on registrations (every test peer registers from 127.0.0.1)."""
    settings: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": 0,
        "data": data,
        "log": data.with_suffix(".log"),
        "motd": "test server",
        "password_params": dict(FAST),
        "rate_limit": False,
        "registrations_per_hour": 0,
    }
    settings.update(overrides)
    return ServerConfig(**settings)


class Running:
    """A started in-process server and the peers opened against it."""

    def __init__(self, server: NexusServer) -> None:
        self.server = server
        self.host, self.port = server.address
        self.peers: list[Peer] = []
        self._names = itertools.count(1)

    async def peer(self, **kwargs: Any) -> Peer:
        """A connected peer that has read the server's hello."""
        peer = await Peer.connect(self.host, self.port, **kwargs)
        self.peers.append(peer)
        hello = await peer.frame()
        assert hello["event"] == "hello", hello
        return peer

    async def user(self, name: str | None = None, register: bool = True) -> Peer:
        """A peer registered (or logged in) as `name`, or as a fresh name."""
        name = name or f"user{next(self._names)}"
        peer = await self.peer()
        await peer.ok("register" if register else "login", username=name, password=PASSWORD)
        peer.name = name
        return peer

    def connections(self, user: str | None = None) -> list[Connection]:
        """The server's live connections (logged in as `user`, if given)."""
        core = self.server.core
        return [c for c in core.connections if user is None or c.session.user == user]

    @staticmethod
    def transport(connection: Connection) -> asyncio.Transport:
        """The server-side transport under a TCP connection."""
        return connection.session.outlet.link.transport  # type: ignore[attr-defined,no-any-return]

    async def close(self) -> None:
        for peer in self.peers:
            await peer.close()
        await self.server.stop()


StartServer = Callable[..., Awaitable[Running]]


@pytest.fixture
async def start_server(tmp_path: Path) -> AsyncIterator[StartServer]:
    """Starts servers (optionally with settings) and stops them after the test."""
    running: list[Running] = []

    async def start(data: Path | None = None, **overrides: Any) -> Running:
        config = test_config(data or tmp_path / "nexus_data.json", **overrides)
        server = Running(await NexusServer.start(config))
        running.append(server)
        return server

    yield start
    for server in running:
        if server.server.listener is not None:
            await server.close()


@pytest.fixture
async def server(start_server: StartServer) -> Running:
    """A running server with default test settings."""
    return await start_server()
