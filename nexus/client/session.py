"""Staying connected: log in, rejoin, fill gaps from history, reconnect with backoff.

`ChatSession` owns the credentials and the current ChatConnection, feeds
events into the ChatState and runs typed lines through the command table.
It knows nothing of the screen: the UI passes callbacks for redraws,
alerts (a mention or a DM) and quitting.

Reconnects log in with the login token from the last password login, or
the one saved by `nexus-chat login` that started the session (a dictionary
look-up on the server instead of a password hash), falling back to the
password, where there is one, if the token is refused.
Reconnects over TLS make the same certificate check as the first connect.
Given several servers (a cluster's nodes), a failed or lost connection moves
on to the next at once, and waits only once each has failed in turn; the
buffer says which server it moved to, and, once an outage, that none answers.
A server that ends the session itself (`auth_required` after the password
was changed elsewhere) is not retried: the token it revoked cannot help.

Read positions go to the server (`read`, protocol 2) a moment after the
current buffer shows its newest message at the bottom, so every terminal of
the account agrees on what is unread.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

from nexus.client import commands, render
from nexus.client.connection import ChatConnection, ConnectionClosed
from nexus.client.servers import Server
from nexus.client.state import Alert, Buffer, ChatState, Entry, thread_key
from nexus.client.tls import CertificateChanged, ClientTLS, describe
from nexus.client.transfer import Files, TransferError
from nexus.client.typists import TYPING_SHOWN, Composer, Target, composes
from nexus.errors import NexusError
from nexus.protocol import (
    MESSAGE_MAX,
    PAGE_DEFAULT,
    PAGE_MAX,
    ROOM_HISTORY_CAP,
    THREADS_MAX,
    ConversationsReply,
    DirectMessage,
    DmsReply,
    Event,
    Hello,
    HistoryReply,
    JoinReply,
    LoginReply,
    MembersReply,
    RoomMessage,
    SentReply,
    ThreadReply,
    ThreadsReply,
    UsersReply,
)

# First retry delay and the longest: short, since a person waits on it, and
# growing by half each time, so a server back after a 12 s outage is retried
# within ~5 s. /reconnect retries at once.
BACKOFF = (1.0, 10.0)
GROWTH = 1.5
QUIT_GRACE = 2.0  # seconds /quit waits for messages still being sent
FATAL = frozenset({"auth_failed", "no_such_user", "invalid_username", "suspended"})  # no retry
ENDED = frozenset({"auth_required", "suspended"})  # the server ended the session: do not retry
READ_DELAY = 0.5  # seconds between showing new messages and telling the server they were read


def _ignore(alert: Alert) -> None:
    pass


def _nothing() -> None:
    pass


def _keep(text: str) -> None:
    pass


async def _no_terminal(prompt: str) -> str:
    raise commands.UsageError("no terminal to type a password in")


def next_delay(delay: float, backoff: tuple[float, float] = BACKOFF) -> float:
    """The wait after one that lasted `delay`: half as long again, up to the cap."""
    return min(delay * GROWTH, backoff[1])


@dataclass(slots=True)
class Outgoing:
    """Text waiting to be sent: to a room (`say`) or a person (`dm`), in the order typed."""

    kind: Literal["room", "dm"]
    target: str
    text: str
    after: int | None = None  # cut off mid-send: the room's newest seq then, to spot it landed
    action: bool = False  # /me
    reply_to: int | None = None  # /reply: the seq answered
    typed: str | None = None  # the line to give back if refused, when not just `text`
    files: tuple[str, ...] = ()  # ids of my uploads it carries
    plain: bool = False  # /plain: shown as typed, never formatted
    thread: int | None = None  # a reply in the thread of this root seq
    broadcast: bool = False  # a thread reply shown in the room's timeline too

    @property
    def label(self) -> str:
        where = f"#{self.target}" if self.kind == "room" else self.target
        return where if self.thread is None else f"{where}/{self.thread}"


def _landed(room: Buffer, item: Outgoing) -> bool:
    """Whether `item`, cut off mid-send, is among my messages that arrived since."""
    return any(
        e.mine and e.seq > (item.after or 0) and e.text == item.text and _ids(e) == item.files
        for e in room.lines.entries
    )


def _ids(entry: Entry) -> tuple[str, ...]:
    files = entry.message.get("files", ()) if entry.message is not None else ()
    return tuple(file["id"] for file in files)


# Refusals that waiting cannot fix: the text goes back to the input line to be edited.
KEPT_BACK = "the text is back in the input line"


async def log_in(
    conn: ChatConnection,
    username: str,
    password: str | None,
    *,
    register: bool = False,
    token: str | None = None,
) -> LoginReply:
    """Logs in, or registers (which also logs in), on an open connection.

    With a `token` the login tries it first and uses the password only if
    the server refuses the token (`auth_failed`: expired, or forgotten) and
    there is a password.
    """
    if token is not None and not register:
        try:
            return await conn.request("login", username=username, token=token)
        except NexusError as exc:
            if exc.code != "auth_failed" or password is None:
                raise
    cmd = "register" if register else "login"
    return await conn.request(cmd, username=username, password=password)


async def open_connection(
    host: str,
    port: int,
    username: str,
    password: str | None,
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
        servers: Sequence[Server],
        password: str | None,
        *,
        first: int = 0,
        token: str | None = None,
        backoff: tuple[float, float] = BACKOFF,
        tls: ClientTLS | None = None,
        on_change: Callable[[], None] = _nothing,
        on_alert: Callable[[Alert], None] = _ignore,
        on_quit: Callable[[], None] = _nothing,
        on_refused: Callable[[str], None] = _keep,
        ask_secret: Callable[[str], Awaitable[str]] = _no_terminal,
        typing: bool = True,
    ) -> None:
        self.state = state
        self.servers = list(servers)  # a cluster's nodes, tried in turn (servers.py)
        self._next = first  # the index of the server to connect to next
        self.server = self.servers[first]  # the one connected to, or last tried
        self._password = password  # None: in with a saved token, which must then do
        self._token = token  # from the last password login, or saved; never shown
        self.tls = tls
        self.backoff = backoff
        self.on_change, self.on_alert, self.on_quit = on_change, on_alert, on_quit
        self.on_refused = on_refused  # gets back text the server refused, to edit and resend
        self.ask_secret = ask_secret  # reads a line without showing or keeping it (/password)
        self.conn: ChatConnection | None = None  # set only while logged in and settled
        self.outbox: list[Outgoing] = []  # text to send, oldest first; kept while offline
        self.oversized: Outgoing | None = None  # the last text refused as too long (Ctrl-Y)
        self._sender: asyncio.Task[None] | None = None
        self._typed: list[str] = []  # lines typed, waiting for the ones before them
        self._typist: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()  # /reconnect: stop waiting for the next attempt
        self._reads: asyncio.Task[None] | None = None  # read positions on their way
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._applied = 0  # events of the current connection folded into the state
        self._catching_up: list[tuple[int, asyncio.Future[None]]] = []  # (events, waiter)
        self._files: Files | None = None  # HTTP to the files, as `_files_for` says them
        self._files_for: tuple[Hello | None, str | None] = (None, None)  # (hello, secret)
        self._thumbnails: asyncio.Task[None] | None = None
        self.composer = Composer(self._say_typing, enabled=typing)  # my `typing`
        self._inbox: asyncio.Task[None] | None = None  # the `threads` count on its way

    def __repr__(self) -> str:
        return f"ChatSession({self.state.me!r}@{self.server})"

    # -- the Context commands use -------------------------------------

    async def request(self, cmd: str, **args: Any) -> Any:
        """The reply to `cmd`, once the events the server sent before it are applied: a
        command then knows what its own event lines said (a room's `room_deleted`)."""
        conn = self.conn
        if conn is None:
            raise ConnectionClosed("offline")
        reply, events = await conn.request_counted(cmd, **args)
        if self.conn is conn and self._applied < events:
            waiter = asyncio.get_running_loop().create_future()
            self._catching_up.append((events, waiter))
            await waiter
        return reply

    async def say(
        self,
        text: str,
        *,
        action: bool = False,
        reply_to: int | None = None,
        typed: str = "",
        plain: bool = False,
        broadcast: bool = False,
    ) -> None:
        """Sends text to the current buffer: the room, the person of a conversation, or
        the thread (`action`: as /me; `reply_to`: answering that seq; `typed`: the line
        to give back if the server refuses it; `plain`: not to be formatted;
        `broadcast`: a thread reply shown in the room's timeline too)."""
        buffer = self.state.current
        if buffer is None:
            raise commands.UsageError("you are in no room: /join one first")
        thread = buffer.root if buffer.kind == "thread" else None
        if broadcast and thread is None:
            raise commands.UsageError("/broadcast is for a thread's buffer: /thread n opens one")
        self.queue(
            Outgoing(
                buffer.where,
                buffer.name,
                text,
                None,
                action,
                reply_to,
                typed or None,
                plain=plain,
                thread=thread,
                broadcast=broadcast,
            )
        )

    async def secret(self, prompt: str) -> str:
        return await self.ask_secret(prompt)

    async def flush(self) -> None:
        """Waits until the text typed before is sent (or the link drops), so `/edit`
        right after a message finds it."""
        sender = self._sender
        if sender is not None and not sender.done() and self.conn is not None:
            await asyncio.shield(sender)

    def new_credentials(self, password: str, token: str) -> None:
        """After /password: reconnects use the new token (kept in memory only)."""
        if self._password is not None:
            self._password = password
        self._token = token

    async def send_dm(self, user: str, text: str, *, typed: str = "") -> None:
        self.queue(Outgoing("dm", user, text, typed=typed or None))

    async def share(self, buffer: Buffer, text: str, files: Sequence[str]) -> None:
        """Sends my uploads `files` to `buffer`'s room or person, with `text` (may be "")."""
        thread = buffer.root if buffer.kind == "thread" else None
        self.queue(Outgoing(buffer.where, buffer.name, text, files=tuple(files), thread=thread))

    def files(self) -> Files:
        """HTTP to the connected server's files, logged in with the session's token (or
        its password); TransferError offline or when the server has none."""
        if self.conn is None:
            raise TransferError("offline", "not connected: files wait for the connection")
        wanted = (self.conn.hello, self._token or self._password)
        if self._files is None or self._files_for != wanted:  # another server, or a new token
            if self._files is not None:
                self.background(self._files.close())
            self._files = Files.offered(wanted[0], self.state.me, wanted[1])
            self._files_for = wanted
        return self._files

    def queue(self, item: Outgoing) -> None:
        """Sends in the order typed, one after the other; offline, the text waits.

        Text longer than a message may be is not sent (a paste over 64 KiB would even
        end the connection): it goes back to the input line, and `send_split` (Ctrl-Y)
        sends it as several messages.
        """
        if len(item.text) > MESSAGE_MAX:
            self.oversized = item
            parts = len(commands.split_text(item.text))
            self.state.error(
                f"not sent to {item.label}: {len(item.text):,} characters, and a message "
                f"holds {MESSAGE_MAX:,} at most (too_long); {KEPT_BACK}: Ctrl-Y sends it "
                f"as {parts} messages cut at line ends, or shorten it"
            )
            self.on_refused(item.typed or item.text)
            return
        self.outbox.append(item)
        if self.conn is None:
            self.state.note(f"offline: queued for {item.label}, sent once reconnected")
        self._start_sending()

    def send_split(self) -> None:
        """Ctrl-Y after text was refused as too long: sends it as several messages, in
        order, to where it was meant for (a reply answers with its first part)."""
        item, self.oversized = self.oversized, None
        if item is None:
            return
        parts = commands.split_text(item.text)
        for index, part in enumerate(parts):
            answer = item.reply_to if index == 0 else None
            self.outbox.append(
                Outgoing(
                    item.kind,
                    item.target,
                    part,
                    None,
                    item.action,
                    answer,
                    plain=item.plain,
                    thread=item.thread,
                    broadcast=item.broadcast,
                )
            )
        when = "" if self.conn is not None else " once reconnected"
        self.state.note(f"sending it to {item.label} as {len(parts)} messages{when}")
        self._start_sending()
        self.changed()

    def reconnect(self) -> None:
        """Retries now: ends the wait before the next attempt, or drops a live connection."""
        self._wake.set()
        if self.conn is not None:
            self.state.note("reconnecting")
            self.conn.abort()

    def fetch_older(self, buffer: Buffer, limit: int = PAGE_DEFAULT) -> None:
        """Loads a page of older messages above the oldest shown, in the background (in
        a thread's buffer, older replies under its root, which stays on top)."""
        if buffer.fetching or not buffer.more or self.conn is None:
            return
        buffer.fetching = True
        self.background(self._fetch_older(buffer, limit))

    def fetch_newer(self, buffer: Buffer) -> None:
        """Loads the page after the newest message shown (`more_after`), in the background."""
        if buffer.fetching or not buffer.more_after or self.conn is None:
            return
        buffer.fetching = True
        self.background(self._fetch_newer(buffer))

    def quit(self) -> None:
        self.on_quit()

    # -- threads ------------------------------------------------------------

    def refresh_threads(self) -> None:
        """Asks the server (a moment later, once for a burst) how many followed threads
        have unread replies: it alone knows which threads I follow."""
        if self.conn is not None and (self._inbox is None or self._inbox.done()):
            self._inbox = asyncio.get_running_loop().create_task(self._count_threads())

    async def _count_threads(self) -> None:
        await asyncio.sleep(READ_DELAY)
        with contextlib.suppress(NexusError, ConnectionClosed):
            reply: ThreadsReply = await self.request("threads", limit=THREADS_MAX)
            self.state.threads_unread = sum(1 for t in reply["threads"] if t["unread"])
            self.on_change()

    async def _refill_threads(self, conn: ChatConnection) -> None:
        """After a reconnect: the replies the open thread buffers missed."""
        for buffer in list(self.state.threads.values()):
            try:
                page: ThreadReply = await conn.request(
                    "thread", seq=buffer.root, limit=PAGE_MAX, **buffer.place
                )
            except NexusError:
                continue  # gone meanwhile (erased, left): what it showed stays
            self.state.add_thread(buffer, page["root"], page["messages"], page["more"])

    # -- typing -------------------------------------------------------------

    def composing(self, text: str) -> None:
        """The input line changed to `text`: `typing` to the current room or person."""
        buffer = self.state.current
        target: Target | None = None
        if buffer is not None and buffer.kind != "thread":  # typing has no thread
            target = ("room", buffer.name) if buffer.kind == "room" else ("with", buffer.name)
        self.composer.changed(target, text, asyncio.get_running_loop().time())

    def sending(self, text: str) -> None:
        """The line `text` was entered: a message ends my typing at the server by itself."""
        if composes(text):
            self.composer.sent()

    def _say_typing(self, target: Target, on: bool) -> None:
        if self.conn is not None:
            self.background(self._typing(target, on))

    async def _typing(self, target: Target, on: bool) -> None:
        where = {"room": target[1]} if target[0] == "room" else {"with_": target[1]}
        try:
            await self.request("typing", on=on, **where)
        except NexusError as exc:
            if exc.code == "unknown_command":  # a server before protocol 3
                self.composer.enabled = False
        except ConnectionClosed:
            pass

    # -- typed lines ------------------------------------------------------

    async def execute(self, line: str) -> None:
        await commands.execute(self, line)
        self.changed()

    def submit(self, line: str) -> None:
        """Runs a typed line in the background, so the screen never waits on the network.

        Lines run one after the other, in the order typed: text typed after
        `/query bob` goes to bob even if the server is slow to answer. Only
        /reconnect and /quit go first, as they must work on a link that hangs.
        """
        if commands.immediate(line):
            self.background(self.execute(line))
            return
        self._typed.append(line)
        if self._typist is None or self._typist.done():
            self._typist = asyncio.get_running_loop().create_task(self._run_typed())

    async def _run_typed(self) -> None:
        while self._typed:
            await self.execute(self._typed.pop(0))

    def changed(self) -> None:
        """After anything that may have shown a buffer: tell the server what was read."""
        current = self.state.current
        if current is not None and not current.lines.scroll and current.read_seq < current.last_seq:
            current.mark_read()  # on screen down to the newest message
        unsynced = any(b.read_seq > b.synced_seq for b in self.state.buffers)
        if unsynced and self.conn is not None and (self._reads is None or self._reads.done()):
            self._reads = asyncio.get_running_loop().create_task(self._sync_reads())
        if self.state.members_stale and self.conn is not None:
            stale = sorted(self.state.members_stale)
            self.state.members_stale.clear()
            self.background(self._refresh_members(stale))
        fetching = self._thumbnails is not None and not self._thumbnails.done()
        if self.state.thumbnails_wanted and self.conn is not None and not fetching:
            self._thumbnails = asyncio.get_running_loop().create_task(self._fetch_thumbnails())
        self.on_change()

    def background(self, work: Any) -> None:
        """Runs `work` beside the typed lines (a file on its way), kept until it ends."""
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def protocol(self) -> int:
        hello = self.conn.hello if self.conn is not None else None
        return hello["protocol"] if hello is not None else 1

    async def _sync_reads(self) -> None:
        """Tells the server the read positions that moved, once they have held a moment
        (scrolling through a burst sends one `read`, not one per message)."""
        while self.conn is not None and any(b.read_seq > b.synced_seq for b in self.state.buffers):
            await asyncio.sleep(READ_DELAY)
            for buffer in self.state.buffers:
                if buffer.read_seq > buffer.synced_seq and self.conn is not None:
                    buffer.synced_seq = buffer.read_seq
                    await self._mark_read(buffer)

    async def _mark_read(self, buffer: Buffer) -> None:
        with contextlib.suppress(NexusError, ConnectionClosed):
            if buffer.kind == "thread":
                await self.request("read", seq=buffer.read_seq, thread=buffer.root, **buffer.place)
                self.refresh_threads()  # the inbox's count follows
            elif self.protocol >= 2:
                await self.request("read", seq=buffer.read_seq, **buffer.place)
            elif buffer.kind == "dm":
                # Protocol 1 marks a conversation read when a page of it is fetched.
                await self.request("dms", with_=buffer.name, limit=1)

    async def _refresh_members(self, rooms: list[str]) -> None:
        """Asks the member lists of `rooms`. A server without `members` is
        asked who is online instead: its people lists show online members."""
        with contextlib.suppress(ConnectionClosed):
            for name in rooms:
                try:
                    reply: MembersReply = await self.request("members", room=name)
                except NexusError as exc:
                    if exc.code == "unknown_command":
                        with contextlib.suppress(NexusError):
                            online: UsersReply = await self.request("online")
                            self.state.set_online(online["users"])
                        break
                    continue  # the room went meanwhile
                self.state.set_members(name, reply["members"])
            self.on_change()

    async def _fetch_thumbnails(self) -> None:
        """Fetches the thumbnails the screen wants, one at a time, each once; one the
        server refuses is left out (the file's row says what it is)."""
        state = self.state
        while state.thumbnails_wanted and self.conn is not None:
            file_id, file = state.thumbnails_wanted.popitem()
            state.thumbnails_asked.add(file_id)
            try:
                data = await self.files().thumbnail(file)
            except TransferError:
                continue
            state.add_thumbnail(file_id, data)
            self.on_change()

    async def _fetch_older(self, buffer: Buffer, limit: int) -> None:
        try:
            if buffer.kind == "thread":
                replies: ThreadReply = await self.request(
                    "thread", seq=buffer.root, before=buffer.oldest_reply, limit=limit,
                    **buffer.place,
                )  # fmt: skip
                self.state.add_older_replies(buffer, replies["messages"], replies["more"])
            else:
                before = buffer.first_seq or None
                page = await commands.page_of(self.request, buffer, limit=limit, before=before)
                if buffer.kind == "room":
                    self.state.add_messages(buffer, page["messages"])
                else:
                    self.state.add_dms(buffer, cast(list[DirectMessage], page["messages"]))
                buffer.more = page["more"] and buffer.first_seq > 1
        except NexusError as exc:
            buffer.more = False
            self.state.error(commands.describe(exc))
        except ConnectionClosed:
            pass
        finally:
            buffer.fetching = False
        self.changed()

    async def _fetch_newer(self, buffer: Buffer) -> None:
        try:
            page = await commands.page_of(
                self.request, buffer, after=buffer.last_seq, limit=PAGE_DEFAULT
            )
            self.state.add_newer(buffer, page["messages"])
            buffer.more_after = page.get("more_after", False) and bool(page["messages"])
        except NexusError as exc:
            buffer.more_after = False
            self.state.error(commands.describe(exc))
        except ConnectionClosed:
            pass
        finally:
            buffer.fetching = False
        self.changed()

    # -- sending ------------------------------------------------------------

    def _start_sending(self) -> None:
        if self.conn is not None and self.outbox and (self._sender is None or self._sender.done()):
            self._sender = asyncio.get_running_loop().create_task(self._send_outbox())

    async def _send_outbox(self) -> None:
        """Sends the outbox in order; waits out rate limits; hands back refused text."""
        told = False  # of the wait for the flood limit: once per run, not per message
        while self.outbox and self.conn is not None:
            item = self.outbox[0]
            room = self.state.rooms.get(item.target) if item.kind == "room" else None
            if item.thread is not None:  # a reply lands in its thread, not the timeline
                room = self.state.threads.get(thread_key(item.kind, item.target, item.thread))
            if item.after is not None and room is not None and _landed(room, item):
                self.outbox.pop(0)  # the server had it before the link dropped
                continue
            try:
                extra = {
                    "action": item.action or None,
                    "reply_to": item.reply_to,
                    "files": list(item.files) or None,
                    "plain": item.plain or None,
                    "thread": item.thread,
                    "broadcast": item.broadcast or None,
                }
                if item.kind == "room":
                    sent_after = room.last_seq if room is not None else 0
                    try:
                        sent: SentReply = await self.request(
                            "say", room=item.target, text=item.text, **extra
                        )
                    except ConnectionClosed:
                        item.after = sent_after
                        raise
                    if room is not None:
                        room.said = max(room.said, sent["seq"])
                else:
                    sent = await self.request("dm", to=item.target, text=item.text, **extra)
                    peer = self.state.dms.get(item.target.casefold()) if room is None else room
                    if item.thread is None:
                        self._sent_note(item)
                    if peer is not None:
                        peer.said = max(peer.said, sent["seq"])
            except ConnectionClosed:
                break  # still queued: sent after the reconnect
            except NexusError as exc:
                if exc.code == "rate_limited":
                    wait = exc.extra.get("retry_after")
                    wait = float(wait) if isinstance(wait, int | float) else 1.0
                    if not told:
                        told = True
                        self.state.note("sending too fast: the rest follows as the server allows")
                        self.on_change()
                    await asyncio.sleep(wait)
                    continue
                self.outbox.pop(0)
                self.state.error(f"not sent to {item.label}: {commands.describe(exc)}; {KEPT_BACK}")
                self.on_refused(item.typed or item.text)
                self.changed()
                continue
            self.outbox.pop(0)
            self.changed()

    def _sent_note(self, item: Outgoing) -> None:
        """A DM typed elsewhere than its conversation: say where it went (not what it said)."""
        buffer = self.state.dms.get(item.target.casefold())
        if buffer is not None and buffer is self.state.current:
            return
        where = f": buffer {self.state.number(buffer)}" if buffer is not None else ""
        self.state.note(f"message to {item.target} sent{where}")

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
        failed = 0  # attempts in a row that failed (a lost connection counts as one)
        was_on: Server | None = self.server if conn is not None else None  # last online on
        unanswered = 0  # servers tried in a row that could not be logged in to
        while not self._stopping:
            self._wake.clear()
            unanswered += 1
            try:
                if conn is None or login is None:
                    self.server = self.servers[self._next]
                    self._status(f"connecting to {self.server}{self._place()}")
                    conn, login = await open_connection(
                        self.server.host,
                        self.server.port,
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
                self.state.server = f"{self.server}" + (" TLS" if self.tls else "")
                if was_on is not None and was_on != self.server:
                    self.state.note(f"moved to {self.server}: {was_on} was lost")
                was_on, unanswered = self.server, 0
                self._status("online", connected=True)
                delay, failed = self.backoff[0], 0
                self._start_sending()
                self.changed()
                async for event in conn:
                    self._apply(event)
                    self._caught_up(self._applied + 1)
                if conn.farewell is not None and conn.farewell.code in ENDED:
                    self._ended(conn.farewell)
                    return
                if not self._stopping and not self._wake.is_set():
                    self.state.error(f"connection to {self.server} lost: reconnecting")
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
                self._caught_up(0)
                if conn is not None:
                    conn.abort()
                conn = login = None
            if self._stopping:
                return
            # The next server at once; a wait only once every one has failed.
            failed += 1
            self._next = (self._next + 1) % len(self.servers)
            if unanswered == len(self.servers):  # said once an outage, not every round
                self.state.error(f"{self._none_answer()}: retrying until one does")
            if self._wake.is_set():
                delay = self.backoff[0]
                continue
            if failed % len(self.servers):
                continue
            self._status(f"offline, retrying in {delay:.0f} s (/reconnect: now)")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)
            delay = self.backoff[0] if self._wake.is_set() else next_delay(delay, self.backoff)

    def _place(self) -> str:
        """` (2 of 3)`: where the server tried is in the list, when there is one."""
        if len(self.servers) == 1:
            return ""
        return f" ({self.servers.index(self.server) + 1} of {len(self.servers)})"

    def _none_answer(self) -> str:
        if len(self.servers) == 1:
            return f"{self.server} does not answer"
        return f"none of {', '.join(map(str, self.servers))} answers"

    def _caught_up(self, applied: int) -> None:
        """`applied` events of this connection are in the state (0: it is gone): the
        commands waiting for fewer go on."""
        self._applied = applied
        waiting = []
        for events, waiter in self._catching_up:
            if applied and events > applied:
                waiting.append((events, waiter))
            elif not waiter.done():
                waiter.set_result(None)
        self._catching_up = waiting

    def _ended(self, exc: NexusError) -> None:
        """The server closed this session for good: say why, and stop retrying."""
        self._token = None
        self.state.error(f"the server ended this session: {exc.message} ({exc.code})")
        if exc.message == "password changed":
            self.state.error("your password was changed elsewhere: restart nexus-chat to log in")
        self._status(f"logged out: {exc.message}")

    def _apply(self, event: Event) -> None:
        if alert := self.state.apply(event):
            self.on_alert(alert)
        threaded = event["event"] in ("message", "dm") and event.get("thread") is not None
        if threaded and not self.state.is_me(event["from"]):  # type: ignore[typeddict-item]
            self.refresh_threads()  # a followed thread may have one more unread
        elif event["event"] == "read" and "thread" in event:
            self.refresh_threads()  # read in another terminal of mine
        if event["event"] == "typing" and event["on"]:  # the status bar drops it by then
            asyncio.get_running_loop().call_later(TYPING_SHOWN + 0.1, self.on_change)
        self.changed()

    async def _settle(self, conn: ChatConnection, login: LoginReply) -> None:
        """After a login: rejoin the rooms, fill what was missed, learn who is online,
        and bring the direct messages that came while away into their buffers."""
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
            if room is not None:  # shown before the drop: fetch all it missed, counted unread
                history = await self._gap(conn, room, history)
                room.more_after = False  # the gap fill reaches the newest message
                missed += len(history)
                if history and room is not state.current and not room.unread:
                    room.lines.mark_unread()
            added = state.add_room(reply["room"], history, backlog=room is None)
            if room is not None:
                added.set_read(added.last_seq if added is state.current else added.read_seq)
                if "unread" in reply["room"] and added is not state.current:
                    added.seed_unread(reply["room"]["unread"])  # others may have read it
            else:
                added.more = added.first_seq > 1
        online: UsersReply = await conn.request("online")
        state.set_online(online["users"])  # the member lists follow (`members_stale`)
        if state.current is None:
            state.switch("general" if "general" in state.rooms else min(state.rooms, default=""))
            state.note(f"welcome, {state.me}: /help lists the commands, Ctrl-C leaves")
            state.set_away(state.me, login["user"].get("away"))
            if mentions := login["unread"].get("mentions"):
                state.note(
                    f"{render.count(mentions, 'unread mention')} of you: /mentions lists them"
                )
        if missed:
            state.note(f"reconnected: {render.count(missed, 'missed message')} filled in")
        state.add_invitations(login.get("invited", []))
        state.threads_unread = login["unread"].get("threads", 0)
        await self._refill_threads(conn)
        unread = login["unread"]["dms"]
        behind = await self._conversations(conn, {name.casefold() for name in unread})
        for user, count in unread.items():
            # A shown buffer may be further behind than the count: messages read elsewhere.
            wanted = max(count, PAGE_DEFAULT, behind.get(user.casefold(), 0))
            page: DmsReply = await conn.request("dms", with_=user, limit=min(wanted, PAGE_MAX))
            buffer = state.dm_buffer(user)
            state.add_dms(buffer, page["messages"], unread=count)
            buffer.more = page["more"]
        state.settled()

    async def _conversations(self, conn: ChatConnection, unread: set[str]) -> dict[str, int]:
        """Opens a buffer for every conversation the server lists, the most recently
        active first, read ones included, and fills what a buffer already shown missed
        (the `unread` ones, case-folded names, are fetched with their counts after).
        A server without `conversations` lists only the unread ones, at login.

        Returns how many messages each `unread` one shown before is behind, by name."""
        try:
            listed: ConversationsReply = await conn.request("conversations", limit=PAGE_MAX)
        except NexusError:
            return {}
        behind = {}
        for info in listed["conversations"]:
            buffer = self.state.add_conversation(info)
            missed = info["seq"] - buffer.last_seq
            if buffer.last_seq and buffer.name.casefold() in unread:
                behind[buffer.name.casefold()] = missed
            elif buffer.last_seq and missed > 0:
                page: DmsReply = await conn.request(
                    "dms", with_=buffer.name, limit=min(missed, PAGE_MAX)
                )
                self.state.add_dms(buffer, page["messages"])
        return behind

    @staticmethod
    async def _gap(
        conn: ChatConnection, room: Buffer, history: list[RoomMessage]
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

    async def close(self) -> None:
        """Sends what is still queued (for a moment), says goodbye to the server and stops
        the line tasks still running."""
        self._stopping = True
        if self.conn is not None and self._sender is not None and not self._sender.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._sender), QUIT_GRACE)
        for task in [*self._tasks, self._sender, self._typist, self._thumbnails, self._inbox]:
            if task is not None:
                task.cancel()
        if self._files is not None:
            await self._files.close()
        if self.conn is not None:
            await self.conn.quit()
            self.conn = None
