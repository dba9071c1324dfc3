"""The running server: its parts, its policies, its life from start to stop."""

from __future__ import annotations

import asyncio
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
        self.tasks: set[asyncio.Task[None]] = set()
        per_minute = config.login_attempts_per_minute
        self.account_logins = Limiter(per_minute, per_minute / 60)
        self.flood = Limiter(config.message_burst, config.message_rate)
        self.listener: asyncio.Server | None = None
        self.tls: ssl.SSLContext | None = None

    @classmethod
    async def start(cls, config: ServerConfig) -> NexusServer:
        from nexus.server.transport import serve_connection

        store = await Store.open(config.data, fsync=config.fsync)
        server = cls(config, store)

        async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            server.tasks.add(task)
            try:
                await serve_connection(server, reader, writer)
            finally:
                server.tasks.discard(task)

        server.tls = server_context(config)
        tls_options = {"ssl": server.tls, "ssl_handshake_timeout": config.login_timeout}
        server.listener = await asyncio.start_server(
            on_connect,
            config.host,
            config.port,
            limit=config.max_frame,
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
        if self.tasks:
            await asyncio.wait(self.tasks, timeout=5)
        await self.listener.wait_closed()
        self.listener = None
        await self.store.close()
        self.hashing.close()

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
