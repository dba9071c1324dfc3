"""What a handler may use: the model to read, its session, one way to change
things, fan-out, and the server's policies. Nothing else of the server.

There is one Context per connection, reset for each request (a request on
the hot path should not pay for building one).

History older than the model's window is the store's to read, from disk on
some engines. The reads here (`page`, `message`, `unreads`) answer at once
when the window holds the answer, and otherwise return an awaitable; a
handler that may need one is registered `suspends=True` and passes the
result through `then`, so it answers at once whenever memory can.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from nexus import protocol as p
from nexus.errors import NexusError
from nexus.protocol import encode
from nexus.server import permissions
from nexus.server.auth import PasswordHashing
from nexus.server.composing import Composing
from nexus.server.frames import Frame
from nexus.server.hub import Hub
from nexus.server.model import (
    Follow,
    History,
    Message,
    Model,
    Room,
    Thread,
    User,
    pair_key,
    user_key,
)
from nexus.server.policy import Policy
from nexus.server.records import Read, Record
from nexus.server.session import Session
from nexus.server.store import NeedTurn, Page, Store

audit_log = logging.getLogger("nexus.moderation")

T = TypeVar("T")
R = TypeVar("R")
Counts = dict[str, tuple[int, int]]  # room -> (unread, mentions among them)


@dataclass(slots=True)
class Shown:
    """A page of history as a reply shows it (`Context.shown_page`)."""

    messages: list[Any]  # wire form, oldest first
    more: bool  # older messages are still stored
    more_after: bool  # newer ones are


def then(value: T | Awaitable[T], use: Callable[[T], R]) -> R | Awaitable[R]:
    """`use(value)`, now if `value` is at hand, else once it is (`use` may
    itself return an awaitable: chained reads)."""
    if inspect.isawaitable(value):
        return _then(value, use)
    return use(value)


async def _then(value: Awaitable[T], use: Callable[[T], R]) -> R:
    got = await value
    try:
        result: Any = use(got)
    except NeedTurn as wait:  # the node's turn went by while `value` was read
        return await in_turn(wait.turn, use, got)
    while inspect.isawaitable(result):
        result = await result
    return result


async def in_turn(turn: Awaitable[None], use: Callable[..., R], *args: Any) -> R:
    """`use(*args)` once this node's turn has come (NeedTurn: with several
    nodes, a change waits for it), tried again should the turn end first.
    Nothing was applied by the try that raised NeedTurn, so `use` runs
    whole each time."""
    while True:
        await turn
        try:
            result: Any = use(*args)
        except NeedTurn as wait:
            turn = wait.turn
            continue
        while inspect.isawaitable(result):
            result = await result
        return result


def gathered(values: list[Any]) -> Any:
    """`values` with the awaitable ones among them awaited, side by side (a
    read each on the store's reader threads): the list now if none is
    (`then`'s way: no task when nothing waits), else an awaitable of it,
    which raises the first error in order."""
    if not any(inspect.isawaitable(value) for value in values):
        return values

    async def ready(value: Any) -> Any:
        return value

    async def gather() -> list[Any]:
        waits = [value if inspect.isawaitable(value) else ready(value) for value in values]
        found = await asyncio.gather(*waits, return_exceptions=True)
        for item in found:
            if isinstance(item, BaseException):
                raise item
        return found

    return gather()


@dataclass(slots=True)
class Context:
    session: Session
    hub: Hub
    policy: Policy
    hashing: PasswordHashing
    _store: Store
    composing: Composing
    changed: bool = False  # the current request applied a change not yet written
    quitting: bool = False  # the connection closes once the reply is queued

    @property
    def model(self) -> Model:
        """The model, to read. (The store replaces it when it reloads after a failed write.)"""
        return self._store.model

    @property
    def key(self) -> str:
        """The session's user key (the handler runs only once authenticated)."""
        return self.session.user  # type: ignore[return-value]

    @property
    def me(self) -> User:
        return self._store.model.users[self.key]

    # -- changing things ---------------------------------------------------

    def change(self, record: Record) -> Any:
        """Applies a change and returns what it produced. It is written with
        the next group, before the reply or any event leaves."""
        self.changed = True
        return self._store.apply(record)

    def guest_name(self) -> str | None:
        """The caller's name if it is a guest: records of what a guest says
        carry it, since no user of that name is stored to replay them."""
        me = self.me
        return me.username if me.guest else None

    def has_turn(self) -> bool:
        """Whether this node may change things now (always, on a node of its own)."""
        return self._store.has_turn()

    async def turn(self) -> None:
        """Waits, with several nodes, for this node's turn to change things:
        for a handler that changes them after a long wait of its own (a
        password's hash), so that the wait is not spent in the turn."""
        await self._store.turn()

    async def durable(self) -> None:
        """Waits until this request's changes are written (for a handler that
        must not go on before, like attaching a session to a new account)."""
        if self.changed:
            await self._store.written()

    def audit(
        self, action: str, room: str | None = None, target: str | None = None, reason: str = ""
    ) -> None:
        """Writes a moderation action to the server's log (who, what, whom,
        where, why), so an operator can answer "who banned ana?"."""
        audit_log.info(
            "%s by %s%s%s%s",
            action,
            self.me.username,
            f" on {target}" if target is not None else "",
            f" in #{room}" if room is not None else "",
            f" reason={reason!r}" if reason else "",
        )

    # -- looking things up -------------------------------------------------

    def room(self, name: str) -> Room:
        room = self.model.rooms.get(name)
        if room is None:
            raise NexusError("no_such_room", f"no room #{name}")
        return room

    def user(self, name: str) -> User:
        user = self.model.user(name)
        if user is None:
            raise NexusError("no_such_user", f"no user {name[:40]!r}")
        return user

    def readable(self, name: str) -> Room:
        """A room whose messages the caller may read: a private one only by
        its members and admins (`not_member` otherwise)."""
        room = self.room(name)
        if not permissions.may_see(self.model, room, self.key):
            raise NexusError("not_member", f"#{room.name} is private: you are not a member")
        return room

    # -- wire objects ------------------------------------------------------

    # -- history, from the window or the store ---------------------------------

    def page(
        self, history: History, scope: str, limit: int, before: int | None, replies: bool = False
    ) -> Any:
        """A page of `scope` (whose window is `history`): a Page, or an awaitable one."""
        page = history.page(limit, before, replies)
        return page if page is not None else self._store.page(scope, limit, before, replies)

    def shown_page(self, history: History, scope: str, req: p.History | p.Dms) -> Any:
        """The page of `scope` (whose window is `history`) that `req` asks:
        the newest, or the one before, just after or centred on a seq (full
        where the history allows), of the timeline or of every message; its
        messages in wire form cut to the reply budget, whether older ones
        remain and whether newer ones do. A Shown, or an awaitable one."""
        limit, before, after, around, replies = (
            req.limit, req.before, req.after, req.around, req.replies
        )  # fmt: skip
        newest = history.last_seq
        if after is None and around is None:

            def newest_first(page: Page) -> Shown:
                messages, more = self.fit(*page)
                return Shown(messages, more, before is not None and before <= newest)

            return then(self.page(history, scope, limit, before, replies), newest_first)
        if after is not None:

            def after_it(page: Page) -> Any:
                shown, more_after = page
                older = self.page(history, scope, 0, after + 1, replies)  # whether any remain
                return then(older, lambda old: self.fit_span(shown, old[1], more_after, after + 1))

            newer: Any = history.newer(after, limit, replies)
            if newer is None:
                newer = self._store.newer(scope, after, limit, replies)
            return then(newer, after_it)
        assert around is not None
        centred: Any = history.around(around, limit, replies)
        if centred is None:
            centred = self._store.around(scope, around, limit, replies)
        return then(centred, lambda page: self.fit_span(page[0], page[1], page[2], around))

    def thread_page(
        self, history: History, scope: str, root: int, limit: int, before: int | None
    ) -> Any:
        """Replies to `root` older than `before`: a Page, or an awaitable one."""
        page = history.thread_page(root, limit, before)
        return page if page is not None else self._store.thread_page(scope, root, limit, before)

    def message(self, history: History | None, scope: str, seq: int) -> Any:
        """Message `seq` of `scope` (None: not kept), or an awaitable of it."""
        if history is None:
            return None
        if history.covers(seq):
            return history.get(seq)
        return self._store.message(scope, seq)

    def unreads(self, key: str, rooms: Iterable[str]) -> Counts | Awaitable[Counts]:
        """`key`'s unread messages and mentions in each of `rooms` (member rooms)."""
        model = self.model
        read = model.users[key].read
        wanted = [
            (name, name, room.history, read.get(name, room.history.last_seq))
            for name in rooms
            if (room := model.rooms.get(name)) is not None  # else deleted while a read waited
        ]
        return self._unread_in(model.display(key), wanted)

    def dm_unreads(self, key: str) -> dict[str, int] | Awaitable[dict[str, int]]:
        """Unread DMs from each other user, by their display name."""
        model = self.model
        wanted = []
        for conv_key in model.users[key].conversations:
            conv = model.conversations[conv_key]
            other = model.display(conv.users[0] if conv.users[1] == key else conv.users[1])
            wanted.append((other, conv_key, conv.history, conv.read.get(key, 0)))
        counts = self._unread_in(model.display(key), wanted)
        return then(counts, lambda counts: {name: n for name, (n, _) in counts.items() if n})

    def _unread_in(
        self, reader: str, wanted: list[tuple[str, str, History, int]]
    ) -> Counts | Awaitable[Counts]:
        """For each (label, scope, its window, marker): the unread count and
        mentions after the marker, by label; from the window where it holds
        them, else from the store (then awaitable)."""
        counts: Counts = {}
        later = []
        for label, scope, history, after in wanted:
            if history.covers(after + 1):
                counts[label] = self.model.unread_in(scope, after, reader)
            else:
                later.append((label, scope, after))
        if not later:
            return counts
        return self._unread_later(counts, later, reader)

    async def _unread_later(
        self, counts: Counts, later: list[tuple[str, str, int]], reader: str
    ) -> Counts:
        for label, scope, after in later:
            counts[label] = await self._store.unread(scope, after, reader)
        return counts

    async def search(
        self,
        scopes: Iterable[str],
        terms: list[str],
        author: str | None,
        before: float | None,
        limit: int,
    ) -> Page:
        return await self._store.search(scopes, terms, author, before, limit)

    async def mentions(self, user: str, scopes: set[str], limit: int) -> list[Message]:
        return await self._store.mentions(user, scopes, limit)

    def room_info(self, room: Room, unread: int | None = None) -> p.RoomInfo:
        """A room as the protocol shows it; with `unread` (for a reply to one
        user who is a member), the caller's unread count there."""
        is_online = self.hub.is_online
        display = self.model.display
        info: p.RoomInfo = {
            "name": room.name,
            "topic": room.topic,
            "owner": None if room.owner is None else display(room.owner),
            "default": room.default,
            "members": len(room.members),
            "online": sum(1 for key in room.members if is_online(key)),
            "private": room.private,
            "moderators": sorted(map(display, room.moderators), key=str.casefold),
            "muted": sorted(map(display, room.muted), key=str.casefold),
        }
        if room.pins:
            info["pins"] = len(room.pins)
        if room.ephemeral:
            info["ephemeral"] = True
        if unread is not None:
            info["unread"] = unread
        return info

    def profile(self, user: User) -> p.Profile:
        """A user as the caller may see them: only the rooms the caller may
        see (a private room shows to its members and admins only)."""
        key = user_key(user.username)
        online = self.hub.is_online(key)
        model, viewer = self.model, self.session.user or key
        rooms = model.rooms
        profile: p.Profile = {
            "username": user.username,
            "bio": user.bio,
            "online": online,
            "rooms": sorted(
                name for name in user.rooms if permissions.may_see(model, rooms[name], viewer)
            ),
            "created": user.created,
            "last_seen": None if online else user.last_seen,
            "away": user.away,
            "admin": user.admin,
        }
        if user.guest:
            profile["guest"] = True
        return profile

    def followed(self, key: str) -> list[tuple[str, int, Follow, Thread | None, History]]:
        """The threads user `key` follows and may read now: (scope, root,
        their state there, its replies, its history)."""
        model = self.model
        found = []
        for (scope, root), state in model.users[key].follows.items():
            if not state.on:
                continue
            history = model.history(scope)
            if history is None:
                continue
            room = model.rooms.get(scope)
            if room is not None and not permissions.may_see(model, room, key):
                continue
            found.append((scope, root, state, history.threads.get(root), history))
        return found

    async def unread(self, key: str) -> p.Unread:
        """A user's unread counts, as `login` and `register` answer them."""
        counts = self.unreads(key, sorted(self.model.users[key].rooms))
        if inspect.isawaitable(counts):
            counts = await counts
        dms = self.dm_unreads(key)
        if inspect.isawaitable(dms):
            dms = await dms
        rooms = {name: n for name, (n, _) in counts.items() if n}
        mentions = sum(m for n, m in counts.values() if n)
        name = self.model.users[key].username
        threads = sum(
            1
            for _, _, state, replies, _ in self.followed(key)
            if replies is not None and replies.unread(state.read, name)
        )
        return {"dms": dms, "rooms": rooms, "mentions": mentions, "threads": threads}

    # -- read markers ------------------------------------------------------

    def move_marker(
        self, where: dict[str, str], shown: dict[str, str], seq: int, thread: int | None = None
    ) -> None:
        """Records the caller's read marker at `seq` (in the room or DM
        conversation `where` names, or in its thread of root `thread`) and
        tells their other sessions, which see the conversation named as `shown`."""
        room, with_ = where.get("room"), where.get("with")
        self.change(Read(user=self.key, seq=seq, room=room, with_=with_, thread=thread))
        event: dict[str, Any] = {"event": "read", **shown, "seq": seq}
        if thread is not None:
            event["thread"] = thread
        moved = Frame(event)
        self.hub.to_user(self.key, moved, skip=self.session)

    def mark_dms_read(self, other: User, newest: int) -> None:
        """Marks the caller's DM conversation with `other` read up to `newest`."""
        other_key = user_key(other.username)
        conv = self.model.conversations.get(pair_key(self.key, other_key))
        if conv is not None and conv.read.get(self.key, 0) < newest:
            self.move_marker({"with": other_key}, {"with": other.username}, newest)

    def fit_newest_first(self, messages: list[Message], more: bool) -> tuple[list[Any], bool]:
        """`fit` for a list that runs newest first (search results, mentions)."""
        kept, cut = self.fit(messages[::-1], more)
        return kept[::-1], cut

    def fit_span(self, page: list[Message], more: bool, more_after: bool, anchor: int) -> Shown:
        """`fit` for a page anchored at seq `anchor`: the anchor and what
        follows it are kept first (so paging with `after` keeps making
        progress, and a page around a message holds it), then older ones."""
        messages = [message.wire() for message in page]
        budget = self.policy.config.max_outbound // 2
        split = next((i for i, m in enumerate(page) if m.seq >= anchor), len(page))
        size, end, start = 0, split, split
        for i in range(split, len(messages)):
            size += len(encode(messages[i]))
            if size > budget and i > split:
                more_after = True
                break
            end = i + 1
        for i in range(split - 1, -1, -1):
            size += len(encode(messages[i]))
            if size > budget:
                more = True
                break
            start = i
        return Shown(messages[start:end], more, more_after)

    def fit(self, page: list[Message], more: bool) -> tuple[list[Any], bool]:
        """A page of messages as the protocol shows them, oldest first, cut
        to half the soft outbound limit.

        500 messages of 4,000 four-byte characters encode to ~8 MB: sent
        whole, one reply would put the asker far behind. The newest message
        always stays, so paging with `before` keeps making progress; `more`
        says older ones remain.
        """
        messages = [message.wire() for message in page]
        budget = self.policy.config.max_outbound // 2
        size = 0
        newest = len(messages) - 1
        for i in range(newest, -1, -1):
            size += len(encode(messages[i]))
            if size > budget and i < newest:
                return messages[i + 1 :], True
        return messages, more
