"""One connection's state and its queue of outbound frames.

Frames queue here and leave in one write per flush (see outbox.py); a
broadcast is queued as a view of the room's shared frames. A session whose
unsent bytes would pass the cap is aborted: a reader that stalls cannot
stall its room or hold memory.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from nexus.protocol import encode
from nexus.server.outbox import Broadcast, Outbox, View
from nexus.server.ratelimit import TokenBucket

log = logging.getLogger("nexus.session")

# A session is anonymous until it logs in. Each command lists the states it
# is allowed in; elsewhere it is refused with the state's code.
ANONYMOUS, AUTHENTICATED = "anonymous", "authenticated"
REFUSAL = {
    ANONYMOUS: ("auth_required", "log in or register first"),
    AUTHENTICATED: ("already_authenticated", "already logged in"),
}


class Session:
    __slots__ = (
        "_close_after_flush",
        "_out",
        "_reply_bytes",
        "_views",
        "closed",
        "frames",
        "login_bucket",
        "max_outbound",
        "outbox",
        "peer",
        "quitting",
        "transport",
        "user",
    )

    def __init__(
        self,
        transport: asyncio.Transport,
        peer: str,
        max_outbound: int,
        login_bucket: TokenBucket,
        outbox: Outbox,
    ) -> None:
        self.transport = transport
        self.peer = peer
        self.max_outbound = max_outbound
        self.login_bucket = login_bucket  # password attempts on this connection
        self.outbox = outbox
        self.user: str | None = None  # the user's key once authenticated
        self.frames = 0  # frames received
        self.closed = False  # no more frames are queued; the queue may still go out
        self.quitting = False
        self._close_after_flush = False
        self._out: list[bytes | View] = []  # frames and views, in the order queued
        self._views: list[View] = []  # views still open: later room frames join them
        self._reply_bytes = 0  # bytes of replies queued since the last flush

    @property
    def state(self) -> str:
        return ANONYMOUS if self.user is None else AUTHENTICATED

    def send(self, data: bytes, reply: bool = False) -> None:
        """Queues encoded frames for this session alone."""
        if self.closed:
            return
        if self._views:
            # Room frames arriving from now on belong after this one.
            for view in self._views:
                broadcast = view.broadcast
                view.end = len(broadcast.frames)
                broadcast.stragglers.append(self)
            self._views.clear()
        if not self._out:
            self.outbox.mark(self)
        self._out.append(data)
        if reply:
            self._reply_bytes += len(data)

    def send_frame(self, frame: dict[str, Any]) -> None:
        self.send(encode(frame))

    def reply(self, frame: dict[str, Any], unwritten: bool = False) -> None:
        """Queues the reply to this session's request; `unwritten` says the
        request made a change the store has not written yet."""
        data = encode(frame)
        self.send(data, reply=True)
        self.outbox.note_reply(self, data, frame.get("id"), unwritten)

    def behind(self) -> bool:
        """Whether replies queued since the last flush and bytes the kernel
        has not taken yet pass the cap: answering more would only pile up."""
        return self._reply_bytes + self.transport.get_write_buffer_size() > self.max_outbound

    def watch(self, broadcast: Broadcast, start: int) -> None:
        """Queues the broadcast's frames from `start` on, including later ones."""
        if self.closed:
            return
        view = View(broadcast, start)
        if not self._out:
            self.outbox.mark(self)
        self._out.append(view)
        self._views.append(view)

    def flush(self) -> None:
        """Writes the queue in one write; aborts if what the kernel would not
        take leaves more than the cap unsent in the server.

        Replies written in this flush do not count against the cap: one large
        page must not cut off the reader that asked for it. From the next
        flush on, whatever the transport still holds counts.
        """
        out = self._out
        transport = self.transport
        if out and not transport.is_closing():
            parts = [part if type(part) is bytes else part.bytes() for part in out]
            transport.write(parts[0] if len(parts) == 1 else b"".join(parts))
            if transport.get_write_buffer_size() - self._reply_bytes > self.max_outbound:
                log.warning("%s: %s fell too far behind, disconnecting", self.peer, self.user)
                self.abort()
                return
        self.discard_queue()
        if self._close_after_flush:
            self.transport.close()

    def requeue(self, replies: list[bytes]) -> bool:
        """Replaces the queue by `replies` (a refused write dropped the rest);
        True if a flush is still due."""
        self._out = replies
        self._views.clear()
        self._reply_bytes = sum(map(len, replies))
        return bool(replies) or self._close_after_flush

    def discard_queue(self) -> None:
        self._out = []
        self._views.clear()
        self._reply_bytes = 0

    def close(self) -> None:
        """Closes once what is queued has gone out with the next flush."""
        if self.closed:
            return
        self.closed = True
        if self._out:
            self._close_after_flush = True
        else:
            self.transport.close()

    def abort(self) -> None:
        """Drops the connection and everything unsent at once."""
        self.closed = True
        self.discard_queue()
        self.transport.abort()

    def __repr__(self) -> str:
        return f"<Session {self.peer} {self.user or '-'}>"
