"""What `nexus-chat tail` has printed, by room and conversation, so that after
moving to another server of a cluster it prints what it missed, once each.

Every node numbers a room's (and a conversation's) messages alike, so the
newest seq printed of each is where to fetch from. Where nothing was printed
yet, the newest seq when tail started stands in: a room quiet until the move
is not printed from its beginning. Fetching a conversation's messages marks
it read on the server, as reading it in the full-screen client does.
"""

from __future__ import annotations

from typing import cast

from nexus.client.connection import ChatConnection
from nexus.errors import NexusError
from nexus.protocol import (
    PAGE_MAX,
    AnyMessage,
    ConversationInfo,
    ConversationsReply,
    DmEvent,
    HistoryReply,
    LoginReply,
    MessageEvent,
)

Shown = MessageEvent | DmEvent
Key = tuple[str, str]  # ("#", room) or ("@", the other person, case-folded)


class Follow:
    """The newest seq printed of each room and conversation tail shows."""

    def __init__(self, me: str, rooms: set[str]) -> None:
        self.me = me.casefold()
        self.rooms = rooms  # the rooms chosen; none: every room the account is in, and DMs
        self.seen: dict[Key, int] = {}
        self._moved = False  # once caught up after a move, live repeats are dropped

    def key(self, message: Shown) -> Key:
        if message["event"] == "message":
            return "#", message["room"]
        mine = message["from"].casefold() == self.me
        return "@", (message["to"] if mine else message["from"]).casefold()

    def fresh(self, message: Shown) -> bool:
        """Whether `message` is yet to be printed; if so it counts as printed.

        Before any move every event is new: the seqs noted at the start are
        where catching up would begin, not messages printed.
        """
        key, seq = self.key(message), message["seq"]
        if self._moved and seq <= self.seen.get(key, 0):
            return False  # caught up already: the live event crossed the fetch
        self.seen[key] = max(self.seen.get(key, 0), seq)
        return True

    async def start(self, conn: ChatConnection, login: LoginReply) -> None:
        """Notes the newest seq of each room and conversation followed, as it is now."""
        for room in self.rooms or login["rooms"]:
            page: HistoryReply = await conn.request("history", room=room, limit=1)
            newest = page["messages"][-1]["seq"] if page["messages"] else 0
            self.seen.setdefault(("#", room), newest)
        if not self.rooms:
            for info in await _conversations(conn):
                self.seen.setdefault(("@", info["with"].casefold()), info["seq"])

    async def missed(self, conn: ChatConnection) -> list[Shown]:
        """Every message newer than the newest seen of each room and conversation
        followed, in the order they were said; they then count as printed."""
        self._moved = True
        missed: list[Shown] = []
        for kind, room in [key for key in self.seen if key[0] == "#"]:
            try:
                messages = await _since(conn, "history", self.seen[kind, room], room=room)
            except NexusError:  # left, or deleted, meanwhile: nothing more to print of it
                del self.seen[kind, room]
                continue
            missed.extend(cast(MessageEvent, {"event": "message", **m}) for m in messages)
        if not self.rooms:
            for info in await _conversations(conn):
                since = self.seen.get(("@", info["with"].casefold()), 0)
                if info["seq"] <= since:
                    continue
                try:
                    dm_page = await _since(conn, "dms", since, with_=info["with"])
                except NexusError:  # the other account is gone: nothing to fetch
                    continue
                missed.extend(cast(DmEvent, {"event": "dm", **m}) for m in dm_page)
        missed.sort(key=lambda message: message["ts"])
        return [message for message in missed if self.fresh(message)]


async def _conversations(conn: ChatConnection) -> list[ConversationInfo]:
    """The account's conversations; none from a server that cannot list them."""
    try:
        listed: ConversationsReply = await conn.request("conversations", limit=PAGE_MAX)
    except NexusError:
        return []
    return listed["conversations"]


async def _since(conn: ChatConnection, cmd: str, since: int, **place: str) -> list[AnyMessage]:
    """Every message of `place` after seq `since` (`cmd`: `history` for a room,
    `dms` for a conversation, whose replies read alike), thread replies included
    (live, tail printed them all), oldest first, page after page; erased ones
    are left out (they are gone)."""
    messages: list[AnyMessage] = []
    after = since
    while True:
        page: HistoryReply = await conn.request(
            cmd, **place, after=after, limit=PAGE_MAX, replies=True
        )
        messages += page["messages"]
        if not page["messages"] or not page["more_after"]:
            break
        after = page["messages"][-1]["seq"]
    return [m for m in messages if not m.get("erased")]
