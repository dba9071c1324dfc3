"""A raw protocol peer over WebSocket: the TCP test peer's methods, one frame a message."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from nexus.protocol import EVENTS, parse_event
from tests.wire import TIMEOUT, Peer


class WsPeer(Peer):
    """One WebSocket to /ws speaking the wire protocol, with no client logic."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.events: list[dict[str, Any]] = []
        self.name = ""
        self._ids = itertools.count(1)

    @classmethod
    async def open(cls, url: str, **kwargs: Any) -> WsPeer:
        return cls(await connect(url, max_size=None, **kwargs))

    async def send_raw(self, data: bytes) -> None:
        """Each newline-ended line of `data` as one text message."""
        for line in data.split(b"\n")[:-1]:
            await self.ws.send(line.decode())

    async def frame(self, timeout: float = TIMEOUT) -> dict[str, Any]:
        try:
            message = await asyncio.wait_for(self.ws.recv(), timeout)
        except ConnectionClosed:
            raise EOFError("connection closed") from None
        frame = orjson.loads(message)
        if "event" in frame:
            assert frame["event"] in EVENTS, frame
            parse_event(frame)
        return frame

    async def close(self) -> None:
        with contextlib.suppress(ConnectionClosed, OSError):
            await self.ws.close()
