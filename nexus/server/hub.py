"""Who is connected: sessions per user, and fan-out to users and rooms.

Fan-out takes frames already encoded, so a broadcast is encoded once and the
same bytes are queued on every recipient's session.
"""

from __future__ import annotations

from collections.abc import Iterable

from nexus.server.session import Session


class Hub:
    def __init__(self) -> None:
        self.sessions: dict[str, set[Session]] = {}  # user key -> live sessions

    def attach(self, session: Session, key: str) -> bool:
        """Marks `session` as `key`'s; True if it is the user's first."""
        session.user = key
        sessions = self.sessions.setdefault(key, set())
        sessions.add(session)
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

    def send_user(self, key: str, data: bytes, skip: Session | None = None) -> None:
        for session in self.sessions.get(key, ()):
            if session is not skip:
                session.send(data)

    def send_users(self, keys: Iterable[str], data: bytes, skip: Session | None = None) -> None:
        sessions = self.sessions
        for key in keys:
            for session in sessions.get(key, ()):
                if session is not skip:
                    session.send(data)

    def send_all(self, data: bytes) -> None:
        for sessions in self.sessions.values():
            for session in sessions:
                session.send(data)
