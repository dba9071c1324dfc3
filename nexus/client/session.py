"""Staying connected: log in, rejoin, fill gaps from history, reconnect with backoff.

`ChatSession` owns the credentials and the current ChatConnection, feeds
events into the ChatState and runs typed lines through the command table.
It knows nothing of the screen: the UI passes callbacks for redraws, the
bell and quitting.

Reconnects log in with the login token from the last password login (a
dictionary look-up on the server instead of a password hash), falling back
to the password if the token is refused. The token lives in memory only.
Reconnects over TLS make the same certificate check as the first connect.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from typing import Any

from nexus.client import commands
from nexus.client.connection import ChatConnection, ConnectionClosed
from nexus.client.state import ChatState, Room
from nexus.client.tls import CertificateChanged, ClientTLS, describe
from nexus.errors import NexusError
from nexus.protocol import (
    PAGE_MAX,
    ROOM_HISTORY_CAP,
    Event,
    HistoryReply,
    JoinReply,
    LoginReply,
    RoomMessage,
    UsersReply,
)

BACKOFF = (1.0, 30.0)  # first retry delay, doubling up to the last
FATAL = frozenset({"auth_failed", "no_such_user", "invalid_username"})  # retrying cannot help


def _nothing() -> None:
    pass


async def log_in(
    conn: ChatConnection,
    username: str,
    password: str,
    *,
    register: bool = False,
    token: str | None = None,
) -> LoginReply:
    """Logs in, or registers (which also logs in), on an open connection.

    With a `token` the login tries it first and uses the password only if
    the server refuses the token (`auth_failed`: expired, or forgotten).
    """
    if token is not None and not register:
        try:
            return await conn.request("login", username=username, token=token)
        except NexusError as exc:
            if exc.code != "auth_failed":
                raise
    cmd = "register" if register else "login"
    return await conn.request(cmd, username=username, password=password)


async def open_connection(
    host: str,
    port: int,
    username: str,
    password: str,
    *,
    register: bool = False,
    token: str | None = None,
    tls: ClientTLS | None = None,
) -> tuple[ChatConnection, LoginReply]:
    """Connects and logs in (or registers); returns the connection and the reply."""
    conn = ChatConnection()
    await conn.connect(host, port, tls=tls)
    try:
        reply = await log_in(conn, username, password, register=register, token=token)
    except BaseException:
        await conn.close()
        raise
    return conn, reply


class ChatSession:
    """One user's live session; implements the command Context."""

    def __init__(
        self,
        state: ChatState,
        host: str,
        port: int,
        password: str,
        *,
        backoff: tuple[float, float] = BACKOFF,
        tls: ClientTLS | None = None,
        on_change: Callable[[], None] = _nothing,
        on_bell: Callable[[], None] = _nothing,
        on_quit: Callable[[], None] = _nothing,
    ) -> None:
        self.state = state
        self.host, self.port = host, port
        self._password = password
        self._token: str | None = None  # from the last password login; never shown or saved
        self.tls = tls
        self.backoff = backoff
        self.on_change, self.on_bell, self.on_quit = on_change, on_bell, on_quit
        self.conn: ChatConnection | None = None  # set only while logged in and settled
        self.outbox: list[tuple[str, str]] = []  # (room, text) typed while offline
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False

    def __repr__(self) -> str:
        return f"ChatSession({self.state.me!r}@{self.host}:{self.port})"

    # -- the Context commands use -------------------------------------

    async def request(self, cmd: str, **args: Any) -> Any:
        if self.conn is None:
            raise ConnectionClosed("offline")
        return await self.conn.request(cmd, **args)

    async def say(self, text: str) -> None:
        room = self.state.current
        if room is None:
            raise commands.UsageError("you are in no room: /join one first")
        if self.conn is None:
            self.outbox.append((room, text))
            self.state.note(f"offline: queued for #{room}, sent once reconnected")
            return
        await self.request("say", room=room, text=text)

    def quit(self) -> None:
        self.on_quit()

    # -- typed lines ------------------------------------------------------

    async def execute(self, line: str) -> None:
        await commands.execute(self, line)
        self.on_change()

    def submit(self, line: str) -> None:
        """Runs a typed line in the background, so the screen never waits on the network."""
        task = asyncio.get_running_loop().create_task(self.execute(line))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- the network loop ---------------------------------------------------

    def _status(self, text: str, connected: bool = False) -> None:
        self.state.connection = text
        self.state.connected = connected
        self.on_change()

    async def run(
        self, conn: ChatConnection | None = None, login: LoginReply | None = None
    ) -> None:
        """Runs until cancelled or the server refuses the credentials.

        `conn` and `login` are an already logged-in connection and its reply
        (the CLI logs in before the screen opens, to report errors plainly).
        """
        delay = self.backoff[0]
        while not self._stopping:
            try:
                if conn is None or login is None:
                    self._status("connecting")
                    conn, login = await open_connection(
                        self.host,
                        self.port,
                        self.state.me,
                        self._password,
                        token=self._token,
                        tls=self.tls,
                    )
                    if conn.tls_notice:
                        self.state.note(conn.tls_notice)
                self._token = login.pop("token", None) or self._token
                await self._settle(conn, login)
                self.conn = conn
                self._status("online", connected=True)
                delay = self.backoff[0]
                await self._flush_outbox()
                async for event in conn:
                    self._apply(event)
                if not self._stopping:
                    self.state.error("connection lost: reconnecting")
            except NexusError as exc:
                if exc.code in FATAL:
                    self._status(f"logged out: {exc.message}")
                    self.state.error(f"the server refused the login: {exc.message}")
                    return
                self.state.error(commands.describe(exc))
            except (CertificateChanged, ssl.SSLCertVerificationError) as exc:
                self._status("refused: the server's certificate")
                text = str(exc) if isinstance(exc, CertificateChanged) else describe(exc)
                for line in text.splitlines():
                    self.state.error(line)
                return
            except (OSError, TimeoutError):
                pass  # refused, unreachable or dropped (ConnectionClosed is an OSError): retry
            finally:
                self.conn = None
                if conn is not None:
                    conn.abort()
                conn = login = None
            if self._stopping:
                return
            self._status(f"offline, retrying in {delay:.0f} s")
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.backoff[1])

    def _apply(self, event: Event) -> None:
        if self.state.apply(event):
            self.on_bell()
        self.on_change()

    async def _settle(self, conn: ChatConnection, login: LoginReply) -> None:
        """After a login: rejoin the rooms, fill what was missed, learn who is online."""
        state = self.state
        state.me = login["user"]["username"]
        names = list(dict.fromkeys([*state.rooms, *login["rooms"]]))
        missed = 0
        for name in names:
            try:
                reply: JoinReply = await conn.request("join", room=name)
            except NexusError as exc:
                state.remove_room(name)
                state.error(f"#{name}: {exc.message}")
                continue
            room = state.rooms.get(name)
            history = reply["history"]
            if room is not None:  # known before the drop: fetch all it missed
                history = await self._gap(conn, room, history)
                missed += len(history)
            state.add_room(reply["room"], history)
        online: UsersReply = await conn.request("online")
        state.online = {u["username"] for u in online["users"]}
        state.known_users.update(state.online)
        if state.current is None:
            state.switch("general" if "general" in state.rooms else min(state.rooms, default=""))
            state.note(f"welcome, {state.me}: /help lists the commands, Ctrl-C leaves")
        if missed:
            state.note(f"reconnected: {missed} missed messages filled in")
        for user, count in login["unread"]["dms"].items():
            state.note(f"{count} unread direct messages from ", (user, ""), f": /dms {user}")

    @staticmethod
    async def _gap(
        conn: ChatConnection, room: Room, history: list[RoomMessage]
    ) -> list[RoomMessage]:
        """The messages newer than `room.last_seq`, paging back from the join history."""
        messages = history
        while messages and messages[0]["seq"] > room.last_seq + 1:
            if len(messages) >= ROOM_HISTORY_CAP:
                break
            page: HistoryReply = await conn.request(
                "history", room=room.name, before=messages[0]["seq"], limit=PAGE_MAX
            )
            older = [m for m in page["messages"] if m["seq"] < messages[0]["seq"]]
            messages = older + messages
            if not older or not page["more"]:
                break
        return [m for m in messages if m["seq"] > room.last_seq]

    async def _flush_outbox(self) -> None:
        while self.outbox:
            room, text = self.outbox[0]
            try:
                await self.request("say", room=room, text=text)
            except NexusError as exc:
                self.state.error(f"queued message to #{room} refused: {commands.describe(exc)}")
            self.outbox.pop(0)

    async def close(self) -> None:
        """Says goodbye to the server and stops the line tasks still running."""
        self._stopping = True
        for task in list(self._tasks):
            task.cancel()
        if self.conn is not None:
            await self.conn.quit()
            self.conn = None
