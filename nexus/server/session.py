"""One connection's state and its outbound buffer.

Frames for a session are buffered and written once per event-loop pass, so
a broadcast costs one `write()` per recipient per pass, not per message, and
never awaits the recipient. A session whose unsent bytes pass the cap is
aborted: a reader that stalls cannot stall its room or hold memory.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from nexus.protocol import encode
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
        "_backlog",
        "_flush_handle",
        "_out",
        "_out_bytes",
        "closed",
        "frames",
        "login_bucket",
        "max_outbound",
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
    ) -> None:
        self.transport = transport
        self.peer = peer
        self.max_outbound = max_outbound
        self.login_bucket = login_bucket  # password attempts on this connection
        self.user: str | None = None  # the user's key once authenticated
        self.frames = 0  # frames received
        self.closed = False
        self.quitting = False
        self._out: list[bytes] = []
        self._out_bytes = 0
        # The transport's unsent bytes as of the last flush. They only shrink
        # until the next flush, so `_out_bytes + _backlog` never understates
        # what this session holds; the exact figure is read only when that
        # sum passes the cap, not once per frame.
        self._backlog = 0
        self._flush_handle: asyncio.Handle | None = None

    @property
    def state(self) -> str:
        return ANONYMOUS if self.user is None else AUTHENTICATED

    def send(self, data: bytes, reply: bool = False) -> None:
        """Queues encoded frames; they go out together at the end of this loop pass.

        A `reply` to the session's own request may take it past the cap if it
        was within the cap before: one large room list or page must not cut
        off the reader that asked for it. Anything queued after it is judged
        with the reply counted.
        """
        if self.closed:
            return
        if self._over_cap(0 if reply else len(data)):
            log.warning("%s: %s fell too far behind, disconnecting", self.peer, self.user)
            self.abort()
            return
        self._out.append(data)
        self._out_bytes += len(data)
        if self._flush_handle is None:
            self._flush_handle = asyncio.get_running_loop().call_soon(self._flush)

    def _over_cap(self, extra: int) -> bool:
        if self._out_bytes + extra + self._backlog <= self.max_outbound:
            return False
        self._backlog = self.transport.get_write_buffer_size()
        return self._out_bytes + extra + self._backlog > self.max_outbound

    def send_frame(self, frame: dict[str, Any], reply: bool = False) -> None:
        self.send(encode(frame), reply)

    def _flush(self) -> None:
        self._flush_handle = None
        out = self._out
        transport = self.transport
        if out and not transport.is_closing():
            transport.write(out[0] if len(out) == 1 else b"".join(out))
            self._backlog = transport.get_write_buffer_size()
        out.clear()
        self._out_bytes = 0

    def close(self) -> None:
        """Sends what is queued, then closes."""
        if self.closed:
            return
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush()
        self.closed = True
        self.transport.close()

    def abort(self) -> None:
        """Drops the connection and everything unsent at once."""
        self.closed = True
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        self._out.clear()
        self._out_bytes = 0
        self.transport.abort()

    def __repr__(self) -> str:
        return f"<Session {self.peer} {self.user or '-'}>"
