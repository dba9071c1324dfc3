"""What the engines that keep every message in database tables share: the
model in memory, changes noted and written in groups, messages read back
past the window.

Writing: `apply()` changes the model at once and notes what the record
touched (a user, a room, a membership, a message...). At the next pass of
the loop everything noted is turned into rows, as the model now holds them,
and written in one transaction (group commit): on the loop itself by an
engine whose writes are local and short (sqlite, as the json engine writes
its journal), or on one writer thread by an engine whose every statement is
a round trip (postgresql). A reply `ok` still means on disk: the listeners
hear `written` only once the transaction is committed. While a thread
writes the loop goes on: changes applied meanwhile go with the next
transaction, and the outbox sends only the frames queued before them
(`cut`). If a write fails, every change not written is refused and the
model is read again from the database.

Reads past the window (history pages, single messages, unread counts,
search) run on reader threads, each with its own connection. A message
read from disk to be changed (an edit of an old message) is kept, one
object per message, until its change is written, so concurrent changes to
it never race.

An engine (sqlite.py, postgres.py) says how: `_open_database`, `_write`,
`_read_model`, the `_read_*` queries, search, `_index_new`, `_index_step`,
`_trim_step` and closing, each run where the engine writes or on a reader's
thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from nexus.errors import NexusError
from nexus.server import records as r
from nexus.server.model import Message, Model, pair_key
from nexus.server.store import Page, StoreError, StoreListener, tell_refused, tell_written
from nexus.server.store import words as w
from nexus.server.store.rows import (
    MESSAGE_COLUMNS,
    conversation_row,
    file_row,
    follow_row,
    message_of,
    message_row,
    room_row,
    user_row,
)
from nexus.server.store.tables import (
    change_message,
    delete_room,
    insert_messages,
    many,
    next_id,
    read_model,
    write_files,
    write_follows,
    write_rooms,
)

log = logging.getLogger("nexus.store")

T = TypeVar("T")
S = TypeVar("S", bound="TabledStore")

INDEX_EVERY = 0.5  # seconds between looks for messages to index, once all are
# While messages stored unindexed wait (an older schema's; new ones are
# indexed as they are written): seconds between steps, so that the writes go
# on while they are worked off (searches read them directly meanwhile).
INDEX_PAUSE = 0.01
LOADED_MAX = 4_096  # messages read from disk and kept for changes to them
REOPEN_FIRST = 0.25  # seconds before the model is read again after a failed write
REOPEN_MAX = 5.0  # the longest wait between tries while the database stays away
RETENTION_EVERY = 3600.0  # seconds between deletions of messages past --retention-days
# Messages looked at, and deleted if old, in one transaction: ~4 ms of work
# (sqlite, on the loop; 2,000 took 34 ms), with the loop free between steps.
RETENTION_STEP = 200


def _scope_of(record: r.Say | r.Dm) -> str:
    return record.room if isinstance(record, r.Say) else pair_key(record.user, record.to)  # type: ignore[arg-type]


def _address_scope(record: r.Read | r.FollowThread) -> str:
    return record.room if record.room is not None else pair_key(record.user, record.with_)  # type: ignore[arg-type]


def _timeline(replies: bool) -> str:
    """The condition a page adds for the timeline only, the partial index's."""
    return "" if replies else " AND timeline = 1"


@dataclass(slots=True)
class _Noted:
    """What the records applied since the last cut touched."""

    users: set[str] = field(default_factory=set)
    rooms: set[str] = field(default_factory=set)
    gone_rooms: list[str] = field(default_factory=list)  # deleted, in order
    members: set[tuple[str, str]] = field(default_factory=set)  # (room, user)
    conversations: set[str] = field(default_factory=set)
    # Messages made and changed, by (scope, seq), kept as objects: a window
    # may let one go before it is written.
    new: dict[tuple[str, int], Message] = field(default_factory=dict)
    changed: dict[tuple[str, int], Message] = field(default_factory=dict)
    files: set[str] = field(default_factory=set)  # ids
    all_files: bool = False  # an erasure or a deleted room: every file's sharing may change
    follows: set[tuple[str, str, int]] = field(default_factory=set)  # (user, scope, root)

    def __bool__(self) -> bool:
        return bool(
            self.files
            or self.follows
            or self.all_files
            or self.users
            or self.rooms
            or self.gone_rooms
            or self.members
            or self.conversations
            or self.new
            or self.changed
        )


@dataclass(slots=True)
class _Batch:
    """Rows for one transaction, made on the loop from the model as it is."""

    gone_rooms: list[str]
    users: list[tuple[Any, ...]]
    rooms: list[tuple[Any, ...]]
    members: list[tuple[Any, ...]]
    members_gone: list[tuple[str, str]]
    conversations: list[tuple[Any, ...]]
    new: list[tuple[Any, ...]]
    changed: list[tuple[Any, ...]]
    files: list[tuple[Any, ...]]
    files_gone: list[str]
    follows: list[tuple[Any, ...]]
    follows_gone: list[tuple[str, str, int]]


# -- the engine ------------------------------------------------------------------------


class TabledStore:
    """The model, kept durable in a database's tables; an engine subclasses
    it with the database's own statements."""

    errors: tuple[type[BaseException], ...] = ()  # what the database raises
    # Whether the writer's connection is used on the loop rather than a thread
    # of its own: the two hops to a thread and back cost more than a write.
    writes_on_loop = False
    folds = False  # messages keep their text casefolded too (insert_messages)

    def __init__(
        self,
        engine: str,
        window: int = 500,
        dm_window: int = 200,
        retention_days: int = 0,
        default_rooms: Sequence[str] = (),
    ) -> None:
        self.default_rooms = tuple(default_rooms)  # a new store's (a database names its own)
        self.window = window
        self.dm_window = dm_window
        self.retention_days = retention_days
        self.model = Model(self.window, self.dm_window, spills=True)
        self.listeners: list[StoreListener] = []
        self._writer = ThreadPoolExecutor(1, thread_name_prefix=f"nexus-{engine}-write")
        self._readers = ThreadPoolExecutor(2, thread_name_prefix=f"nexus-{engine}-read")
        self._connection: Any = None  # the writer's, once `_open_database` made it
        self._local = threading.local()  # each reader thread's connection
        self._reader_connections: list[Any] = []
        self._vocabulary = w.Vocabulary()  # the writer's (an engine whose search needs it)
        self._next_id: int | None = None  # the writer's: a new message's id, once read
        self._noted = _Noted()
        self._waiters: list[asyncio.Future[None]] = []  # for what is noted, not yet cut
        self._writing: asyncio.Future[None] | None = None  # a transaction under way
        self._write_handle: asyncio.Handle | None = None
        self._loaded: OrderedDict[tuple[str, int], Message] = OrderedDict()
        self._loading: dict[tuple[str, int], asyncio.Future[Message | None]] = {}
        self._writing_changed: set[tuple[str, int]] = set()  # changes of the write under way
        self._background: list[asyncio.Task[None]] = []  # what `start` started
        self._recovering = False
        self._closing = False

    async def _in_writer(self, job: Callable[..., T], *args: Any) -> T:
        """`job` with the writer's connection: on the loop, or on its thread."""
        if self.writes_on_loop:
            return job(*args)
        return await asyncio.get_running_loop().run_in_executor(self._writer, job, *args)

    async def _in_reader(self, job: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(
            self._readers, self._reading, job, *args
        )

    def _reading(self, job: Callable[..., T], *args: Any) -> T:
        """`job` on a reader's thread; if the database fails it, the thread's
        connection goes (the next read makes a new one) and the request gets
        a clear error, not a traceback."""
        try:
            return job(*args)
        except self.errors as exc:
            self._drop_reader()
            log.warning("database read failed: %s", exc)
            unreadable = "the database cannot be read just now, try again"
            raise NexusError("internal", unreadable) from None

    # -- changing ----------------------------------------------------------------

    def has_unwritten(self) -> bool:
        return bool(self._noted) or self._writing is not None or self._recovering

    def apply(self, record: r.Record) -> Any:
        if self._closing or self._recovering:
            raise StoreError("the store is not accepting changes")
        if not record.journaled(self.model):  # guests' and ephemeral rooms': memory only
            return record.apply(self.model)
        result = record.apply(self.model)
        if result is None and isinstance(record, r.MessageChange):
            # Not in the window: the message read from disk to be changed, if any.
            loaded = self._loaded.get((record.scope, record.seq))
            if loaded is not None and not loaded.erased:
                record.alter(self.model, loaded)
                result = loaded
        if not self._noted:  # the first change since the last cut
            for listener in self.listeners:
                listener.hold()
        self._note(record, result)
        if self._write_handle is None and self._writing is None:
            self._write_handle = asyncio.get_running_loop().call_soon(self._write_noted)
        return result

    def record(self, record: r.Record) -> None:
        with contextlib.suppress(StoreError):
            self.apply(record)

    async def commit(self, record: r.Record) -> Any:
        await self.turn()
        result = self.apply(record)
        await self.written()
        return result

    def has_turn(self) -> bool:
        return True

    async def turn(self) -> None:
        """Always this node's, but with several nodes (clustered.py)."""

    async def written(self) -> None:
        if self._noted or self._writing is not None:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter

    def _note(self, record: r.Record, result: Any) -> None:
        """Notes what `record` touched, to be written as it then stands."""
        noted = self._noted
        if isinstance(record, r.Say | r.Dm):  # first: nearly every record is one
            scope = _scope_of(record)
            noted.new[scope, result.seq] = result
            if isinstance(record, r.Dm):
                noted.conversations.add(scope)
            if record.files:
                noted.files.update(record.files)
            if record.thread is not None:  # who follows it may change
                keys = {record.user, record.root_author, *map(str.lower, record.mentions)}
                noted.follows.update((key, scope, record.thread) for key in keys if key)
        elif isinstance(record, r.FollowThread):
            noted.follows.add((record.user, _address_scope(record), record.seq))  # type: ignore[arg-type]
        elif isinstance(record, r.Register):
            noted.users.add(record.username.lower())
            for name in result.rooms:  # the default room it joins, if there is one
                noted.members.add((name, record.username.lower()))
        elif isinstance(record, r.Password | r.Token | r.Bio | r.Away | r.Seen):
            noted.users.add(record.user)  # type: ignore[arg-type]
        elif isinstance(record, r.Admin | r.Suspend):
            noted.users.add(record.target)
        elif isinstance(record, r.Join | r.Leave | r.Create):
            noted.rooms.add(record.room)
            noted.members.add((record.room, record.user))  # type: ignore[arg-type]
        elif isinstance(record, r.Delete):
            noted.gone_rooms.append(record.room)
            noted.all_files = True
            # Its messages go with it, even those not written yet.
            for made in (noted.new, noted.changed):
                for key in [key for key in made if key[0] == record.room]:
                    del made[key]
        elif isinstance(record, r.Topic | r.Moderator | r.Unban | r.Mute | r.Invite | r.Pin):
            noted.rooms.add(record.room)
        elif isinstance(record, r.Kick | r.Ban):
            noted.rooms.add(record.room)
            noted.members.add((record.room, record.target))
        elif isinstance(record, r.MessageChange):
            key = (record.scope, record.seq)
            if result is not None and key not in noted.new:  # else written as it is now
                noted.changed[key] = result
            if isinstance(record, r.Erase):
                noted.all_files = True
                if record.room is not None:  # it may have been pinned
                    noted.rooms.add(record.room)
        elif isinstance(record, r.Upload | r.Discard):
            noted.files.add(record.id)
        elif isinstance(record, r.Read):
            if record.thread is not None:
                noted.follows.add((record.user, _address_scope(record), record.thread))  # type: ignore[arg-type]
            elif record.room is not None:
                noted.members.add((record.room, record.user))  # type: ignore[arg-type]
            else:
                noted.conversations.add(pair_key(record.user, record.with_))  # type: ignore[arg-type]
        else:
            raise TypeError(f"no rows for {type(record).__name__}")

    def _write_noted(self) -> None:
        """Cuts what is noted into rows and hands them to the writer."""
        self._write_handle = None
        if self._writing is not None or not self._noted or self._recovering:
            return
        noted, self._noted = self._noted, _Noted()
        waiters, self._waiters = self._waiters, []
        batch = self._rows(noted)
        self._writing_changed = set(noted.changed)
        for listener in self.listeners:
            listener.cut()
        loop = asyncio.get_running_loop()
        if self.writes_on_loop:
            self._writing = written = loop.create_future()
            try:
                self._write(batch)
            except Exception as exc:  # told by `_wrote`, as from the thread
                written.set_exception(exc)
            else:
                written.set_result(None)
            self._wrote(written, waiters)  # at once: nothing was applied meanwhile
            return
        future = loop.run_in_executor(self._writer, self._write, batch)
        self._writing = asyncio.ensure_future(future)
        self._writing.add_done_callback(lambda done: self._wrote(done, waiters))

    def _wrote(self, done: asyncio.Future[None], waiters: list[asyncio.Future[None]]) -> None:
        self._writing = None
        self._writing_changed = set()
        exc = done.exception()
        if exc is not None:
            self._recovering = True
            asyncio.get_running_loop().create_task(self._recover(exc, waiters))
            return
        if not self._noted:  # waiting with nothing more applied: this write was theirs
            waiters += self._waiters
            self._waiters = []
        tell_written(self.listeners, waiters)
        self._forget_loaded()
        if self._noted:
            self._write_noted()

    def _rows(self, noted: _Noted) -> _Batch:
        """The rows of what `noted` names, as the model holds it now."""
        model = self.model
        users, rooms, convs = model.users, model.rooms, model.conversations
        # Every account is looked at: only when a room's row is written (few cuts).
        guests = {key for key, user in users.items() if user.guest} if noted.rooms else set()
        members: list[tuple[Any, ...]] = []
        members_gone: list[tuple[str, str]] = []
        for name, key in noted.members:
            room, user = rooms.get(name), users.get(key)
            if room is not None and not room.ephemeral and user is not None and key in room.members:
                members.append((name, key, user.read.get(name, 0)))
            else:
                members_gone.append((name, key))
        new = [message_row(scope, message) for (scope, _), message in noted.new.items()]
        changed = [message_row(scope, message) for (scope, _), message in noted.changed.items()]
        files = model.files
        touched = files.keys() if noted.all_files else noted.files & files.keys()
        follows: list[tuple[Any, ...]] = []
        follows_gone: list[tuple[str, str, int]] = []
        for key, scope, root in noted.follows:
            user = users.get(key)
            follow = user.follows.get((scope, root)) if user is not None else None
            if follow is not None and not user.guest and model.history(scope) is not None:  # type: ignore[union-attr]
                follows.append(follow_row(key, scope, root, follow))
            else:
                follows_gone.append((key, scope, root))
        return _Batch(
            gone_rooms=noted.gone_rooms,
            users=[user_row(key, users[key]) for key in noted.users if key in users],
            rooms=[
                room_row(rooms[name], guests)
                for name in noted.rooms
                if name in rooms and not rooms[name].ephemeral
            ],
            members=members,
            members_gone=members_gone,
            conversations=[conversation_row(convs[k]) for k in noted.conversations if k in convs],
            new=new,
            changed=changed,
            files=[file_row(files[file_id]) for file_id in touched],
            files_gone=[file_id for file_id in noted.files if file_id not in files],
            follows=follows,
            follows_gone=follows_gone,
        )

    def _held(self, scope: str, seq: int) -> Message | None:
        """The message `seq` of `scope` as memory holds it: in its window, or read to be changed."""
        history = self.model.history(scope)
        message = history.get(seq) if history is not None else None
        return message if message is not None else self._loaded.get((scope, seq))

    async def _recover(self, exc: BaseException, waiters: list[asyncio.Future[None]]) -> None:
        """After a failed write: read the model again and refuse what is
        unwritten. If the database cannot be read either (it went away), the
        refusals go at once and the model is read as soon as it is back;
        until then every change is refused."""
        log.error("database write failed, refusing unwritten changes: %s", exc)
        waiters += self._waiters
        self._waiters, self._noted = [], _Noted()
        self._loaded.clear()
        before = self.model
        reason = getattr(exc, "strerror", None) or exc
        failure = StoreError(f"could not write the database: {reason}")
        caught: tuple[type[BaseException], ...] = (*self.errors, StoreError)
        refused = False  # told at once when the database cannot be read either
        delay = REOPEN_FIRST
        try:
            while True:
                try:
                    self.model = await self._in_writer(self._reopen)
                    break
                except caught as err:
                    if not refused:
                        tell_refused(self.listeners, waiters, failure, before, before)
                        refused = True
                    if self._closing:
                        return
                    log.warning("cannot read the database (again in %g s): %s", delay, err)
                    await asyncio.sleep(delay)
                    delay = min(2 * delay, REOPEN_MAX)
            if not refused:
                tell_refused(self.listeners, waiters, failure, before, self.model)
                return
            log.info("the database is back: changes are accepted again")
            for listener in self.listeners:
                listener.reloaded(before)
        finally:
            self._recovering = False

    def _reopen(self) -> Model:
        """The model read again after a failed write, with the writer's
        connection (an engine whose connection can break makes a new one first)."""
        self._next_id = None
        return self._read_model()

    # -- reading past the window ---------------------------------------------------

    async def page(self, scope: str, limit: int, before: int | None, replies: bool = False) -> Page:
        rows, more = await self._in_reader(self._read_page, scope, limit, before, replies)
        return [self._shown(scope, row) for row in rows], more

    async def newer(self, scope: str, after: int, limit: int, replies: bool = False) -> Page:
        rows, more = await self._in_reader(self._read_newer, scope, after, limit, replies)
        return [self._shown(scope, row) for row in rows], more

    async def around(
        self, scope: str, seq: int, limit: int, replies: bool = False
    ) -> tuple[list[Message], bool, bool]:
        rows, more, more_after = await self._in_reader(
            self._read_around, scope, seq, limit, replies
        )
        return [self._shown(scope, row) for row in rows], more, more_after

    async def thread_page(self, scope: str, root: int, limit: int, before: int | None) -> Page:
        rows, more = await self._in_reader(self._read_thread, scope, root, limit, before)
        return [self._shown(scope, row) for row in rows], more

    def _shown(self, scope: str, row: tuple[Any, ...]) -> Message:
        """A message read from disk, or the one memory holds with newer changes."""
        return self._summed(scope, self._held(scope, row[2]) or message_of(row))

    def _summed(self, scope: str, message: Message) -> Message:
        """`message` with its thread's replies, if it is a root with any."""
        history = self.model.history(scope)
        if history is not None and message.thread is None:
            message.summary = history.threads.get(message.seq)
        return message

    async def message(self, scope: str, seq: int) -> Message | None:
        key = (scope, seq)
        held = self._held(scope, seq)
        if held is not None:
            return self._summed(scope, held)
        loading = self._loading.get(key)
        if loading is None:
            loading = self._loading[key] = asyncio.get_running_loop().create_future()
            try:
                row = await self._in_reader(self._read_message, scope, seq)
                message = self._held(scope, seq) or (message_of(row) if row else None)
                if message is not None and key not in self._loaded:
                    self._keep_loaded(key, self._summed(scope, message))
                loading.set_result(message)
            except BaseException as exc:
                loading.set_exception(exc)
                raise
            finally:
                del self._loading[key]
            return message
        return await asyncio.shield(loading)

    def _keep_loaded(self, key: tuple[str, int], message: Message) -> None:
        self._loaded[key] = message
        if len(self._loaded) > LOADED_MAX:
            self._forget_loaded()

    def _forget_loaded(self) -> None:
        """Lets go of loaded messages beyond LOADED_MAX, oldest first, but for
        those with changes not yet written: read again meanwhile, one would
        miss them."""
        keep = self._writing_changed | set(self._noted.changed)
        excess = len(self._loaded) - LOADED_MAX
        for key in list(self._loaded):
            if excess <= 0:
                break
            if key not in keep:
                del self._loaded[key]
                excess -= 1

    async def unread(self, scope: str, after: int, reader: str) -> tuple[int, int]:
        return await self._in_reader(self._read_unread, scope, after, reader)

    # -- search ----------------------------------------------------------------------

    async def search(
        self,
        scopes: Iterable[str],
        terms: list[str],
        author: str | None = None,
        before: float | None = None,
        limit: int = 20,
    ) -> Page:
        wanted = sorted(set(scopes))
        if not wanted or not terms:
            return [], False
        read = self._search_reader(wanted)
        rows = await self._in_reader(read, wanted, terms, author, before, limit)
        found = [self._shown(row[1], row) for row in rows]
        found.sort(key=lambda m: (-m.ts, -m.seq))
        return found[:limit], len(found) > limit

    def _search_reader(self, scopes: list[str]) -> Callable[..., list[tuple[Any, ...]]]:
        """What reads up to limit + 1 matches in `scopes`, newest first, on a
        reader thread: the engine's `_read_search` unless it says otherwise."""
        return self._read_search

    def _read_search(
        self,
        scopes: list[str],
        terms: list[str],
        author: str | None,
        before: float | None,
        limit: int,
    ) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def _kept(self, scope: str) -> int:
        """About how many messages `scope` keeps (its seqs from the oldest kept)."""
        history = self.model.history(scope)
        if history is None:
            return 0
        stored = history.messages
        oldest = history.floor or (stored[0].seq if stored else history.last_seq + 1)
        return history.last_seq - oldest + 1

    async def mentions(self, user: str, scopes: set[str], limit: int) -> list[Message]:
        if not scopes:
            return []
        rows = await self._in_reader(self._read_mentions, user, sorted(scopes), limit)
        return [self._shown(row[1], row) for row in rows]

    # -- background work ---------------------------------------------------------------

    def start(self) -> None:
        self._in_background(self._index_in_background())
        if self.retention_days > 0:
            self._in_background(self._trim_in_background())

    def _in_background(self, work: Coroutine[Any, Any, None]) -> None:
        """Runs `work` until the store closes."""
        self._background.append(asyncio.get_running_loop().create_task(work))

    async def _index_in_background(self) -> None:
        """Indexes messages not in the full-text index yet, a step at a time,
        with pauses between steps for the writes."""
        while True:
            more = False
            if not self._recovering:
                try:
                    more = await self._in_writer(self._index_step)
                except self.errors:
                    log.exception("full-text indexing failed; trying again later")
            await asyncio.sleep(INDEX_PAUSE if more else INDEX_EVERY)

    async def index_all(self) -> None:
        """Indexes every message not indexed yet (for tests and maintenance)."""
        while await self._in_writer(self._index_step):
            pass

    async def _trim_in_background(self) -> None:
        caught: tuple[type[BaseException], ...] = (*self.errors, StoreError)
        while True:
            try:
                await self.trim()
            except caught:
                log.exception("deleting old messages failed; trying again later")
            await asyncio.sleep(RETENTION_EVERY)

    async def trim(self, now: float | None = None) -> int:
        """Deletes the messages older than `retention_days`; how many went."""
        cutoff = (now or time.time()) - self.retention_days * 86400.0
        total = 0
        floors: dict[str, int | None] = {}
        while True:
            await self.written()
            count, step_floors, replies = await self._in_writer(self._trim_step, cutoff)
            total += count
            floors.update(step_floors)
            for scope, root, seq in replies:  # no longer in their threads
                history = self.model.history(scope)
                if history is not None:
                    history.thread(root).drop(seq)
            if count == 0:
                break
        for scope, floor in floors.items():
            history = self.model.history(scope)
            if history is None:
                continue
            while history.messages and history.messages[0].ts < cutoff:
                history.messages.popleft()
            history.floor = floor
        if total:
            log.info("deleted %d messages older than %d days", total, self.retention_days)
        return total

    # -- life ----------------------------------------------------------------------------

    async def close(self) -> None:
        """Writes what is pending, stops background work, closes the database."""
        if self._closing and self._connection is None:
            return
        for task in self._background:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(StoreError):
            await self.written()
        self._closing = True
        await self._in_writer(self._close_connection)
        self._shut()

    async def _opened(self: S) -> S:
        """Opens the database and reads the model where the engine writes; if
        that fails, the threads and any connection made go too."""
        try:
            self.model = await self._in_writer(self._open_database)
        except BaseException:
            self._shut()
            raise
        return self

    def _shut(self) -> None:
        for db in self._reader_connections:
            with contextlib.suppress(*self.errors):
                db.close()
        self._writer.shutdown(wait=False)
        self._readers.shutdown(wait=False)

    def _open_connection(self) -> Any:
        """The writer's connection (a DB-API one, statements written with `?`)."""
        if self._connection is None:
            raise StoreError("the store is closed")
        return self._connection

    def _reader(self) -> Any:
        """This reader thread's connection, made on its first read."""
        db = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = self._connect_reader()
            self._reader_connections.append(db)
        return db

    def _drop_reader(self) -> None:
        """Closes this reader thread's connection, if it has one."""
        db = getattr(self._local, "db", None)
        if db is not None:
            self._local.db = None
            self._reader_connections.remove(db)
            with contextlib.suppress(*self.errors):
                db.close()

    def _close_connection(self) -> None:
        """Closes the writer's connection."""
        if self._connection is not None:
            with contextlib.suppress(*self.errors):
                self._before_close(self._connection)
                self._connection.close()
            self._connection = None

    # -- the statements every engine runs, with the writer's connection or a reader's

    def _write(self, batch: _Batch) -> None:
        """One transaction. Only the statements that have rows run: most
        cuts are messages and little else."""
        db = self._open_connection()
        with self._transaction(db):
            first = (self._next_id or next_id(db)) if batch.new else 0
            if batch.gone_rooms or batch.changed:
                indexed = db.execute("SELECT value FROM meta WHERE key = 'indexed'").fetchone()[0]
            for name in batch.gone_rooms:
                delete_room(db, name, indexed)
            many(
                db,
                "INSERT INTO users (key, username, password, created, bio, last_seen, away,"
                " admin, suspended, tokens) VALUES (?,?,?,?,?,?,?,?,?,?)"
                " ON CONFLICT (key) DO UPDATE SET password = excluded.password,"
                " bio = excluded.bio, last_seen = excluded.last_seen, away = excluded.away,"
                " admin = excluded.admin, suspended = excluded.suspended,"
                " tokens = excluded.tokens",
                batch.users,
            )
            write_rooms(db, batch.rooms)
            many(db, 'DELETE FROM members WHERE room = ? AND "user" = ?', batch.members_gone)
            many(
                db,
                "INSERT INTO members VALUES (?,?,?)"
                ' ON CONFLICT (room, "user") DO UPDATE SET read = excluded.read',
                batch.members,
            )
            many(
                db,
                "INSERT INTO conversations (pair, a, b, last_seq, read) VALUES (?,?,?,?,?)"
                " ON CONFLICT (pair) DO UPDATE SET last_seq = excluded.last_seq,"
                " read = excluded.read",
                batch.conversations,
            )
            insert_messages(db, batch.new, first, self.folds)
            self._index_new(db, first, batch.new)
            for row in batch.changed:
                change_message(db, row, indexed, self._vocabulary, self.folds)
            write_files(db, batch.files, batch.files_gone)
            write_follows(db, batch.follows, batch.follows_gone)
        if batch.new:
            self._next_id = first + len(batch.new)

    def _read_page(
        self, scope: str, limit: int, before: int | None, replies: bool
    ) -> tuple[list[Any], bool]:
        """A timeline page (the partial index of timeline messages), or with
        `replies` a page of every message (the primary key)."""
        rows = (
            self._reader()
            .execute(
                f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE scope = ?{_timeline(replies)}"
                " AND seq < ? ORDER BY seq DESC LIMIT ?",
                (scope, before if before is not None else 1 << 62, limit + 1),
            )
            .fetchall()
        )
        return rows[:limit][::-1], len(rows) > limit

    def _read_newer(
        self, scope: str, after: int, limit: int, replies: bool
    ) -> tuple[list[Any], bool]:
        rows = (
            self._reader()
            .execute(
                f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE scope = ?{_timeline(replies)}"
                " AND seq > ? ORDER BY seq LIMIT ?",
                (scope, after, limit + 1),
            )
            .fetchall()
        )
        return rows[:limit], len(rows) > limit

    def _read_around(
        self, scope: str, seq: int, limit: int, replies: bool
    ) -> tuple[list[Any], bool, bool]:
        newer, more_after = self._read_newer(scope, seq - 1, limit - (limit - 1) // 2, replies)
        older, more = self._read_page(scope, limit - len(newer), seq, replies)
        if len(older) + len(newer) < limit and more_after:  # near the oldest: more after
            newer, more_after = self._read_newer(scope, seq - 1, limit - len(older), replies)
        return older + newer, more, more_after

    def _read_thread(
        self, scope: str, root: int, limit: int, before: int | None
    ) -> tuple[list[Any], bool]:
        """A thread page (the partial index of replies)."""
        rows = (
            self._reader()
            .execute(
                f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE scope = ? AND thread = ?"
                " AND seq < ? ORDER BY seq DESC LIMIT ?",
                (scope, root, before if before is not None else 1 << 62, limit + 1),
            )
            .fetchall()
        )
        return rows[:limit][::-1], len(rows) > limit

    def _read_message(self, scope: str, seq: int) -> tuple[Any, ...] | None:
        return (
            self._reader()
            .execute(
                f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE scope = ? AND seq = ?", (scope, seq)
            )
            .fetchone()
        )

    def _read_unread(self, scope: str, after: int, reader: str) -> tuple[int, int]:
        db = self._reader()
        if "\n" in scope:  # a DM: the other's messages, erased ones too
            found = db.execute(
                "SELECT COUNT(*) FROM messages WHERE scope = ? AND timeline = 1 AND seq > ?"
                " AND lower(author) != ?",
                (scope, after, reader.lower()),
            ).fetchone()
            return found[0], 0
        unread = db.execute(
            "SELECT COUNT(*) FROM messages WHERE scope = ? AND timeline = 1 AND seq > ?"
            " AND author != ? AND erased = 0",
            (scope, after, reader),
        ).fetchone()[0]
        mentions = db.execute(
            "SELECT COUNT(*) FROM mentions n JOIN messages m ON m.scope = n.scope AND m.seq = n.seq"
            " WHERE n.name = ? AND n.scope = ? AND n.seq > ? AND m.author != ? AND m.erased = 0"
            " AND m.timeline = 1",
            (reader, scope, after, reader),
        ).fetchone()[0]
        return unread, mentions

    def _read_mentions(self, user: str, scopes: list[str], limit: int) -> list[tuple[Any, ...]]:
        marks = ",".join("?" * len(scopes))
        return (
            self._reader()
            .execute(
                f"SELECT m.{MESSAGE_COLUMNS.replace(', ', ', m.')} FROM mentions n"
                " JOIN messages m ON m.scope = n.scope AND m.seq = n.seq"
                f" WHERE n.name = ? AND n.scope IN ({marks}) AND m.erased = 0"
                " ORDER BY n.ts DESC, n.seq DESC LIMIT ?",
                [user, *scopes, limit],
            )
            .fetchall()
        )

    def _trim_step(
        self, cutoff: float
    ) -> tuple[int, dict[str, int | None], list[tuple[str, int, int]]]:
        """Deletes those of the oldest RETENTION_STEP messages (by id: the
        order they came in) older than `cutoff`; an index of times would cost
        every message a few microseconds to spare this hourly step."""
        db = self._open_connection()
        with self._transaction(db):
            indexed = db.execute("SELECT value FROM meta WHERE key = 'indexed'").fetchone()[0]
            oldest = db.execute(
                "SELECT id, scope, seq, text, erased, ts, thread FROM messages ORDER BY id LIMIT ?",
                (RETENTION_STEP,),
            )
            expired = [row for row in oldest if row[5] < cutoff]
            replies = [(row[1], row[6], row[2]) for row in expired if row[6] is not None]
            rows = [row[:5] for row in expired]
            w.remove(
                db, [(i, text) for i, _, _, text, erased in rows if i <= indexed and not erased]
            )
            db.executemany("DELETE FROM messages WHERE id = ?", [(row[0],) for row in rows])
            db.executemany(
                "DELETE FROM mentions WHERE scope = ? AND seq = ?",
                [(row[1], row[2]) for row in rows],
            )
            scopes = {row[1] for row in rows}
            floors = {
                scope: db.execute(
                    "SELECT MIN(seq) FROM messages WHERE scope = ?", (scope,)
                ).fetchone()[0]
                for scope in scopes
            }
        return len(rows), floors, replies

    def _read_model(self) -> Model:
        return read_model(self._open_connection(), self.window, self.dm_window)

    def _scan_search(
        self,
        scopes: list[str],
        terms: list[str],
        author: str | None,
        before: float | None,
        limit: int,
    ) -> list[tuple[Any, ...]]:
        """`_read_search` for small scopes: up to limit + 1 matches of each,
        read newest first from the scope's own messages."""
        db = self._reader()
        filters, params = search_filters(author, before)
        found: list[tuple[Any, ...]] = []
        for scope in scopes:
            rows = db.execute(
                f"SELECT {MESSAGE_COLUMNS} FROM messages m WHERE m.scope = ?{filters}"
                " ORDER BY m.seq DESC",
                [scope, *params],
            )
            found += matching(rows, terms, limit + 1)
        return found

    # -- what an engine does its own way

    def _open_database(self) -> Model:
        """Connects the writer (`_connection`), makes or upgrades the tables,
        and reads the model."""
        raise NotImplementedError

    def _connect_reader(self) -> Any:
        raise NotImplementedError

    def _before_close(self, db: Any) -> None:
        """What the writer's connection does last (nothing unless an engine says)."""

    def _transaction(self, db: Any) -> contextlib.AbstractContextManager[None]:
        raise NotImplementedError

    def _index_step(self) -> bool:
        """Indexes some messages for search; whether more wait."""
        raise NotImplementedError

    def _index_new(self, db: Any, first: int, rows: list[tuple[Any, ...]]) -> None:
        """Indexes new messages (ids from `first`) in the transaction that
        stores them (nothing unless an engine keeps an index of its own)."""


# -- helpers


def matching(rows: Iterable[tuple[Any, ...]], terms: list[str], count: int) -> list[Any]:
    """The first `count` rows, as read, whose text holds every term."""
    found = []
    for row in rows:
        if holds(row[5], terms):
            found.append(row)
            if len(found) == count:
                break
    return found


def holds(text: str, terms: list[str]) -> bool:
    folded = text.casefold()
    return all(term in folded for term in terms)


def search_filters(author: str | None, before: float | None) -> tuple[str, list[Any]]:
    """A search's conditions on the messages table (`m`), and their parameters."""
    filters, params = " AND m.erased = 0", list[Any]()
    if author is not None:
        filters += " AND m.author = ?"
        params.append(author)
    if before is not None:
        filters += " AND m.ts < ?"
        params.append(before)
    return filters, params
