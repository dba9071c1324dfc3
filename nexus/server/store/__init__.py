"""The store: what the server knows, made durable, behind one interface.

Every engine keeps the model (nexus/server/model.py) in memory: users,
rooms, memberships, conversations and a window of each room's and
conversation's recent history. Handlers read it directly and change it only
through `apply(record)`, which changes the model at once and makes the
record durable with the next group of writes. What differs between engines
is behind the `Store` protocol: how records reach the disk, history older
than the window (pages, single messages, unread counts), search, and
maintenance.

- `journal` (nexus/server/store/journal.py): a JSON snapshot plus an
  append-only journal; the window is the whole history, capped per room and
  per conversation; search is an in-memory word index.

Listeners hear what the store does, in order: `hold` (a change is applied
and not written), `cut` (what was applied so far is being written; what is
applied from now on goes with the next write), `written` (the cut is on
disk), or `refused` (the write failed: the changes not written are gone)
followed, if the model was reloaded from disk, by `reloaded`. The outbox
holds frames between `hold` and `written`, so nothing tells of a change a
crash could take back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any, Protocol

from nexus.server.model import Message, Model
from nexus.server.records import Record


class StoreError(Exception):
    """The store could not make a change durable; nothing was acknowledged."""


class NeedTurn(StoreError):
    """Several nodes share the store, and this one may change it only in its
    turn (store/clustered.py): nothing was applied. `turn` is done once the
    turn is this node's; the change is then tried again."""

    def __init__(self, turn: asyncio.Future[None]) -> None:
        super().__init__("waiting for this node's turn")
        self.turn = turn


class DamagedStore(Exception):
    """The files on disk cannot be trusted; start-up must stop."""


class StoreListener:
    """What the store tells (see the module's note); each does nothing unless overridden."""

    def hold(self) -> None:
        """Changes are applied that are not written yet."""

    def cut(self) -> None:
        """What was applied until now is being written."""

    def written(self) -> None:
        """What was cut is written."""

    def refused(self, error: StoreError) -> None:
        """A write failed: every change not yet written is refused."""

    def reloaded(self, before: Model) -> None:
        """After a refusal, the model was read again from disk; `before` is
        the one it replaced, with what was never written (guests, ephemeral
        rooms)."""


def tell_written(listeners: list[StoreListener], waiters: list[asyncio.Future[None]]) -> None:
    """After a write, what every engine tells: each waiter is released, and
    the listeners hear `written`."""
    for waiter in waiters:
        if not waiter.done():
            waiter.set_result(None)
    for listener in listeners:
        listener.written()


def tell_refused(
    listeners: list[StoreListener],
    waiters: list[asyncio.Future[None]],
    failure: StoreError,
    before: Model,
    after: Model,
) -> None:
    """After a failed write, what every engine tells: each waiter and listener
    hears `failure`; if the model was read again from disk (`after` is not
    `before`), the listeners hear `reloaded(before)` too."""
    for waiter in waiters:
        if not waiter.done():
            waiter.set_exception(failure)
    for listener in listeners:
        listener.refused(failure)
    if after is not before:
        for listener in listeners:
            listener.reloaded(before)


Page = tuple[list[Message], bool]  # messages oldest first, and whether older ones are stored


class Store(Protocol):
    """What every engine does. Scopes name where messages live: a room's
    name, or a DM conversation's pair key (`model.pair_key`)."""

    model: Model
    listeners: list[StoreListener]

    # -- changing ----------------------------------------------------------

    def apply(self, record: Record) -> Any:
        """Applies `record` now (the next request sees it) and writes it with
        the next group; returns what it produced. Raises StoreError while the
        store accepts no changes."""

    def record(self, record: Record) -> None:
        """`apply`, for bookkeeping nothing waits on: refused silently."""

    async def commit(self, record: Record) -> Any:
        """`apply`, returning once the record is written."""

    def has_turn(self) -> bool:
        """Whether this node may apply changes now (always but with several nodes)."""

    async def turn(self) -> None:
        """Returns once this node may apply changes (at once but with several
        nodes, where `apply` raises NeedTurn outside the node's turn): for a
        handler about to change things after a long wait of its own."""

    async def written(self) -> None:
        """Returns once every change applied so far is written; raises
        StoreError if they were refused instead."""

    def has_unwritten(self) -> bool:
        """Whether changes are applied that are not written yet, or a failed
        write is being recovered from."""

    # -- history beyond the window -----------------------------------------

    async def page(self, scope: str, limit: int, before: int | None, replies: bool = False) -> Page:
        """Up to `limit` timeline messages of `scope` (none in a thread, or
        sent to the timeline too; with `replies`, every message) older than
        `before` (the newest if None), oldest first, and whether older ones
        are stored."""

    async def newer(self, scope: str, after: int, limit: int, replies: bool = False) -> Page:
        """Up to `limit` timeline messages of `scope` (with `replies`, every
        message) newer than `after`, oldest first, and whether newer ones
        are stored (a page after or around a message)."""

    async def around(
        self, scope: str, seq: int, limit: int, replies: bool = False
    ) -> tuple[list[Message], bool, bool]:
        """A timeline page of `limit` (with `replies`, of every message)
        centred on `seq` (`History.around`), oldest first, whether older ones
        are stored and whether newer ones are: both halves in one read."""

    async def thread_page(self, scope: str, root: int, limit: int, before: int | None) -> Page:
        """Up to `limit` replies to root `root` of `scope` older than
        `before` (the newest if None), oldest first, and whether older ones
        are stored."""

    async def message(self, scope: str, seq: int) -> Message | None:
        """The stored message `seq` of `scope`, erased or not; None if it
        was never made or is no longer kept. Changes applied to it (an
        edit, an erasure, a reaction) go to the object returned."""

    async def unread(self, scope: str, after: int, reader: str) -> tuple[int, int]:
        """Timeline messages of `scope` after seq `after` not by `reader` (a
        name) and not erased, and how many of those mention `reader`."""

    # -- search --------------------------------------------------------------

    async def search(
        self,
        scopes: Iterable[str],
        terms: list[str],
        author: str | None = None,
        before: float | None = None,
        limit: int = 20,
    ) -> Page:
        """Stored messages of `scopes`, newest first, holding every term
        (ignoring case), by `author` and sent before `before` if given;
        and whether more match."""

    async def mentions(self, user: str, scopes: set[str], limit: int) -> list[Message]:
        """The newest messages of `scopes` that mention `user` (a name)."""

    # -- life ----------------------------------------------------------------

    def start(self) -> None:
        """Starts the engine's background work, once the server runs."""

    async def close(self) -> None:
        """Writes what is pending, leaves the files tidy, and closes."""
