"""One client connection to a Nexus server: requests with replies, and a stream of events.

Built on the sans-I/O core (LineFramer, encode, decode) with a single reader
task. Requests carry integer ids; each reply resolves the future waiting for
it. Events are queued for `async for event in connection`. No UI here: the
terminal client, bots, tests and the benchmark all use this class.

    conn = ChatConnection()
    hello = await conn.connect("localhost", 9999)  # tls=ClientTLS... for TLS
    await conn.request("login", username="ana", password="...")
    await conn.request("say", room="general", text="hi")
    async for event in conn:
        ...
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from nexus.client.tls import ClientTLS
from nexus.errors import NexusError
from nexus.protocol import (
    MAX_FRAME,
    Event,
    Hello,
    LineFramer,
    MalformedFrame,
    decode,
    encode,
    error_of,
    parse_event,
    parse_reply,
)

READ_CHUNK = 1 << 16
# The longest frame read from the server. A request is at most MAX_FRAME (64 KiB), but a
# reply is not: a page of history is cut only at half the server's outbound cap (512 KiB
# by default), and 20 messages of 4,000 characters already make 80 KB.
REPLY_MAX = 1 << 20

log = logging.getLogger(__name__)


class ConnectionClosed(ConnectionError):
    """The connection is gone: pending and later requests fail with this."""


class ChatConnection:
    """A connection speaking protocol 1; see the module docstring for use.

    With `keep_events=False` events are dropped on arrival, for callers that
    only make requests and would otherwise let the queue grow without bound.
    """

    def __init__(self, *, max_frame: int = REPLY_MAX, keep_events: bool = True) -> None:
        self.hello: Hello | None = None
        self._framer = LineFramer(max_frame)
        self._keep_events = keep_events
        self._events: asyncio.Queue[Event | None] = asyncio.Queue()  # None: no more events
        # Each reply comes with the count of events that came before it.
        self._pending: dict[int, asyncio.Future[tuple[dict[str, Any], int]]] = {}
        self._next_id = 1
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._closed = False
        self.events_received = 0  # events queued so far (request_counted tells them apart)
        self.tls_notice: str | None = None  # set when connect() pinned a new certificate
        # An error the server sent unasked, before closing (`auth_required` "password
        # changed" when the password was changed in another session).
        self.farewell: NexusError | None = None

    @property
    def closed(self) -> bool:
        return self._closed

    async def connect(
        self, host: str, port: int, *, timeout: float = 10.0, tls: ClientTLS | None = None
    ) -> Hello:
        """Opens the socket and waits for the server's `hello`, which it returns.

        With `tls` the stream is TLS and the certificate passes `tls.check()`
        before anything is read. Raises OSError (refused, unreachable, TLS
        handshake or verification failures are ssl.SSLError; a malformed
        `hello` is ConnectionClosed), TimeoutError, or tls.CertificateChanged.
        """
        async with asyncio.timeout(timeout):
            if tls is None:
                reader, self._writer = await asyncio.open_connection(host, port)
            else:
                reader, self._writer = await asyncio.open_connection(
                    host, port, ssl=tls.context, server_hostname=host
                )
                try:
                    der = self._writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
                    self.tls_notice = tls.check(host, port, der)
                except BaseException:
                    await self.close()
                    raise
            hello_seen: asyncio.Future[Hello] = asyncio.get_running_loop().create_future()
            self._reader_task = asyncio.create_task(self._read(reader, hello_seen))
            try:
                self.hello = await hello_seen
            except BaseException:
                await self.close()
                raise
        return self.hello

    async def request(self, cmd: str, **args: Any) -> Any:
        """Sends `cmd` and returns its `ok` reply; an `ok: false` raises NexusError.

        The reply has been checked against `REPLIES[cmd]`, so callers annotate
        it with that type (`reply: JoinReply = ...`) and read its fields
        directly. One missing or mistyped field raises NexusError `internal`
        here, instead of a KeyError wherever the field is read.

        A trailing underscore is stripped from argument names (`with_=` sends
        `with`) and None-valued arguments are left out.
        """
        reply, _ = await self.request_counted(cmd, **args)
        return reply

    async def request_counted(self, cmd: str, **args: Any) -> tuple[Any, int]:
        """As `request`, with how many events had come before the reply (the ones the
        server sent before answering, its own events about the change among them)."""
        if self._closed or self._writer is None:
            raise ConnectionClosed("not connected")
        rid = self._next_id
        self._next_id += 1
        frame = {"id": rid, "cmd": cmd}
        frame.update((key.rstrip("_"), value) for key, value in args.items() if value is not None)
        data = encode(frame)
        if len(data) > MAX_FRAME:  # the server would close the connection over it
            raise NexusError(
                "too_long",
                f"not sent: {len(data):,} bytes, more than the {MAX_FRAME:,} a request may be",
            )
        future = asyncio.get_running_loop().create_future()
        self._pending[rid] = future
        try:
            self._writer.write(data)
            await self._writer.drain()
        except (ConnectionError, OSError) as exc:
            self._pending.pop(rid, None)
            raise ConnectionClosed(str(exc) or "connection lost") from None
        reply, events = await future
        if reply.get("ok") is not True:
            raise error_of(reply)
        try:
            return parse_reply(cmd, reply), events
        except MalformedFrame as exc:
            raise NexusError("internal", f"the server sent a {exc}") from None

    def abort(self) -> None:
        """Drops the socket at once, without `quit`; the reader then fails what is pending."""
        if self._writer is not None:
            self._writer.transport.abort()

    async def close(self) -> None:
        """Drops the socket and waits until pending requests have failed."""
        self.abort()
        if self._reader_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader_task
        self._finish("connection closed")

    async def quit(self) -> None:
        """Says goodbye politely (the server answers, then closes) and closes."""
        with contextlib.suppress(ConnectionClosed, NexusError, TimeoutError):
            async with asyncio.timeout(2):
                await self.request("quit")
        await self.close()

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Event]:
        while True:
            event = await self._events.get()
            if event is None:
                self._events.put_nowait(None)  # so a second iterator ends too
                return
            yield event

    async def _read(self, reader: asyncio.StreamReader, hello_seen: asyncio.Future[Hello]) -> None:
        reason = "connection closed by the server"
        try:
            while data := await reader.read(READ_CHUNK):
                for line in self._framer.feed(data):
                    self._dispatch(line, hello_seen)
                if self._framer.too_large:
                    reason = "the server sent an over-long frame"
                    break
        except (ConnectionError, OSError) as exc:
            reason = str(exc) or "connection lost"
        finally:
            if not hello_seen.done():
                hello_seen.set_exception(ConnectionClosed(reason))
            self.abort()
            self._finish(reason)

    def _dispatch(self, line: bytes, hello_seen: asyncio.Future[Hello]) -> None:
        try:
            frame = decode(line)
        except NexusError:
            return  # a garbled frame from the server: nothing sensible to do with it
        if frame is None:
            return
        if "ok" in frame:
            rid = frame.get("id")
            future = self._pending.pop(rid, None) if isinstance(rid, int) else None
            if rid is None and frame.get("ok") is False:
                self.farewell = error_of(frame)
            if future is None and rid is None and self._pending:
                # Replies come in request order: an id-less one answers the oldest.
                future = self._pending.pop(next(iter(self._pending)))
            if future is not None and not future.done():
                future.set_result((frame, self.events_received))
        elif "event" in frame and (self._keep_events or not hello_seen.done()):
            self._dispatch_event(frame, hello_seen)

    def _dispatch_event(self, frame: dict[str, Any], hello_seen: asyncio.Future[Hello]) -> None:
        """Checks an event before anything reads it: one bad frame costs that event only."""
        try:
            event = parse_event(frame)
        except MalformedFrame as exc:
            if frame["event"] == "hello" and not hello_seen.done():
                # Without a hello to go by, waiting for the timeout would only hide why.
                hello_seen.set_exception(ConnectionClosed(f"the server sent a {exc}"))
            else:
                log.warning("dropped a %s from the server", exc)
            return
        if event is None:
            return  # a kind a newer server sends: this client has nothing to do with it
        if event["event"] == "hello" and not hello_seen.done():
            hello_seen.set_result(event)
        elif self._keep_events:
            self.events_received += 1
            self._events.put_nowait(event)

    def _finish(self, reason: str) -> None:
        if self._closed:
            return
        self._closed = True
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ConnectionClosed(reason))
        self._pending.clear()
        self._events.put_nowait(None)
