"""Client test helpers: polling, logged-in connections, a proxy that can cut the link,
and a scripted stand-in server for frames a real one never sends.

Every client test gets its own known_hosts file, so none reads or writes the
real one in the home directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prompt_toolkit.application import create_app_session
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from nexus.client.app import ChatApp
from nexus.client.config import Notifications
from nexus.client.connection import ChatConnection
from nexus.client.history import STATE_ENV
from nexus.client.servers import Server
from nexus.client.session import ChatSession, open_connection
from nexus.client.state import ChatState
from nexus.client.tls import KNOWN_HOSTS_ENV
from nexus.protocol import Hello, Member, MemberRole, Profile, RoomInfo
from tests.client import tmux as terminal
from tests.conftest import PASSWORD

_names = itertools.count(1)

HELLO: Hello = {"event": "hello", "server": "scripted", "version": "0", "protocol": 1, "motd": ""}


async def until(predicate: Callable[[], Any], timeout: float = 5.0, what: str = "") -> Any:
    """Polls `predicate` until it is truthy (and returns it); fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not (result := predicate()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what or predicate}")
        await asyncio.sleep(0.01)
    return result


@pytest.fixture(autouse=True)
def known_hosts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The known_hosts file the client uses in this test (not yet created); the
    config directory (client.toml, saved tokens) is the test's own too."""
    path = tmp_path / "client" / "known_hosts"
    monkeypatch.setenv(KNOWN_HOSTS_ENV, str(path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    yield path


@pytest.fixture(autouse=True)
def state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The XDG state directory the client keeps input history under in this test."""
    path = tmp_path / "state"
    monkeypatch.setenv(STATE_ENV, str(path))
    return path


@pytest.fixture
def server_port(tmp_path: Path) -> Iterator[int]:
    """A nexus-server process (the installed binary) on a free port."""
    yield from terminal.start_server(tmp_path)


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[terminal.Tmux]:
    """A private tmux server for nexus-chat panes; killed after the test."""
    yield from terminal.tmux_for(tmp_path)


PAGE_UP, PAGE_DOWN, UP, DOWN = "\x1b[5~", "\x1b[6~", "\x1b[A", "\x1b[B"
HOME, END = "\x1b[H", "\x1b[F"
CTRL_C, CTRL_N, CTRL_P, ALT_LEFT = "\x03", "\x0e", "\x10", "\x1b\x1b[D"


class TerminalOutput(DummyOutput):
    """Keeps what is written for the terminal itself (bells, notification escapes);
    discards the screen."""

    def __init__(self) -> None:
        self.raw: list[str] = []

    def write_raw(self, data: str) -> None:
        self.raw.append(data)

    @property
    def bells(self) -> int:
        return self.raw.count("\a")

    def notifications(self) -> list[str]:
        return [data for data in self.raw if data.startswith("\x1b]")]


@dataclass
class Driver:
    app: ChatApp
    output: TerminalOutput
    pipe: Any
    task: asyncio.Task[None]

    @property
    def state(self) -> ChatState:
        return self.app.state

    def type(self, keys: str) -> None:
        self.pipe.send_text(keys)

    def lines(self) -> list[str]:
        return [entry.plain for entry in self.state.pane.entries]

    def screen(self) -> str:
        """Every loaded row of the current pane as text, tables and panels included."""
        rows = (row for entry in self.state.pane.entries for row in entry.rows(80))
        return "\n".join("".join(text for _, text in row) for row in rows)

    async def shows(self, text: str) -> str:
        """Waits until a line containing `text` is in the current pane; returns the line."""
        return await until(
            lambda: next((line for line in self.lines() if text in line), None), what=repr(text)
        )


@pytest.fixture
async def chat(server, connect) -> AsyncIterator[Any]:
    """Starts ChatApps logged in as fresh users; each is stopped after the test."""
    drivers: list[Driver] = []
    with contextlib.ExitStack() as stack:

        async def start(
            name: str | None = None,
            *,
            port: int | None = None,
            backoff=(1.0, 30.0),
            register: bool = True,
            history: Path | None = None,
            notifications: Notifications | None = None,
        ) -> Driver:
            port = port or server.port
            conn, login = await connect(name, port=port, register=register)
            state = ChatState(login["user"]["username"], f"{server.host}:{port}")
            session = ChatSession(state, [Server(server.host, port)], PASSWORD, backoff=backoff)
            pipe = stack.enter_context(create_pipe_input())
            output = TerminalOutput()
            with create_app_session(input=pipe, output=output):
                app = ChatApp(
                    session, input=pipe, output=output, history=history, notifications=notifications
                )
                task = asyncio.create_task(app.run(conn, login))
            driver = Driver(app, output, pipe, task)
            drivers.append(driver)
            await until(lambda: state.connected, what="connected")
            return driver

        yield start
        for driver in drivers:
            driver.app.exit()
            await asyncio.wait_for(driver.task, 5)


def fresh_name(prefix: str = "user") -> str:
    return f"{prefix}{next(_names)}"


def room_info(name: str, topic: str = "", owner: str | None = None) -> RoomInfo:
    """A room as join and create replies describe it, for state tests without a server."""
    return {
        "name": name,
        "topic": topic,
        "owner": owner,
        "default": owner is None,
        "members": 1,
        "online": 1,
    }


def profile(name: str, rooms: list[str], away: str | None = None) -> Profile:
    """An online user as the `online` reply describes them, for state tests."""
    return {
        "username": name,
        "bio": "",
        "online": True,
        "rooms": rooms,
        "created": 0.0,
        "last_seen": None,
        "away": away,
    }


def member(
    name: str,
    online: bool = True,
    *,
    away: str | None = None,
    role: MemberRole = "member",
    admin: bool = False,
    muted: bool = False,
) -> Member:
    """A room member as the `members` reply describes them, for state tests."""
    return {
        "username": name,
        "online": online,
        "away": away,
        "role": role,
        "admin": admin,
        "muted": muted,
        "bio": "",
    }


@contextlib.asynccontextmanager
async def scripted_server(
    *frames: dict[str, Any], answer: Callable[[dict[str, Any]], dict[str, Any]] | None = None
) -> AsyncIterator[int]:
    """A stand-in server on 127.0.0.1 port 0 (yielded), to send what a real one never would.

    Each client gets `frames` on connecting, then `answer(request)` (with the
    request's id added) for each request it sends, if `answer` is given.
    """

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for frame in frames:
            writer.write(json.dumps(frame).encode() + b"\n")
        with contextlib.suppress(ConnectionError):
            while line := await reader.readline():
                if answer is not None:
                    request = json.loads(line)
                    reply = {"id": request["id"], **answer(request)}
                    writer.write(json.dumps(reply).encode() + b"\n")
        writer.close()

    listener = await asyncio.start_server(serve, "127.0.0.1", 0)
    async with listener:
        yield listener.sockets[0].getsockname()[1]


@pytest.fixture
async def connect(server) -> AsyncIterator[Callable[..., Any]]:
    """Opens logged-in ChatConnections (registering the name first); closes them after."""
    opened: list[ChatConnection] = []

    async def open_as(
        name: str | None = None, *, register: bool = True, port: int | None = None
    ) -> tuple[ChatConnection, dict[str, Any]]:
        conn, reply = await open_connection(
            server.host, port or server.port, name or fresh_name(), PASSWORD, register=register
        )
        opened.append(conn)
        return conn, reply

    yield open_as
    for conn in opened:
        await conn.close()


class Proxy:
    """Forwards TCP to the server; `cut()` drops every link and refuses new ones until `mend()`.

    `sent` keeps every byte the clients sent upstream, for tests that check
    what went over the wire; `inject()` sends clients bytes the server never
    would; `target` may be changed between links.
    """

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener: asyncio.Server | None = None
        self.port = 0
        self.sent = bytearray()
        self._links: set[asyncio.StreamWriter] = set()
        self._clients: set[asyncio.StreamWriter] = set()  # the client side of each link
        self._tasks: set[asyncio.Task[None]] = set()

    async def mend(self) -> None:
        self.listener = await asyncio.start_server(self._link, "127.0.0.1", self.port)
        self.port = self.listener.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        if self.listener is not None:
            self.listener.close()
            await self.listener.wait_closed()
            self.listener = None
        for writer in self._links:
            writer.transport.abort()
        self._links.clear()
        self._clients.clear()

    def inject(self, data: bytes) -> None:
        """Sends `data` to every client as if the server had (between two of its writes)."""
        for writer in self._clients:
            writer.write(data)

    async def close(self) -> None:
        await self.cut()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _link(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self._links.update((writer, up_writer))
        self._clients.add(writer)
        pumps = [
            asyncio.create_task(self._pump(reader, up_writer, self.sent)),
            asyncio.create_task(self._pump(up_reader, writer)),
        ]
        self._tasks.update(pumps)
        for pump in pumps:
            pump.add_done_callback(self._tasks.discard)

    def frames(self, cmd: str) -> list[dict[str, Any]]:
        """The `cmd` requests the clients sent so far (plain TCP links only)."""
        lines = bytes(self.sent).split(b"\n")[:-1]  # the last piece may be half a frame
        frames = (json.loads(line) for line in lines if line.strip())
        return [frame for frame in frames if frame.get("cmd") == cmd]

    @staticmethod
    async def _pump(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, log: bytearray | None = None
    ) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                if log is not None:
                    log.extend(data)
                writer.write(data)
                await writer.drain()
        writer.transport.abort()


@pytest.fixture
async def proxy(server) -> AsyncIterator[Proxy]:
    link = Proxy((server.host, server.port))
    await link.mend()
    yield link
    await link.close()
