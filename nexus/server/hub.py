"""Who is connected, and fan-out to users and rooms.

Fan-out takes frames made once (frames.py), so a broadcast is encoded once
per format; the outbox keeps a room's frames once for all its members. Presence (who shares
a room with whom) is worked out here too, because only the hub knows who is
online.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from nexus.protocol import Presence
from nexus.server.frames import Frame
from nexus.server.model import Model, Room
from nexus.server.outbox import Outbox, Outlet
from nexus.server.session import Session


class Hub:
    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox
        self.sessions: dict[str, set[Session]] = {}  # user key -> authenticated sessions

    def attach(self, session: Session, key: str) -> bool:
        """Logs `session` in as `key`; True if it is the user's first."""
        session.authenticate(key)
        sessions = self.sessions.setdefault(key, set())
        sessions.add(session)
        self.outbox.regroup()  # the user's rooms have a new connection to reach
        return len(sessions) == 1

    def detach(self, session: Session) -> bool:
        """Forgets `session`; True if it was its user's last."""
        key = session.user
        sessions = self.sessions.get(key) if key is not None else None
        if not sessions or session not in sessions:
            return False
        sessions.discard(session)
        if sessions:
            return False
        del self.sessions[key]  # type: ignore[arg-type]
        return True

    def is_online(self, key: str) -> bool:
        return key in self.sessions

    def to_room(self, room: Room, frame: Frame) -> None:
        """Queues `frame` for every session of every member of `room`."""
        self.outbox.broadcast(room, room.roster, frame, self._outlets_of(room.members))

    def to_room_but(self, room: Room, key: str, frame: Frame) -> None:
        """`to_room`, but for `key`'s own sessions: an event about what they
        did themselves, still one broadcast for the room."""
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
        send = self.outbox.send
        for session in self.sessions.get(key, ()):
            if session is not skip:
                send(session.outlet, frame)

    def to_users(self, keys: Iterable[str], frame: Frame) -> None:
        send = self.outbox.send
        for outlet in self._outlets_of(keys):
            send(outlet, frame)

    def to_all(self, frame: Frame) -> None:
        self.to_users(self.sessions, frame)

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
        for session in list(self.sessions.get(key, ())):
            if session is not skip and session.open:
                self.outbox.send(session.outlet, frame)
                session.close()
