"""A raw JSON-lines peer for tests: sends exactly what it is told, keeps every frame."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from typing import Any

import orjson

from nexus.protocol import EVENTS, parse_event, parse_reply

TIMEOUT = 5.0


class Peer:
    """One TCP connection speaking the wire protocol, with no client logic."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.events: list[dict[str, Any]] = []
        self.name = ""  # the user it logged in as, if any
        self._ids = itertools.count(1)

    @classmethod
    async def connect(cls, host: str, port: int, **kwargs: Any) -> Peer:
        reader, writer = await asyncio.open_connection(host, port, limit=1 << 22, **kwargs)
        return cls(reader, writer)

    async def send_raw(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def send(self, frame: dict[str, Any]) -> None:
        await self.send_raw(orjson.dumps(frame) + b"\n")

    async def frame(self, timeout: float = TIMEOUT) -> dict[str, Any]:
        """The next frame of any kind; EOFError when the server closed.

        Every event is checked against its declaration in nexus.protocol, so
        the whole suite keeps the typed frames honest."""
        line = await asyncio.wait_for(self.reader.readline(), timeout)
        if not line:
            raise EOFError("connection closed")
        frame = orjson.loads(line)
        if "event" in frame:
            assert frame["event"] in EVENTS, frame
            parse_event(frame)
        return frame

    async def reply(self, timeout: float = TIMEOUT) -> dict[str, Any]:
        """The next reply, keeping events that arrive before it."""
        while True:
            frame = await self.frame(timeout)
            if "ok" in frame:
                return frame
            self.events.append(frame)

    async def request(self, cmd: str, **args: Any) -> dict[str, Any]:
        rid = next(self._ids)
        await self.send({"id": rid, "cmd": cmd, **args})
        reply = await self.reply()
        assert reply.get("id") == rid, reply
        if reply["ok"]:
            parse_reply(cmd, reply)  # the reply has the fields its command declares
        return reply

    async def pipeline(self, frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Sends every frame at once, then collects their replies (in order)."""
        ids = [next(self._ids) for _ in frames]
        await self.send_raw(
            b"".join(orjson.dumps({**f, "id": i}) + b"\n" for f, i in zip(frames, ids, strict=True))
        )
        replies = [await self.reply() for _ in frames]
        assert [r.get("id") for r in replies] == ids
        return replies

    async def burst(self, frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Pipelines `frames`; every reply must be ok."""
        replies = await self.pipeline(frames)
        assert all(r["ok"] for r in replies), [r for r in replies if not r["ok"]][:3]
        return replies

    async def ok(self, cmd: str, **args: Any) -> dict[str, Any]:
        """A request that must succeed."""
        reply = await self.request(cmd, **args)
        assert reply["ok"] is True, reply
        return reply

    async def fails(self, code: str, cmd: str, **args: Any) -> dict[str, Any]:
        """A request that must fail with `code`."""
        reply = await self.request(cmd, **args)
        assert reply["ok"] is False and reply["error"]["code"] == code, reply
        assert reply["error"]["message"]
        return reply["error"]

    async def event(self, name: str, timeout: float = TIMEOUT, **match: Any) -> dict[str, Any]:
        """The first event called `name` whose fields include `match` (kept or new)."""
        for i, ev in enumerate(self.events):
            if ev.get("event") == name and all(ev.get(k) == v for k, v in match.items()):
                return self.events.pop(i)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            frame = await self.frame(max(0.01, deadline - loop.time()))
            if frame.get("event") == name and all(frame.get(k) == v for k, v in match.items()):
                return frame
            self.events.append(frame)

    async def no_event(self, name: str, wait: float = 0.2) -> None:
        """Asserts that no `name` event arrives within `wait` seconds."""
        assert not any(ev.get("event") == name for ev in self.events), self.events
        try:
            frame = await self.event(name, timeout=wait)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected {frame}")

    async def closed(self, timeout: float = TIMEOUT) -> bool:
        """True once the server has closed the connection (frames before it are kept)."""
        try:
            while True:
                self.events.append(await self.frame(timeout))
        except EOFError:
            return True
        except ConnectionResetError:
            return True

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.wait_closed()
