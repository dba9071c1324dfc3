"""The running server: its parts, its policies, its life from start to stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections import Counter

from nexus.errors import NexusError
from nexus.protocol import encode, event
from nexus.server.auth import PasswordHashing
from nexus.server.commands import not_saved
from nexus.server.config import ServerConfig
from nexus.server.hub import Hub
from nexus.server.outbox import Outbox
from nexus.server.ratelimit import Limiter, TokenBucket
from nexus.server.session import Session
from nexus.server.store import Store, StoreError
from nexus.server.tls import server_context

log = logging.getLogger("nexus.server")


class NexusServer:
    """Owns the store, the hub and the listening socket.

    `await NexusServer.start(config)` returns once it listens; `address`
    says where. `await server.stop()` stops accepting, closes every session
    and folds the journal into the snapshot.
    """

    def __init__(self, config: ServerConfig, store: Store) -> None:
        self.config = config
        self.store = store
        self.outbox = Outbox(held=store.has_unwritten)
        self.hub = Hub(self.outbox)
        store.on_written = self.outbox.flush
        store.on_refused = self._refuse_held
        self.hashing = PasswordHashing(config.password_params)
        self.sessions: set[Session] = set()
        self.connections: Counter[str] = Counter()  # open connections per address
        self._all_gone: asyncio.Event | None = None  # set once stop() has no sessions left
        per_minute = config.login_attempts_per_minute
        self.account_logins = Limiter(per_minute, per_minute / 60)
        self.flood = Limiter(config.message_burst, config.message_rate)
        self.listener: asyncio.Server | None = None
        self.tls: ssl.SSLContext | None = None

    @classmethod
    async def start(cls, config: ServerConfig) -> NexusServer:
        from nexus.server.transport import Connection

        store = await Store.open(config.data, fsync=config.fsync)
        server = cls(config, store)
        server.tls = server_context(config)
        tls_options = {"ssl": server.tls, "ssl_handshake_timeout": config.login_timeout}
        server.listener = await asyncio.get_running_loop().create_server(
            lambda: Connection(server),
            config.host,
            config.port,
            backlog=1024,
            **(tls_options if server.tls else {}),
        )
        return server

    @property
    def address(self) -> tuple[str, int]:
        return self.listener.sockets[0].getsockname()[:2]

    async def stop(self) -> None:
        if self.listener is None:
            return
        self.listener.close()
        for session in list(self.sessions):
            session.close()
        if self.sessions:  # each leaves once its queue is out and its handler done
            self._all_gone = asyncio.Event()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._all_gone.wait(), 5)
        await self.listener.wait_closed()
        self.listener = None
        await self.store.close()
        self.hashing.close()

    def forget(self, session: Session, ip: str) -> None:
        """A connection is gone for good."""
        self.sessions.discard(session)
        self.connections[ip] -= 1
        if not self.connections[ip]:
            del self.connections[ip]
        if not self.sessions and self._all_gone is not None:
            self._all_gone.set()

    def _refuse_held(self, failure: StoreError) -> None:
        self.outbox.refuse_held(lambda rid: encode(not_saved(rid, failure)))

    # -- policies used by the commands -----------------------------------

    def new_login_bucket(self) -> TokenBucket:
        per_minute = self.config.login_attempts_per_minute
        return TokenBucket(per_minute, per_minute / 60, time.monotonic())

    def check_login_rate(self, session: Session, account: str | None) -> None:
        """Refuses password attempts beyond the per-connection and per-account rate."""
        now = time.monotonic()
        wait = session.login_bucket.take(now)
        if account is not None:
            wait = max(wait, self.account_logins.take(account, now))
        if wait:
            raise NexusError("rate_limited", "too many login attempts", retry_after=round(wait, 3))

    def check_flood(self, key: str) -> None:
        if not self.config.rate_limit:
            return
        wait = self.flood.take(key, time.monotonic())
        if wait:
            raise NexusError("rate_limited", "slow down", retry_after=round(wait, 3))

    def announce_presence(self, key: str, online: bool) -> None:
        """Tells the other users who share a room with `key` that it came or went."""
        model = self.store.model
        user = model.users[key]
        peers = set()
        for name in user.rooms:
            peers |= model.rooms[name].members
        peers.discard(key)
        frame = encode(event("presence", user=user.username, online=online))
        self.hub.send_users(peers, frame)
