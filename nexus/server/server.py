"""The running server: its parts wired together, its front ends, its life from start to stop."""

from __future__ import annotations

import asyncio
import dataclasses
import ssl
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from nexus.server.auth import PasswordHashing
from nexus.server.clock import Clock, LoopClock
from nexus.server.commands import not_saved
from nexus.server.commands.moderation import grant_admins
from nexus.server.config import ServerConfig
from nexus.server.core import Core
from nexus.server.departure import guests_lost
from nexus.server.frames import Frame
from nexus.server.frontends.irc import IrcProtocol
from nexus.server.frontends.proxied import behind_proxies, networks
from nexus.server.frontends.tcp import TcpProtocol
from nexus.server.hub import Hub
from nexus.server.model import Model
from nexus.server.outbox import Outbox
from nexus.server.policy import Policy
from nexus.server.store import Store, StoreError, StoreListener
from nexus.server.store.engines import open_store
from nexus.server.tls import server_context

if TYPE_CHECKING:
    from nexus.server.bus import Bus
    from nexus.server.files.shelf import Shelf
    from nexus.server.frontends.http import Http

STOP_TIMEOUT = 5.0  # seconds stop() waits for connections to send what they have queued


class NexusServer:
    """Owns the store, the outbox, the connection core and the listening socket.

    `await NexusServer.start(config)` returns once it listens; `address`
    says where. `await server.stop()` stops accepting, closes every
    connection and folds the journal into the snapshot.
    """

    def __init__(self, config: ServerConfig, store: Store, clock: Clock | None = None) -> None:
        self.config = config
        self.store = store
        clock = LoopClock() if clock is None else clock
        self.outbox = Outbox(
            config.max_outbound, config.max_outbound_hard, config.slow_reader_timeout, clock
        )
        self.hashing = PasswordHashing(config.password_params)
        hub, policy = Hub(self.outbox), Policy(config)
        self.core = Core(config, store, self.outbox, hub, policy, self.hashing, clock)
        store.listeners.append(_Durability(self))
        self.tls: ssl.SSLContext | None = None
        self.listener: asyncio.Server | None = None
        self.irc: dict[str, asyncio.Server] = {}  # "irc" / "ircs" -> its listener
        self.web_listener: asyncio.Server | None = None  # with --web-port
        self.http: Http | None = None  # its HTTP side
        self.shelf: Shelf | None = None  # files, served by the web port
        self.bus: Bus | None = None  # with --bus: one node of several

    @classmethod
    async def start(cls, config: ServerConfig, clock: Clock | None = None) -> NexusServer:
        """Starts listening; its deadlines run on `clock` (the event loop's by default)."""
        store = await open_store(config)
        server = cls(config, store, clock)
        if config.bus:
            server._join_cluster()
        await grant_admins(store, list(config.admin))
        server.tls = server_context(config)
        store.start()
        loop = asyncio.get_running_loop()
        proxies = networks(config.proxy_from)

        def proxied(make: Callable[[], TcpProtocol]) -> Callable[[], asyncio.Protocol]:
            return behind_proxies(make, proxies, config.login_timeout)

        server.listener = await loop.create_server(
            proxied(lambda: TcpProtocol(server.core, server.tls)),
            config.host,
            config.port,
            backlog=1024,
        )
        if config.web_port is not None:
            # Imported here: aiohttp and Pillow take a third of a second to
            # load, and a server without a web port never uses them.
            from nexus.server.files.routes import Credentials, FileRoutes
            from nexus.server.files.shelf import Shelf, files_root
            from nexus.server.frontends.http import Http, Web
            from nexus.server.frontends.ws import WsProtocol

            site = server.http = Http(config, Web(config))
            shelf = server.shelf = Shelf(
                store, files_root(config.data), config.max_upload, config.upload_quota
            )
            shelf.public_url = config.public_url
            shelf.open()
            FileRoutes(shelf, Credentials(store, server.hashing, server.core.policy)).add_to(site)
            await site.start()
            server.web_listener = await loop.create_server(
                proxied(lambda: WsProtocol(server.core, server.tls, site)),
                config.web_host or config.host,
                config.web_port,
                backlog=1024,
            )
            shelf.web = (
                "https" if server.tls else "http",
                None if config.web_host in ("", "0.0.0.0", "::") else config.web_host,
                server.web_listener.sockets[0].getsockname()[1],
            )
            server.core.shelf = shelf
            shelf.start()
        for name, port in (("irc", config.irc_port), ("ircs", config.ircs_port)):
            if port is not None:
                tls = server.irc_tls() if name == "ircs" else None
                server.irc[name] = await loop.create_server(
                    proxied(partial(IrcProtocol, server.core, tls)), config.host, port, backlog=1024
                )
        return server

    def _join_cluster(self) -> None:
        """One node of several (store/clustered.py): what this hub tells goes
        to the others with the store's turns, what theirs told comes to this
        hub, and the bus says when there is something to read and who is
        online on the other nodes."""
        from nexus.server.bus import Bus
        from nexus.server.store.clustered import ClusteredStore

        store, hub = self.store, self.core.hub
        assert isinstance(store, ClusteredStore)
        hub.relay = store.relay
        store.told = lambda told: hub.tell(told, store.model)
        bus = self.bus = Bus(self.config.bus, store.node, store.notice, hub.sessions.keys)
        store.committed = bus.tell
        hub.elsewhere, hub.here = bus.elsewhere, bus.arrived
        bus.start()

    def irc_tls(self) -> ssl.SSLContext:
        """IRC over TLS: the server's certificate, or the self-signed one beside the data."""
        context = self.tls or server_context(dataclasses.replace(self.config, tls=True))
        assert context is not None
        return context

    def irc_address(self, name: str = "irc") -> tuple[str, int]:
        """Where the IRC ("irc") or IRC over TLS ("ircs") listener listens."""
        host, port = self.irc[name].sockets[0].getsockname()[:2]
        return host, port

    @property
    def address(self) -> tuple[str, int]:
        assert self.listener is not None
        host, port = self.listener.sockets[0].getsockname()[:2]
        return host, port

    @property
    def web_address(self) -> tuple[str, int] | None:
        """Where the web client listens, if it does."""
        if self.web_listener is None:
            return None
        host, port = self.web_listener.sockets[0].getsockname()[:2]
        return host, port

    async def stop(self) -> None:
        if self.listener is None:
            return
        listeners = [
            self.listener,
            *([self.web_listener] if self.web_listener else []),
            *self.irc.values(),
        ]
        for listener in listeners:
            listener.close()
        await self.core.close_all(STOP_TIMEOUT)
        for listener in listeners:
            await listener.wait_closed()
        self.listener = self.web_listener = None
        self.irc.clear()
        if self.http is not None:
            await self.http.close()
            self.http = None
        if self.shelf is not None:
            await self.shelf.close()
        if self.bus is not None:
            await self.bus.close()
        await self.store.close()
        self.hashing.close()


class _Durability(StoreListener):
    """What the store tells, passed to the parts that act on it: the outbox
    holds frames until their changes are written; after a failed write it
    refuses the replies of the changes lost, and the core ends the guests a
    reload took away (guests are never on disk)."""

    def __init__(self, server: NexusServer) -> None:
        self.outbox = server.outbox
        self.core = server.core

    def hold(self) -> None:
        self.outbox.hold()

    def cut(self) -> None:
        self.outbox.cut()

    def written(self) -> None:
        self.outbox.written()

    def refused(self, error: StoreError) -> None:
        self.outbox.refuse(lambda rid: Frame(not_saved(rid, error)))

    def reloaded(self, before: Model) -> None:
        sessions = [connection.session for connection in self.core.connections]
        guests_lost(sessions, self.outbox, self.core.hub, before)
