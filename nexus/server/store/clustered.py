"""Several nodes on one PostgreSQL database, kept alike by taking turns.

Every node holds the model in memory, as a node of its own does
(tabled.py), and the nodes stay alike by applying the same records in the
same order: the order of the `changes` table. A node changes its model only
in its turn, a transaction that holds the cluster's lock (an advisory lock
the transaction's end releases):

1. the turn begins by reading every change committed since the node's last
   one, and applying it: records to the model, and what the other node's
   hub told to this node's sessions (`told`, which is `Hub.tell`);
2. the node's own requests then run as on a node of its own, so a room's
   seq is assigned on the model as every node has it, while no other node
   can assign one;
3. the cut is written in that same transaction with one row of `changes`
   (the turn's records and what the hub told, in the order they came), and
   the commit ends the turn. A reply `ok` still means committed.

`apply` outside a turn raises NeedTurn, which carries the turn to wait for:
the request is answered once it has run in that turn (commands/registry.py);
bookkeeping `record`ed outside a turn goes into the next. Between turns a
node reads what the others committed as soon as the bus tells it (bus.py),
and every POLL_EVERY seconds in case a notice was lost. Every node of a
database must run this way: a node of its own would write without the lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, TypeVar

import orjson

from nexus.protocol import DEFAULT_ROOMS
from nexus.server import records as r
from nexus.server.model import Model
from nexus.server.store import NeedTurn, StoreError
from nexus.server.store.postgres import Connection, PostgresStore, transaction
from nexus.server.store.tabled import _Batch, _Noted

log = logging.getLogger("nexus.store")

T = TypeVar("T")

LOCK = 0x6E657875  # the cluster's advisory lock ("nexu")
POLL_EVERY = 1.0  # seconds between looks for changes, should the bus lose a notice
READ_AT_ONCE = 500  # changes read in one go between turns


class ClusteredStore(PostgresStore):
    """The postgresql engine for one node of several (the module's note).
    Open with `await ClusteredStore.open(url, node=...)`."""

    def __init__(
        self,
        url: str,
        node: str,
        window: int = 500,
        dm_window: int = 200,
        retention_days: int = 0,
        default_rooms: Sequence[str] = DEFAULT_ROOMS,
    ) -> None:
        super().__init__(url, window, dm_window, retention_days, default_rooms)
        self.node = node
        self.position = 0  # the last change this node applied or made
        # Where what the other nodes' hubs told goes (the server sets Hub.tell).
        self.told: Callable[[list[Any]], None] = lambda told: None
        # Called with the position of each turn written (the bus tells the others).
        self.committed: Callable[[int], None] = lambda position: None
        self._turn: asyncio.Future[None] | None = None  # the turn asked for, once held
        self._opening = False  # its transaction is being begun
        self._holding = False
        self._items: list[list[Any]] = []  # the turn's records and what was told
        self._deferred: list[r.Record] = []  # bookkeeping `record`ed between turns
        self._catching_up = False
        self._unreadable = False  # the last look between turns failed (said once)
        self._in_turn = False  # the writer's: a turn's transaction is open
        # The writer's, when the model is read again: what the changes it
        # passes over told, for this node's sessions.
        self._missed: list[list[Any]] = []
        self._model_read = False  # once, at start

    @classmethod
    async def open(  # type: ignore[override]
        cls,
        url: str,
        node: str = "node",
        window: int = 500,
        dm_window: int = 200,
        retention_days: int = 0,
        default_rooms: Sequence[str] = DEFAULT_ROOMS,
    ) -> ClusteredStore:
        store = cls(url, node, window, dm_window, retention_days, default_rooms)
        return await store._opened()

    # -- changing, in turns ---------------------------------------------------------

    def apply(self, record: r.Record) -> Any:
        if not record.journaled(self.model):  # guests, ephemeral rooms: this node's own
            return super().apply(record)
        if not self._holding:
            raise NeedTurn(self._ask_turn())
        result = super().apply(record)
        self._items.append(["record", record.to_json()])
        return result

    def record(self, record: r.Record) -> None:
        try:
            self.apply(record)
        except NeedTurn:
            self._deferred.append(record)
        except StoreError:
            pass

    def has_turn(self) -> bool:
        return self._holding

    async def turn(self) -> None:
        if not self._holding:
            await self._ask_turn()

    def relay(self, told: list[Any]) -> None:
        """What this node's hub tells (Hub.relay): told on the other nodes
        with the turn it belongs to, or the next one."""
        self._items.append(told)
        if not self._holding:
            self._ask_turn()

    def has_unwritten(self) -> bool:
        return super().has_unwritten() or self._holding

    def _ask_turn(self) -> asyncio.Future[None]:
        """The next turn, asked for if it was not yet."""
        if self._turn is None:
            self._turn = asyncio.get_running_loop().create_future()
            # Whoever waited may be gone: a failed turn must not be logged as unread.
            self._turn.add_done_callback(lambda done: done.cancelled() or done.exception())
            self._begin_turn()
        return self._turn

    def _begin_turn(self) -> None:
        """Begins the turn asked for, unless a write or recovery is under way
        (each begins it when done) or one is being begun."""
        if self._turn is None or self._opening or self._holding:
            return
        if self._writing is not None or self._recovering or self._closing:
            return
        self._opening = True
        self._on_writer(self._turn_opened, self._open_turn, self.position)

    def _turn_opened(self, done: asyncio.Future[list[tuple[int, bytes]]]) -> None:
        self._opening = False
        turn, self._turn = self._turn, None
        assert turn is not None
        exc = done.exception()
        if exc is None and self._closing:
            exc = StoreError("the server is stopping")  # its connection closes the turn
        if exc is not None:
            log.warning("could not begin this node's turn: %s", exc)
            # What the hub told meanwhile is not kept while the database is
            # away: it would pile up, and it tells of nothing stored.
            self._items.clear()
            if not turn.done():
                turn.set_exception(StoreError(f"the database is unavailable: {exc}"))
            return
        try:
            self._catch_up(done.result())
        except Exception as failed:  # the turn's transaction ends with the reload's connection
            self._diverged(failed)
            if not turn.done():
                turn.set_exception(StoreError("this node is reading the database again"))
            return
        self._holding = True
        deferred, self._deferred = self._deferred, []
        for record in deferred:
            self.record(record)
        if not turn.done():
            turn.set_result(None)
        # After the waiters have run: each resumes before this, in the order
        # they were woken, and applies what it came to apply.
        asyncio.get_running_loop().call_soon(self._end_turn)

    def _write_noted(self) -> None:
        """The first change of a turn schedules this: the turn ends on its own."""
        self._write_handle = None

    def _end_turn(self) -> None:
        """Writes what the turn applied and what was told, and commits."""
        if self._write_handle is not None:
            self._write_handle.cancel()
            self._write_handle = None
        self._holding = False
        noted, self._noted = self._noted, _Noted()
        waiters, self._waiters = self._waiters, []
        items, self._items = self._items, []
        batch = self._rows(noted) if noted else None
        self._writing_changed = set(noted.changed)
        if noted:
            for listener in self.listeners:
                listener.cut()
        entry = orjson.dumps(items) if items else None
        writing = self._on_writer(
            partial(self._turn_written, waiters=waiters), self._close_turn, batch, entry
        )
        self._writing = writing  # its result: the position

    def _turn_written(self, done: asyncio.Future[int | None], waiters: list[Any]) -> None:
        position = None if done.exception() is not None else done.result()
        if position is not None:
            self.position = position
            self.committed(position)
        self._wrote(done, waiters)  # type: ignore[arg-type]
        self._begin_turn()

    async def _recover(self, exc: BaseException, waiters: list[asyncio.Future[None]]) -> None:
        """tabled's, then what the changes passed over by the new model told
        (the model holds their records already; this node's sessions have
        not heard of them)."""
        try:
            await super()._recover(exc, waiters)
        finally:
            self._items.clear()
            missed, self._missed = self._missed, []
            for told in missed:
                self.told(told)
            self._begin_turn()

    # -- between turns ---------------------------------------------------------------

    def notice(self, position: int | None) -> None:
        """Another node says its turn at `position` is committed (the bus),
        or None: notices may have been lost."""
        if position is None or position > self.position:
            self._catch_up_soon()

    def _catch_up_soon(self) -> None:
        """Reads what the other nodes committed, unless a turn will."""
        busy = self._turn is not None or self._holding or self._writing is not None
        if busy or self._catching_up or self._recovering or self._closing:
            return
        self._catching_up = True
        self._on_writer(self._read, self._read_changes, self.position)

    def _read(self, done: asyncio.Future[list[tuple[int, bytes]]]) -> None:
        self._catching_up = False
        exc = done.exception()
        if exc is not None:
            if not self._unreadable:
                log.warning("could not read the other nodes' changes: %s", exc)
            self._unreadable = True
            return
        self._unreadable = False
        rows = done.result()
        try:
            self._catch_up(rows)
        except Exception as failed:
            self._diverged(failed)
            return
        if len(rows) == READ_AT_ONCE:
            self._catch_up_soon()

    def _catch_up(self, rows: list[tuple[int, bytes]]) -> None:
        """Applies the other nodes' changes in order, each once."""
        for position, items in rows:
            if position <= self.position:
                continue  # read by a turn and by a look between turns alike
            for item in orjson.loads(items):
                if item[0] == "record":
                    self._apply_theirs(r.from_json(item[1]))
                else:
                    self.told(item)
            self.position = position

    def _diverged(self, failed: Exception) -> None:
        """Another node's change would not apply here: this node's model is
        no longer theirs, so it is read again from the database (as after a
        failed write: what waits is refused, and the position comes with the
        model)."""
        log.error("a change from another node does not apply here: %r", failed)
        self._recovering = True
        asyncio.get_running_loop().create_task(self._recover(failed, []))

    def _apply_theirs(self, record: r.Record) -> None:
        if isinstance(record, r.MessageChange):  # a copy read from disk is stale now
            self._loaded.pop((record.scope, record.seq), None)
        record.apply(self.model)

    def start(self) -> None:
        super().start()
        self._in_background(self._poll())

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(POLL_EVERY)
            self._catch_up_soon()

    async def close(self) -> None:
        """Takes a last turn for what waits for one (the departures of the
        users the stop disconnected), then closes."""
        if self._turn is not None or self._deferred or self._items:
            with contextlib.suppress(StoreError):
                await self.turn()
        await super().close()

    # -- the writer's side -------------------------------------------------------------

    def _on_writer(
        self, then: Callable[[asyncio.Future[T]], None], job: Callable[..., T], *args: Any
    ) -> asyncio.Future[T]:
        """`job` on the writer's thread (a turn's statements must share its
        connection); `then` is called on the loop with its future once done."""
        loop = asyncio.get_running_loop()
        future = asyncio.ensure_future(loop.run_in_executor(self._writer, job, *args))
        future.add_done_callback(then)
        return future

    def _live(self) -> Connection:
        """The writer's connection, made again if the last one broke (the
        database restarted)."""
        db = self._open_connection()
        if db.raw.broken or db.raw.closed:
            self._close_connection()
            db = self._connection = self._connect()
        return db

    def _open_turn(self, after: int) -> list[tuple[int, bytes]]:
        """Begins the turn's transaction, takes the lock, and reads every
        change after `after`."""
        db = self._live()
        db.execute("BEGIN")
        self._in_turn = True
        try:
            db.execute("SELECT pg_advisory_xact_lock(?)", (LOCK,))
            rows = self._changes_after(db, after, None)
        except BaseException:
            self._end_transaction(db, "ROLLBACK")
            raise
        return rows

    def _close_turn(self, batch: _Batch | None, entry: bytes | None) -> int | None:
        """Writes the turn's rows and its row of changes, and commits;
        the new change's position, if there is one."""
        db = self._open_connection()
        try:
            if batch is not None:
                self._write(batch)
            position = None
            if entry is not None:
                position = db.execute(
                    "INSERT INTO changes (node, items) VALUES (?, ?) RETURNING position",
                    (self.node, entry),
                ).fetchone()[0]
        except BaseException:
            self._end_transaction(db, "ROLLBACK")
            raise
        self._end_transaction(db, "COMMIT")
        return position

    def _end_transaction(self, db: Connection, how: str) -> None:
        self._in_turn = False
        if how == "ROLLBACK":
            with contextlib.suppress(*self.errors):
                db.execute(how)
        else:
            db.execute(how)

    def _read_changes(self, after: int) -> list[tuple[int, bytes]]:
        return self._changes_after(self._live(), after, READ_AT_ONCE)

    def _changes_after(self, db: Connection, after: int, limit: int | None) -> list[Any]:
        rows = db.execute(
            "SELECT position, items FROM changes WHERE position > ? ORDER BY position"
            + ("" if limit is None else f" LIMIT {int(limit)}"),
            (after,),
        ).fetchall()
        if rows:  # the others made messages: the next id is read again
            self._next_id = None
        return rows

    def _transaction(self, db: Connection) -> contextlib.AbstractContextManager[None]:
        """A write in a turn is part of the turn's transaction."""
        return contextlib.nullcontext() if self._in_turn else transaction(db)

    def _reopen(self) -> Model:
        self._in_turn = False  # an open turn's transaction went with the old connection
        return super()._reopen()

    def _read_model(self) -> Model:
        """The model and the position it stands at, read under the lock so
        that no turn falls between them."""
        db = self._open_connection()
        with transaction(db):
            db.execute("SELECT pg_advisory_xact_lock(?)", (LOCK,))
            model = super()._read_model()
            if self._model_read:  # read again: what the changes passed over told
                self._missed = [
                    item
                    for _, items in self._changes_after(db, self.position, None)
                    for item in orjson.loads(items)
                    if item[0] != "record"
                ]
            last = db.execute("SELECT coalesce(max(position), 0) FROM changes").fetchone()
            self.position = last[0]
        self._model_read = True
        return model
