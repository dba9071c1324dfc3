"""Shared fixtures: a real server on 127.0.0.1 port 0, and peers connected to it."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import itertools
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from nexus.server.auth import FAST
from nexus.server.clock import Clock
from nexus.server.config import ServerConfig
from nexus.server.core import Connection
from nexus.server.server import NexusServer
from nexus.server.store import Store
from nexus.server.store.engines import open_store
from nexus.server.store.journal import JournalStore
from tests.postgres import binaries, cluster
from tests.procs import data_file
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
    if settings.get("store") == "cluster":  # one node of a cluster (NEXUS_TEST_ENGINES=cluster)
        from tests.redis_server import redis_server

        settings.update(store="postgresql", bus=redis_server().url)
        settings.setdefault("node", "one")
    if settings.get("store") == "postgresql":
        settings.setdefault("database", cluster().database_for(data))
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


# Every store engine passes the same tests: each test that starts a server runs
# once per engine (NEXUS_TEST_ENGINES=sqlite for one), but for the clients'
# and the page's (what they show does not depend on the engine, and a browser
# or a terminal is slow to drive) and those of one engine's files
# (@pytest.mark.engines("json")).
# PostgreSQL when its server is installed (.ci/run installs it): a throwaway
# cluster, tests/postgres.py.
_DEFAULT_ENGINES = "json,sqlite,postgresql" if binaries() else "json,sqlite"
ENGINES = tuple(os.environ.get("NEXUS_TEST_ENGINES", _DEFAULT_ENGINES).split(","))
ONE_ENGINE = ("tests/client/", "tests/web/test_page")
needs_postgresql = pytest.mark.skipif(
    "postgresql" not in ENGINES, reason="PostgreSQL is not installed or not in NEXUS_TEST_ENGINES"
)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "engine" in metafunc.fixturenames:
        marker = metafunc.definition.get_closest_marker("engines")
        path = str(metafunc.definition.path.relative_to(Path(__file__).parent.parent))
        if marker is not None:
            engines = marker.args
        elif path.startswith(ONE_ENGINE):
            engines = ENGINES[:1]
        else:
            engines = ENGINES
        metafunc.parametrize("engine", engines)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest tests first (`slow`, then `long`): with several workers the
    short ones then fill in around them, instead of one worker ending the run
    alone on a long one while the others wait."""

    def rank(item: pytest.Item) -> int:
        return 0 if item.get_closest_marker("slow") else 1 if item.get_closest_marker("long") else 2

    items.sort(key=rank)


async def open_engine(engine: str, path: Path) -> Store:
    """A store of `engine` on `path`, opened as the server opens it."""
    return await open_store(test_config(path, store=engine))


@contextlib.contextmanager
def writes_failing(store: Store, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every write of `store` fails as on a full disk (ENOSPC) until the block ends."""

    def no_space(*args: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patch:
        if isinstance(store, JournalStore):
            patch.setattr(store._journal, "write", no_space)
        else:
            patch.setattr(store, "_write", no_space)
        yield


@pytest.fixture
async def start_server(tmp_path: Path, engine: str) -> AsyncIterator[StartServer]:
    """Starts servers (optionally with settings) and stops them after the test."""
    running: list[Running] = []

    async def start(
        data: Path | None = None, clock: Clock | None = None, **overrides: Any
    ) -> Running:
        overrides.setdefault("store", engine)
        config = test_config(data or data_file(tmp_path, engine), **overrides)
        server = Running(await NexusServer.start(config, clock))
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
