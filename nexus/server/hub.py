"""Who is connected, and fan-out to users and rooms.

Fan-out takes frames made once (frames.py), so a broadcast is encoded once
per format; the outbox keeps a room's frames once for all its members. Presence (who shares
a room with whom) is worked out here too, because only the hub knows who is
online.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator
from typing import Any

from nexus.protocol import Presence
from nexus.server.frames import Frame
from nexus.server.model import Model, Room
from nexus.server.outbox import Outbox, Outlet
from nexus.server.session import Session


class Hub:
    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox
        self.sessions: dict[str, set[Session]] = {}  # user key -> authenticated sessions
        # With several nodes (store/clustered.py), what the hub tells goes here
        # too, to be told by the other nodes to their own sessions; None on a
        # node of its own.
        self.relay: Callable[[list[Any]], None] | None = None
        # With several nodes: the users online on the others (bus.py), and
        # what is told when a user comes to this node or leaves it.
        self.elsewhere: Collection[str] = frozenset()
        self.here: Callable[[str, bool], None] | None = None

    def attach(self, session: Session, key: str) -> bool:
        """Logs `session` in as `key`; True if the user was online nowhere."""
        session.authenticate(key)
        sessions = self.sessions.setdefault(key, set())
        sessions.add(session)
        self.outbox.regroup()  # the user's rooms have a new connection to reach
        if len(sessions) > 1:
            return False
        if self.here is not None:
            self.here(key, True)
        return key not in self.elsewhere

    def detach(self, session: Session) -> bool:
        """Forgets `session`; True if the user is now online nowhere."""
        key = session.user
        sessions = self.sessions.get(key) if key is not None else None
        if not sessions or session not in sessions:
            return False
        sessions.discard(session)
        if sessions:
            return False
        del self.sessions[key]  # type: ignore[arg-type]
        if self.here is not None:
            self.here(key, False)  # type: ignore[arg-type]
        return key not in self.elsewhere

    def is_online(self, key: str) -> bool:
        return key in self.sessions or key in self.elsewhere

    def online(self) -> Collection[str]:
        """The keys of the users online here or on another node."""
        if not self.elsewhere:
            return self.sessions.keys()
        return self.sessions.keys() | set(self.elsewhere)

    def to_room(self, room: Room, frame: Frame) -> None:
        """Queues `frame` for every session of every member of `room`."""
        if self.relay is not None:
            self.relay(["room", room.name, frame.body])
        self.outbox.broadcast(room, room.roster, frame, self._outlets_of(room.members))

    def to_room_but(self, room: Room, key: str, frame: Frame) -> None:
        """`to_room`, but for `key`'s own sessions: an event about what they
        did themselves, still one broadcast for the room."""
        if self.relay is not None:
            self.relay(["room_but", room.name, key, frame.body])
        skip = [session.outlet for session in self.sessions.get(key, ())]
        self.outbox.broadcast_to_others(
            room, room.roster, frame, self._outlets_of(room.members), skip
        )

    def _outlets_of(self, keys: Iterable[str]) -> Iterator[Outlet]:
        sessions = self.sessions
        for key in keys:
            for session in sessions.get(key, ()):
                yield session.outlet

    def to_user(self, key: str, frame: Frame, skip: Session | None = None) -> None:
        """To every session of `key` (but `skip`, this node's session that
        asked: on the other nodes, to every one)."""
        if self.relay is not None:
            self.relay(["user", key, frame.body])
        send = self.outbox.send
        for session in self.sessions.get(key, ()):
            if session is not skip:
                send(session.outlet, frame)

    def to_users(self, keys: Iterable[str], frame: Frame) -> None:
        if self.relay is not None:
            keys = list(keys)
            self.relay(["users", keys, frame.body])
        send = self.outbox.send
        for outlet in self._outlets_of(keys):
            send(outlet, frame)

    def to_all(self, frame: Frame) -> None:
        if self.relay is not None:
            self.relay(["all", frame.body])
        send = self.outbox.send
        for outlet in self._outlets_of(self.sessions):
            send(outlet, frame)

    def announce_presence(
        self, model: Model, key: str, online: bool, skip: Session | None = None
    ) -> None:
        """Tells the other users who share a room with `key` that it came,
        went or changed its away text; with `skip` (an away change), the
        user's own sessions but that one too."""
        user = model.users[key]
        peers: set[str] = set()
        for name in user.rooms:
            peers |= model.rooms[name].members
        peers.discard(key)
        frame: Presence = {
            "event": "presence",
            "user": user.username,
            "online": online,
            "away": user.away,
        }
        if user.guest:
            frame["guest"] = True
        framed = Frame(frame)
        self.to_users(peers, framed)
        if skip is not None:
            self.to_user(key, framed, skip=skip)

    def expel(self, key: str, frame: Frame, skip: Session | None = None) -> None:
        """Sends `frame` to every session of `key` but `skip`, and closes them
        once it has gone out."""
        if self.relay is not None:
            self.relay(["expel", key, frame.body])
        for session in list(self.sessions.get(key, ())):
            if session is not skip and session.open:
                self.outbox.send(session.outlet, frame)
                session.close()

    def tell(self, told: list[Any], model: Model) -> None:
        """Tells this node's sessions what another node's hub told its own
        (an item `relay` was given there), without relaying it again."""
        relay, self.relay = self.relay, None
        try:
            kind, frame = told[0], Frame(told[-1])
            if kind == "room" or kind == "room_but":
                room = model.rooms.get(told[1])
                if room is None:
                    return
                if kind == "room":
                    self.to_room(room, frame)
                else:
                    self.to_room_but(room, told[2], frame)
            elif kind == "user":
                self.to_user(told[1], frame)
            elif kind == "users":
                self.to_users(told[1], frame)
            elif kind == "all":
                self.to_all(frame)
            elif kind == "expel":
                self.expel(told[1], frame)
        finally:
            self.relay = relay
