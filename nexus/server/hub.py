"""Who is connected: sessions per user, and fan-out to users and rooms.

Fan-out takes frames already encoded, so a broadcast is encoded once; the
outbox keeps a room's frames once for all its members.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from nexus.server.model import Room
from nexus.server.outbox import Outbox
from nexus.server.session import Session


class Hub:
    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox
        self.sessions: dict[str, set[Session]] = {}  # user key -> live sessions

    def attach(self, session: Session, key: str) -> bool:
        """Marks `session` as `key`'s; True if it is the user's first."""
        session.user = key
        sessions = self.sessions.setdefault(key, set())
        sessions.add(session)
        self.outbox.regroup()  # the user's rooms have a new session to reach
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
        del self.sessions[key]
        return True

    def is_online(self, key: str) -> bool:
        return key in self.sessions

    def broadcast(self, room: Room, data: bytes) -> None:
        """Queues `data` for every session of every member of `room`."""
        self.outbox.broadcast(room, room.roster, data, self._sessions_of(room.members))

    def _sessions_of(self, keys: Iterable[str]) -> Iterator[Session]:
        sessions = self.sessions
        for key in keys:
            yield from sessions.get(key, ())

    def send_user(self, key: str, data: bytes, skip: Session | None = None) -> None:
        for session in self.sessions.get(key, ()):
            if session is not skip:
                session.send(data)

    def send_users(self, keys: Iterable[str], data: bytes) -> None:
        for session in self._sessions_of(keys):
            session.send(data)

    def send_all(self, data: bytes) -> None:
        for sessions in self.sessions.values():
            for session in sessions:
                session.send(data)
