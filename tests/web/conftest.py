"""Fixtures for the web front end: a server with --web-port, and peers over WebSocket."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.conftest import PASSWORD, Running, StartServer
from tests.web.browser import BrowserSession, browser_session
from tests.web.wspeer import WsPeer


class WebRunning:
    """A running server with its web port, and WebSocket peers opened against it."""

    def __init__(self, running: Running) -> None:
        self.running = running
        address = running.server.web_address
        assert address is not None
        self.web_host, self.web_port = address
        self.base = f"http://{self.web_host}:{self.web_port}"
        self.url = f"ws://{self.web_host}:{self.web_port}/ws"
        self.ws_peers: list[WsPeer] = []

    async def ws(self, **kwargs: Any) -> WsPeer:
        """A WebSocket peer that has read the server's hello."""
        peer = await WsPeer.open(self.url, **kwargs)
        self.ws_peers.append(peer)
        hello = await peer.frame()
        assert hello["event"] == "hello", hello
        return peer

    async def ws_user(self, name: str) -> WsPeer:
        peer = await self.ws()
        await peer.ok("register", username=name, password=PASSWORD)
        peer.name = name
        return peer

    async def get(self, path: str, headers: str = "") -> tuple[int, dict[str, str], bytes]:
        """A plain HTTP/1.1 GET, the connection's only request: (status, headers
        with lower-case names, body)."""
        reader, writer = await asyncio.open_connection(self.web_host, self.web_port)
        host = f"{self.web_host}:{self.web_port}"  # the server serves its own names only
        head = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n{headers}\r\n"
        writer.write(head.encode())
        raw = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        head, _, body = raw.partition(b"\r\n\r\n")
        status_line, *lines = head.decode().split("\r\n")
        fields = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
        return int(status_line.split()[1]), fields, body

    async def close(self) -> None:
        for peer in self.ws_peers:
            await peer.close()


@pytest.fixture
async def start_web(start_server: StartServer):
    """Starts servers with a web port (and any settings); closes their peers after."""
    started: list[WebRunning] = []

    async def start(**overrides: Any) -> WebRunning:
        web = WebRunning(await start_server(**{"web_port": 0, **overrides}))
        started.append(web)
        return web

    yield start
    for web in started:
        await web.close()


@pytest.fixture
async def web(start_web) -> WebRunning:
    return await start_web()


@pytest.fixture
async def browser() -> AsyncIterator[BrowserSession]:
    """A chromium for the test; fails the test if any page logged an error."""
    async with browser_session() as session:
        yield session
        assert session.errors() == []
